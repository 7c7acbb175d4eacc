"""Peak signal-to-noise ratio on uint8-quantised images (the convention papers report)."""

from __future__ import annotations

import torch
from torch import Tensor

from vitok.checks import check_pair
from vitok.io import to_uint8

PSNR_CAP_DB = 100.0
"""The PSNR that the evaluation gives an exact frame, so that one such frame cannot dominate a mean."""


def psnr_uint8(x: Tensor, y: Tensor, cap: float | None = PSNR_CAP_DB) -> Tensor:
    """PSNR (dB) per sample of uint8-valued (N, ...) tensors (values in [0, 255], any float or int
    dtype), capped at ``cap`` (identical samples give exactly ``cap``; None: +inf). Returns (N,)
    float32: 10 log10(255^2 / MSE)."""
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    value = 10 * torch.log10(255.0**2 / mse)
    return value if cap is None else value.clamp_max(cap)


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """PSNR in dB per sample between two batches (B, ...) in [-1, 1], after uint8 quantisation.

    Returns (B,) float32; identical samples give +inf (the evaluation's streaming metric caps at
    :data:`PSNR_CAP_DB`). ``TypeError`` / ``ValueError`` unless x and y are tensors of one shape
    (B, ...) with at least 2 dimensions.
    """
    check_pair(("x", "y"), x, y, range(2, 9), layout="(B, ...)")
    return psnr_uint8(to_uint8(x), to_uint8(y), cap=None)
