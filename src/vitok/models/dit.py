"""Class-conditional Diffusion Transformer on vitok latents (Peebles & Xie 2023), as in the
ViTok paper's generation experiments (arXiv 2501.09755).

Read top-down: embedders -> adaLN-Zero block -> final layer -> model -> presets. Every latent
token is one DiT token (no further patchify); positions come from axial RoPE over the latent
grid (t, y, x), so one model serves image latents (B, c, h, w) and video latents (B, c, t, h, w).
"""

from __future__ import annotations

import json
import math

import torch
from einops import rearrange
from torch import Tensor, nn

from vitok.model_config import DiTConfig
from vitok.models.pretrained import PretrainedMixin
from vitok.nn.attention import Attention
from vitok.nn.rope import rope_cos_sin, token_grid


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (B,) float times -> (B, dim) float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=-1)


class TimestepEmbedder(nn.Module):
    def __init__(self, width: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim))


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """x: (B, L, D); shift, scale: (B, D)."""
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """Pre-norm attention + MLP whose norms are modulated (shift, scale) and whose residual
    branches are gated by the conditioning; all six come from one zero-initialised linear."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x: Tensor, c: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1), rope)
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FinalLayer(nn.Module):
    def __init__(self, width: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.linear = nn.Linear(width, out_channels)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.ada(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class DiT(PretrainedMixin, nn.Module):
    """``forward(x, t, y)``: latents (B, c, h, w) or (B, c, t, h, w), times (B,), labels (B,) int
    (``num_classes`` is the null label for classifier-free guidance) -> prediction, same shape as x."""

    fsdp_units = ("DiTBlock",)  # what FSDP shards one by one (vitok.train.distributed.wrap)
    model_type = "vitok-dit"  # in config.json; save_pretrained / from_pretrained: PretrainedMixin
    config_class = DiTConfig
    missing_hint = "a DiT is written by `vitok train-dit` or DiT.save_pretrained"

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.x_embed = nn.Linear(config.latent_channels, w)
        self.t_embed = TimestepEmbedder(w)
        self.y_embed = nn.Embedding(config.num_classes + 1, w)  # last row: the null class
        self.blocks = nn.ModuleList(DiTBlock(w, config.heads, config.mlp_ratio) for _ in range(config.depth))
        self.final = FinalLayer(w, config.latent_channels)
        self.initialize_weights()

    @property
    def null_label(self) -> int:
        return self.config.num_classes

    def initialize_weights(self) -> None:
        """Xavier linears, N(0, 0.02) label and time embeddings, and adaLN-Zero: every modulation
        and the output layer start at zero, so each block starts as the identity."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.y_embed.weight, std=0.02)
        for layer in self.t_embed.mlp[0], self.t_embed.mlp[2]:
            nn.init.normal_(layer.weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.ada[-1].weight)
            nn.init.zeros_(block.ada[-1].bias)
        for layer in self.final.ada[-1], self.final.linear:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        if x.ndim not in (4, 5) or x.shape[1] != self.config.latent_channels:
            raise ValueError(f"DiT expects latents (B, {self.config.latent_channels}, [t,] h, w), got {tuple(x.shape)}")
        video = x.ndim == 5
        x5 = x if video else x.unsqueeze(2)
        grid = tuple(x5.shape[2:])
        h = self.x_embed(rearrange(x5, "b c t h w -> b (t h w) c"))  # (B, L, width)
        rope = rope_cos_sin(token_grid(*grid, device=x.device), self.config.width // self.config.heads,
                            self.config.rope_theta)
        c = self.t_embed(t) + self.y_embed(y)  # (B, width)
        for block in self.blocks:
            h = block(h, c, rope)
        out = self.final(h, c)  # (B, L, c)
        out = rearrange(out, "b (t h w) c -> b c t h w", t=grid[0], h=grid[1], w=grid[2])
        return out if video else out[:, :, 0]

    # ------------------------------------------------------------------ save / load (models.pretrained)
    def push_to_hub(self, repo_id: str, name: str | None = None, facts: dict[str, str] | None = None,
                    private: bool | None = None, token: str | None = None, revision: str | None = None,
                    commit_message: str = "Upload vitok DiT", *, generation: dict | None = None) -> str:
        """:meth:`PretrainedMixin.push_to_hub` (same arguments) plus, given ``generation`` (the
        ``generation.json`` that ``vitok train-dit`` writes), that file, to the Hub repository ``repo_id``;
        returns the commit URL (:func:`vitok.hub.push_to_hub`). Needs ``huggingface_hub``."""
        from vitok.hub import push_to_hub

        extra = {"generation.json": json.dumps(generation, indent=2)} if generation else None
        return push_to_hub(self, repo_id, name, facts, private, token, revision, commit_message, extra)
