"""Whether tile and chunk borders show: the error's step across them vs across other lattice lines.

Tiled decoding (:mod:`vitok.models.tiling`) cuts windows at token boundaries, so every window
border lies on the patch lattice (in time: on a tubelet boundary). A visible seam is an error that
jumps more across a window border than across the other lattice lines::

    e       = recon - original                       (any units; per channel)
    step_j  = mean |e[..., j, ...] - e[..., j - 1, ...]|   along one axis
    seams   = mean of step_j over the border lines j
    lattice = mean of step_j over the other lattice lines (multiples of the period)
    ratio   = seams / lattice

1.0 means the borders are no more visible than any patch (tubelet) border; a hard seam gives
ratios far above 1. Comparing with lattice lines rather than all lines keeps the patch grid itself
(see :mod:`vitok.metrics.grid`) out of the measure.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def line_steps(error: Tensor, dim: int, period: int, lines: Iterable[int]) -> tuple[list[float], list[float]]:
    """Mean absolute steps of ``error`` along ``dim`` into each lattice line ``j`` (a multiple of
    ``period`` inside the axis): (steps at ``lines``, steps at the other lattice lines).

    Raises:
        ValueError: a ``period`` below 1, or a line that is not a lattice line inside the axis.
    """
    length = error.shape[dim]
    lines = set(lines)
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    lattice = set(range(period, length, period))
    if not lines <= lattice:
        raise ValueError(f"border lines {sorted(lines - lattice)} are not multiples of {period} inside 1..{length - 1}")
    reduce = [d for d in range(error.ndim) if d != dim % error.ndim]
    steps = error.double().diff(dim=dim).abs().mean(dim=reduce)  # steps[j - 1]: into line j
    at = [steps[j - 1].item() for j in sorted(lattice) if j in lines]
    other = [steps[j - 1].item() for j in sorted(lattice) if j not in lines]
    return at, other


def seam_ratio(original: Tensor, recon: Tensor, borders: dict[int, Iterable[int]], period: dict[int, int]) -> float:
    """Mean error step across window borders over that across the other lattice lines, pooled over
    the axes in ``borders`` ({dim: border positions}) with their lattice ``period`` ({dim: pixels
    or frames}); see the module docstring.

    Raises:
        ValueError: shapes differ, or no border / no other lattice line to compare with.
    """
    if original.shape != recon.shape:
        raise ValueError(f"original {tuple(original.shape)} and recon {tuple(recon.shape)} differ in shape")
    error = recon.double() - original.double()
    at, other = [], []
    for dim, lines in borders.items():
        a, o = line_steps(error, dim, period[dim], lines)
        at, other = at + a, other + o
    if not at or not other:
        raise ValueError("seam_ratio needs at least one border line and one other lattice line")
    return (sum(at) / len(at)) / max(sum(other) / len(other), torch.finfo(torch.float64).tiny)


def window_borders(windows: list[tuple[int, int]], scale: int) -> set[int]:
    """The inner borders, in output units (``scale`` per token), of windows ``[start, end)`` in
    tokens laid along one axis (:meth:`ViTok.tile_windows`): every start and end except the axis's
    own ends.

    >>> sorted(window_borders([(0, 4), (3, 7), (6, 10)], 8))
    [24, 32, 48, 56]
    """
    length = max(end for _, end in windows)
    return ({start * scale for start, _ in windows} | {end * scale for _, end in windows}) - {0, length * scale}
