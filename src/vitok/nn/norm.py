"""Normalisation layer factory (LayerNorm as in the paper, RMSNorm as the ViTok-v2 option)."""

from __future__ import annotations

from torch import nn

from vitok.model_config import NormType


def make_norm(kind: NormType, dim: int, eps: float = 1e-6) -> nn.Module:
    """A normalisation over the last dimension of size ``dim``."""
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=eps)
    if kind == "rmsnorm":
        return nn.RMSNorm(dim, eps=eps)
    raise ValueError(f"unknown norm {kind!r}; expected 'layernorm' or 'rmsnorm'")
