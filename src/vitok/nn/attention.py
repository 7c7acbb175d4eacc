"""Multi-head self-attention with bias-free qkv, optional QK-norm and axial RoPE, through SDPA."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from vitok.nn.rope import apply_rope


class Attention(nn.Module):
    """Self-attention over a token sequence x: (B, L, dim) -> (B, L, dim).

    ``rope`` is the (cos, sin) pair from :func:`vitok.nn.rope.rope_cos_sin`, each (L, head_dim/2).
    Attention itself is ``F.scaled_dot_product_attention`` so the fused (flash / memory-efficient)
    kernels are used where the device has them.
    """

    def __init__(self, dim: int, heads: int, qk_norm: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, L, head_dim)
        q = apply_rope(self.q_norm(q).to(v.dtype), *rope)
        k = apply_rope(self.k_norm(k).to(v.dtype), *rope)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, L, head_dim)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))
