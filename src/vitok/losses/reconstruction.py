"""Pixel reconstruction losses (pure functions, mean over every element)."""

from __future__ import annotations

import torch
from torch import Tensor

from vitok.checks import check_pair, describe, is_int
from vitok.losses.config import ReconstructionLoss
from vitok.metrics.grid import on_border


def mse(x: Tensor, y: Tensor) -> Tensor:
    return (x.float() - y.float()).pow(2).mean()


def l1(x: Tensor, y: Tensor) -> Tensor:
    return (x.float() - y.float()).abs().mean()


def charbonnier(x: Tensor, y: Tensor, eps: float = 1e-3) -> Tensor:
    """sqrt((x - y)^2 + eps^2): L1-like for large errors, smooth at zero."""
    return ((x.float() - y.float()).pow(2) + eps**2).sqrt().mean()


def lattice_loss(recon: Tensor, x: Tensor, period: int) -> Tensor:
    """How far the reconstruction error jumps more across patch borders than inside patches: the
    differentiable counterpart of the grid measure (``vitok.metrics.grid``), as a penalty.

    For frames (N, C, H, W) in the same units (the training range [-1, 1]) and e = recon - x, per
    axis: ``relu(mean |step of e across a border| - mean |step of e inside|)``, the inside mean
    detached (so it only pulls border steps down to the inside level, never pushes inside steps
    up), averaged over the x and y axes. 0 for an error as smooth across borders as inside. Borders
    are those of the grid measure (:func:`vitok.metrics.grid.on_border`).

    Raises ``TypeError`` for a period that is not an int, ``ValueError`` for a period < 2, frames
    not larger than the period on a side (no border inside), or recon and x of different shapes.
    """
    check_pair(("recon", "x"), recon, x, (4,), layout="(N, C, H, W)")
    if not is_int(period):
        raise TypeError(f"the lattice period must be an int (pixels), got {describe(period)}")
    if period < 2 or min(recon.shape[-2:]) <= period:
        raise ValueError(f"lattice_loss needs a period >= 2 and frames larger than it, got period {period} "
                         f"for frames {tuple(recon.shape[-2:])}")
    error = recon.float() - x.float()
    total = error.new_zeros(())
    for dim in (-1, -2):
        steps = error.diff(dim=dim).abs()
        border_mask = on_border(steps.shape[dim], period, dim, error.device).expand_as(steps)
        border = steps.masked_select(border_mask).mean()
        inside = steps.masked_select(~border_mask).mean()
        total = total + torch.relu(border - inside.detach())
    return total / 2


RECONSTRUCTION = {"mse": mse, "l1": l1, "charbonnier": charbonnier}


def reconstruction_loss(kind: ReconstructionLoss, x: Tensor, y: Tensor) -> Tensor:
    if kind not in RECONSTRUCTION:
        raise ValueError(f"reconstruction loss must be one of {sorted(RECONSTRUCTION)}, got {kind!r}")
    return RECONSTRUCTION[kind](x, y)
