"""Neural-network building blocks: attention, RoPE, SwiGLU, norms, tubelet patching."""

from vitok.nn.attention import Attention
from vitok.nn.mlp import SwiGLU
from vitok.nn.norm import make_norm
from vitok.nn.patch import from_frames, pad_to_multiple, patchify, to_frames, unpatchify
from vitok.nn.rope import apply_rope, axial_split, rope_angles, rope_cos_sin, token_grid
from vitok.nn.transformer import Block, Transformer

__all__ = [
    "Attention", "Block", "SwiGLU", "Transformer", "apply_rope", "axial_split", "from_frames", "make_norm",
    "pad_to_multiple", "patchify", "rope_angles", "rope_cos_sin", "to_frames", "token_grid", "unpatchify",
]
