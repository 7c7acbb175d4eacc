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
identical images give exactly 1.0); 1.5 means the error jumps 50% more across a border than
between neighbouring pixels inside a patch. Values below 1 mean an error smoother across borders
than inside (a conv VAE's is 0.90-1.0 on photos). Videos are measured frame by frame (spatial
lattice only). Sums and counts are accumulated over a whole data set, so the ratio is pooled
over all pixels rather than averaged over images.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vitok.checks import check_pair, check_tensor, describe, is_int

EPS = 1e-6


def on_border(steps: int, period: int, dim: int, device: torch.device | str | None = None) -> Tensor:
    """Which of ``steps`` pixel steps along axis ``dim`` (-1: x, -2: y) cross a lattice line: step i
    (between pixels i and i + 1) does when ``(i + 1) % period == 0``. A bool tensor shaped to
    broadcast against steps along that axis ((steps,) for x, (steps, 1) for y)."""
    index = torch.arange(1, steps + 1, device=device)
    return (index % period == 0).view(-1, *([1] * (-dim - 1)))


def lattice_steps(error: Tensor, period: int) -> Tensor:
    """Sums and counts of absolute error steps: tensor([border_sum, border_count, inside_sum,
    inside_count]) (float64) for an error (N, C, H, W) and a lattice period in pixels.

    Raises ``TypeError`` / ``ValueError`` for a period that is not an int >= 2 (no inside) or an
    error that is not a (N, C, H, W) tensor.
    """
    if not is_int(period):
        raise TypeError(f"the lattice period must be an int (pixels), got {describe(period)}")
    if period < 2:
        raise ValueError(f"the lattice period must be at least 2 pixels, got {period}")
    check_tensor("error", error, (4,), layout="(N, C, H, W)", nonempty=False)
    error = error.double()
    out = torch.zeros(4, dtype=torch.float64)
    for dim in (-1, -2):  # steps along x, then along y
        steps = error.diff(dim=dim).abs()
        border_mask = on_border(steps.shape[dim], period, dim, error.device)
        border = (steps * border_mask).sum()
        n_border = border_mask.sum() * (steps.numel() // steps.shape[dim] if steps.shape[dim] else 0)
        out += torch.stack([border, n_border.double(), steps.sum() - border,
                            steps.numel() - n_border.double()]).cpu()
    return out


def grid_ratio(stats: Tensor) -> float:
    """The grid measure from accumulated :func:`lattice_steps` (see the module docstring).

    Raises ``ValueError`` when no patch border was inside the images (all smaller than 2 periods).
    """
    check_tensor("stats", stats, (1,), layout="(4,)")
    if stats.numel() != 4:
        raise ValueError(f"stats must be the 4 sums of lattice_steps, got shape {tuple(stats.shape)}")
    border_sum, border_count, inside_sum, inside_count = stats.tolist()
    if border_count == 0 or inside_count == 0:
        raise ValueError("grid: no patch border inside the images (they must be larger than the period)")
    return (border_sum / border_count + EPS) / (inside_sum / inside_count + EPS)


def grid_score(original: Tensor, recon: Tensor, period: int) -> float:
    """The grid measure of one pair of images (N, C, H, W) in the same units (e.g. uint8 values).
    ``TypeError`` / ``ValueError`` for other tensors or periods (see :func:`lattice_steps`) and when
    the images are too small to contain a patch border (see :func:`grid_ratio`)."""
    check_pair(("original", "recon"), original, recon, (4,), layout="(N, C, H, W)")
    return grid_ratio(lattice_steps(recon.double() - original.double(), period))


def lattice_period(model: torch.nn.Module) -> int:
    """The pixel period of a model's token lattice: a vitok model's patch size p, a conv VAE's
    downsampling factor (what the ``grid`` metric measures against)."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "patch_size"):
        return int(config.patch_size)
    return int(getattr(model, "downsample", 8))
