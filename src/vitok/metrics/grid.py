"""How much of a reconstruction's error sits on the patch lattice (the "grid" measure).

A patch-based decoder whose patches are predicted independently leaves its error discontinuous
at patch borders: the error image shows a grid with period p (the patch size; for a conv VAE,
its downsampling factor). The measure compares the error's steps across lattice lines with its
steps everywhere else::

    e      = recon - original                              (uint8 units, per channel)
    step_x = |e[..., y, x + 1] - e[..., y, x]|             (and the same along y)
    border = mean of the steps where (x + 1) % p == 0      (crossing a patch border)
    inside = mean of the steps elsewhere
    grid   = (border + eps) / (inside + eps),  eps = 1e-6

1.0 means the lattice is invisible in the error (an error as smooth across borders as inside;
identical images give exactly 1.0, the floor); 1.5 means the error jumps 50% more across a
border than between neighbouring pixels inside a patch. Values below 1 are possible (an error
smoother across borders than inside) but rare. Videos are measured frame by frame (spatial
lattice only). Sums and counts are accumulated over a whole data set, so the ratio is pooled
over all pixels rather than averaged over images.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-6


def lattice_steps(error: Tensor, period: int) -> Tensor:
    """Sums and counts of absolute error steps: tensor([border_sum, border_count, inside_sum,
    inside_count]) (float64) for an error (N, C, H, W) and a lattice period in pixels.

    Raises ``ValueError`` for a period < 2 (no inside) or a non-4D error.
    """
    if period < 2:
        raise ValueError(f"the lattice period must be at least 2 pixels, got {period}")
    if error.ndim != 4:
        raise ValueError(f"expected an error (N, C, H, W), got shape {tuple(error.shape)}")
    error = error.double()
    out = torch.zeros(4, dtype=torch.float64)
    for dim in (-1, -2):  # steps along x, then along y
        steps = error.diff(dim=dim).abs()
        index = torch.arange(1, steps.shape[dim] + 1, device=error.device)
        on_border = (index % period == 0).view(-1, *([1] * (-dim - 1)))
        border = (steps * on_border).sum()
        n_border = on_border.sum() * steps.numel() / steps.shape[dim]
        out += torch.stack([border, n_border.double(), steps.sum() - border,
                            steps.numel() - n_border.double()]).cpu()
    return out


def grid_ratio(stats: Tensor) -> float:
    """The grid measure from accumulated :func:`lattice_steps` (see the module docstring).

    Raises ``ValueError`` when no patch border was inside the images (all smaller than 2 periods).
    """
    border_sum, border_count, inside_sum, inside_count = stats.tolist()
    if border_count == 0 or inside_count == 0:
        raise ValueError("grid: no patch border inside the images (they must be larger than the period)")
    return (border_sum / border_count + EPS) / (inside_sum / inside_count + EPS)


def grid_score(original: Tensor, recon: Tensor, period: int) -> float:
    """The grid measure of one pair of images (N, C, H, W) in the same units (e.g. uint8 values)."""
    return grid_ratio(lattice_steps(recon.double() - original.double(), period))
