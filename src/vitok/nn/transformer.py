"""Pre-norm ("Llama-style") transformer block and tower."""

from __future__ import annotations

from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from vitok.model_config import NormType, TowerConfig
from vitok.nn.attention import Attention
from vitok.nn.mlp import SwiGLU
from vitok.nn.norm import make_norm


class Block(nn.Module):
    """x + attn(norm(x)), then x + swiglu(norm(x)); x: (B, L, dim)."""

    def __init__(self, dim: int, heads: int, hidden: int, norm: NormType, qk_norm: bool) -> None:
        super().__init__()
        self.norm1 = make_norm(norm, dim)
        self.attn = Attention(dim, heads, qk_norm=qk_norm)
        self.norm2 = make_norm(norm, dim)
        self.mlp = SwiGLU(dim, hidden)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """A stack of :class:`Block` followed by a final norm; (B, L, width) -> (B, L, width)."""

    def __init__(self, tower: TowerConfig, mlp_ratio: float, norm: NormType, qk_norm: bool) -> None:
        super().__init__()
        hidden = round(mlp_ratio * tower.width)
        self.blocks = nn.ModuleList(
            Block(tower.width, tower.heads, hidden, norm, qk_norm) for _ in range(tower.depth)
        )
        self.norm = make_norm(norm, tower.width)
        self.grad_checkpointing = False

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        for block in self.blocks:
            if self.grad_checkpointing and self.training:
                x = checkpoint(block, x, rope, use_reentrant=False)
            else:
                x = block(x, rope)
        return self.norm(x)
