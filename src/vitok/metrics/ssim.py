"""Structural similarity (Wang et al. 2004) with the standard 11-tap Gaussian window (sigma 1.5).

Matches ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, channel_axis=...)``: statistics over the window, the mean taken
over the region where the window fits inside the image, channels averaged. Differentiable, so
it doubles as a training loss (``1 - ssim``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vitok.checks import check_int, check_number, check_pair


def gaussian_window(size: int = 11, sigma: float = 1.5, device: torch.device | None = None) -> Tensor:
    """Normalised 1-D Gaussian taps (size,) float32."""
    coords = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
    taps = torch.exp(-coords.pow(2) / (2 * sigma**2))
    return taps / taps.sum()


def _blur(x: Tensor, taps: Tensor) -> Tensor:
    """Separable 'valid' Gaussian filter of (N, 1, H, W)."""
    x = F.conv2d(x, taps.view(1, 1, -1, 1))
    return F.conv2d(x, taps.view(1, 1, 1, -1))


def ssim(x: Tensor, y: Tensor, data_range: float = 2.0, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM per sample of two batches (B, C, H, W) (H, W >= window); returns (B,) float32.

    ``data_range`` is max - min of the value range: 2 for [-1, 1], 255 for uint8 values.
    ``TypeError`` / ``ValueError`` naming the argument for other tensors or values (``window`` an
    odd int >= 1, ``sigma`` and ``data_range`` > 0).
    """
    check_pair(("x", "y"), x, y, (4,), layout="(B, C, H, W)")
    check_number("data_range", data_range, 0, low_open=True)
    check_int("window", window, 1)
    if window % 2 == 0:
        raise ValueError(f"window must be odd (a centred Gaussian), got {window}")
    check_number("sigma", sigma, 0, low_open=True)
    if min(x.shape[-2:]) < window:
        raise ValueError(f"ssim needs images of at least {window}x{window}, got {tuple(x.shape[-2:])}")
    b, c, h, w = x.shape
    x = x.float().reshape(b * c, 1, h, w)
    y = y.float().reshape(b * c, 1, h, w)
    taps = gaussian_window(window, sigma, x.device)
    mu_x, mu_y = _blur(x, taps), _blur(y, taps)
    var_x = _blur(x * x, taps) - mu_x.pow(2)
    var_y = _blur(y * y, taps) - mu_y.pow(2)
    cov = _blur(x * y, taps) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.pow(2) + mu_y.pow(2) + c1) * (var_x + var_y + c2))
    return s.reshape(b, c, -1).mean(dim=(1, 2))


SSIM_WINDOW = 11  # the Gaussian window: SSIM needs frames at least this large


def ssim_uint8(x: Tensor, y: Tensor) -> Tensor:
    """Mean SSIM per frame of uint8-valued (N, C, H, W) tensors, H and W >= 11; returns (N,)."""
    return ssim(x, y, data_range=255.0, window=SSIM_WINDOW)
