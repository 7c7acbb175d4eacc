"""Pixel reconstruction losses (pure functions, mean over every element)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

ReconstructionLoss = Literal["mse", "l1", "charbonnier"]


def mse(x: Tensor, y: Tensor) -> Tensor:
    return (x.float() - y.float()).pow(2).mean()


def l1(x: Tensor, y: Tensor) -> Tensor:
    return (x.float() - y.float()).abs().mean()


def charbonnier(x: Tensor, y: Tensor, eps: float = 1e-3) -> Tensor:
    """sqrt((x - y)^2 + eps^2): L1-like for large errors, smooth at zero."""
    return ((x.float() - y.float()).pow(2) + eps**2).sqrt().mean()


RECONSTRUCTION = {"mse": mse, "l1": l1, "charbonnier": charbonnier}


def reconstruction_loss(kind: ReconstructionLoss, x: Tensor, y: Tensor) -> Tensor:
    if kind not in RECONSTRUCTION:
        raise ValueError(f"reconstruction loss must be one of {sorted(RECONSTRUCTION)}, got {kind!r}")
    return RECONSTRUCTION[kind](x, y)
