"""SwiGLU feed-forward layer (Llama-style)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class SwiGLU(nn.Module):
    """``w3(silu(w1 x) * w2 x)`` with w1 and w2 fused in one matmul.

    Input and output: (..., dim). ``hidden`` is 8/3 x dim in the paper (2048 for dim 768).
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * value)
