"""Peak signal-to-noise ratio on uint8-quantised images (the convention papers report)."""

from __future__ import annotations

import torch
from torch import Tensor

from vitok.checks import check_pair


def to_uint8(x: Tensor) -> Tensor:
    """[-1, 1] floats -> rounded, clamped values in {0..255} (kept as float32)."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round()


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """PSNR in dB per sample between two batches (B, ...) in [-1, 1], after uint8 quantisation.

    Returns (B,) float32; identical samples give +inf. ``TypeError`` / ``ValueError`` unless x and
    y are tensors of one shape (B, ...) with at least 2 dimensions.
    """
    check_pair(("x", "y"), x, y, range(2, 9), layout="(B, ...)")
    mse = (to_uint8(x) - to_uint8(y)).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse)
