"""Tiled and chunked encode / decode: large images and long videos at bounded memory, no seams.

Global attention costs grow with the square of the token count, so a 4096x4096 image (65,536
tokens at p = 8) does not fit. Tiling cuts the token grid into overlapping windows of about the
training size, runs the model on each window and blends the results:

- windows are laid in token units along each tiled axis (H and W, and T in tubelets for video):
  the fewest windows of at most ``tile`` tokens that overlap by ``overlap`` tokens, their lengths
  balanced, the last one flush with the end (:func:`spans`);
- each window's output is weighted by a ramp that rises linearly across the overlap with the
  previous window and falls across the overlap with the next one (weight 1 elsewhere and at the
  image's own borders); the ramps of two neighbours sum to one, so the blend is a partition of
  unity and a constant output stays constant;
- encoding blends the posterior parameters per latent token, decoding blends pixels.

The mechanism is exact when the input fits in one window (one window, weight 1). A window is
always cut at token (tubelet) boundaries, so a patch is never split. The pixel head's conv tail
(:mod:`vitok.nn.pixel_head`) has no statistics across the image, so a tile sees the same function
as the whole image. ViTok-v2 lists tiled decoding as future work; the blending follows the
overlap-and-feather scheme of diffusers' ``AutoencoderKL.enable_tiling``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from vitok.checks import check_int

if TYPE_CHECKING:
    from vitok.model_config import ViTokConfig


@dataclass(frozen=True)
class TilingConfig:
    """When and how :class:`~vitok.models.vitok.ViTok` tiles (all sizes in pixels / frames).

    Attributes:
        enabled: tile automatically above ``threshold`` (``encode(..., tiled=True/False)`` forces).
        tile: (H, W) of a spatial window in pixels, at least one patch and rounded down to whole
            patches; None = the model's ``config.image_size``.
        overlap: overlap of neighbouring windows as a fraction of the window (0 <= overlap < 1),
            rounded to whole tokens (see :func:`spans`). The default, 3 tokens of a 16-token
            window, keeps the seams no rougher than the patch lattice's own lines and the windows
            per megapixel flat from 512 to 4096 px (``benchmarks/bench_tiling.py``, docs/tiling).
        frames: frames per temporal chunk, rounded up to whole tubelets (a multiple of q); None =
            the model's ``config.num_frames``.
        frame_overlap: overlap of neighbouring chunks as a fraction of the chunk.
        threshold: automatic tiling starts when the input has more than ``threshold`` times the
            tokens of one window (tile x tile tokens, times the chunk's tubelets for a video).
        batch_slice: process at most this many batch items at once (None = the whole batch).
        progress: show a progress bar (tqdm, on stderr) over the windows of a tiled call.
    """

    enabled: bool = True
    tile: tuple[int, int] | None = None
    overlap: float = 0.1875
    frames: int | None = None
    frame_overlap: float = 0.25
    threshold: float = 4.0
    batch_slice: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        from vitok.checks import check_int, check_number, check_shape

        check_number("tiling overlap", self.overlap)
        check_number("tiling frame_overlap", self.frame_overlap)
        check_number("tiling threshold", self.threshold)
        if self.tile is not None:
            check_shape("tiling tile", self.tile, 2, what="a positive (H, W) of ints")
        check_int("tiling frames", self.frames, 1, optional=True)
        check_int("tiling batch_slice", self.batch_slice, 1, optional=True)
        for name in ("overlap", "frame_overlap"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"tiling {name} must be in [0, 1), got {getattr(self, name)}")
        if self.threshold < 1:
            raise ValueError(f"tiling threshold must be >= 1, got {self.threshold}")


class TilingMixin:
    """The tiling switches of :class:`~vitok.models.vitok.ViTok` (diffusers' names:
    ``enable_tiling`` / ``disable_tiling`` / ``enable_slicing`` / ``disable_slicing``) and the
    policy that decides, per call, whether an input is tiled and into which windows. The model
    holds its policy in ``self.tiling`` (a :class:`TilingConfig`) and its sizes in ``self.config``.
    """

    tiling: TilingConfig
    config: ViTokConfig

    def enable_tiling(self, tile: tuple[int, int] | int | None = None, overlap: float | None = None,
                      frames: int | None = None, frame_overlap: float | None = None,
                      threshold: float | None = None) -> None:
        """Tile large inputs automatically (on by default): spatial windows of at most ``tile``
        pixels (default ``config.image_size``; at least one patch, rounded down to whole patches)
        overlapping by ``overlap`` of a window, temporal chunks of at most ``frames`` frames
        (default ``config.num_frames``, rounded up to whole tubelets), whenever an input has more
        than ``threshold`` windows' worth of tokens (a window: tile x tile, times the chunk for a
        video). An argument left None keeps its current value (``model.tiling = TilingConfig()``
        restores the defaults), so ``enable_tiling()`` after :meth:`disable_tiling` brings back
        the same policy. ``TypeError`` / ``ValueError`` for values out of range (see
        :class:`TilingConfig`)."""
        tile = (tile, tile) if isinstance(tile, int) and not isinstance(tile, bool) else tile
        tile = tuple(tile) if isinstance(tile, list) else tile
        changes = {k: v for k, v in dict(tile=tile, overlap=overlap, frames=frames, frame_overlap=frame_overlap,
                                         threshold=threshold).items() if v is not None}
        config = dataclasses.replace(self.tiling, enabled=True, **changes)
        p = self.config.patch_size
        if config.tile is not None:
            for side in config.tile:
                check_int("tile", side, p)  # at least one patch
        self.tiling = config

    def disable_tiling(self) -> None:
        """Never tile automatically (``encode(..., tiled=True)`` still does)."""
        self.tiling = dataclasses.replace(self.tiling, enabled=False)

    def show_progress(self, enabled: bool = True) -> None:
        """Draw a progress bar of tiles (tqdm, stderr) while a large input is tiled."""
        if not isinstance(enabled, bool):
            raise TypeError(f"show_progress takes True or False, got {enabled!r}")
        self.tiling = dataclasses.replace(self.tiling, progress=enabled)

    def enable_slicing(self, batch_slice: int = 1) -> None:
        """Encode / decode at most ``batch_slice`` (an int >= 1) batch items at a time (bounds
        memory for big batches)."""
        check_int("batch_slice", batch_slice, 1)
        self.tiling = dataclasses.replace(self.tiling, batch_slice=batch_slice)

    def disable_slicing(self) -> None:
        self.tiling = dataclasses.replace(self.tiling, batch_slice=None)

    def tile_windows(self, grid: tuple[int, int, int], video: bool) -> list[list[tuple[int, int]]]:
        """Token-unit windows along (t,) h, w for a token ``grid`` (whether the policy tiles it
        automatically is :meth:`is_large`)."""
        cfg = self.tiling
        th, tw, chunk = self._window_tokens()
        t, h, w = grid
        windows = [spans(h, th, overlap_tokens(cfg.overlap, th)), spans(w, tw, overlap_tokens(cfg.overlap, tw))]
        if video:
            windows.insert(0, spans(t, chunk, overlap_tokens(cfg.frame_overlap, chunk)))
        return windows

    def _window_tokens(self) -> tuple[int, int, int]:
        """(tile height, tile width, chunk length) in tokens / tubelets."""
        cfg, q, p = self.tiling, self.config.tubelet_size, self.config.patch_size
        tile_h, tile_w = cfg.tile or self.config.image_size
        return max(1, tile_h // p), max(1, tile_w // p), max(1, math.ceil((cfg.frames or self.config.num_frames) / q))

    def is_large(self, grid: tuple[int, int, int], video: bool) -> bool:
        """Whether automatic tiling tiles a token ``grid``: more than ``threshold`` windows' worth of
        tokens (a window: th x tw tokens, times the chunk's tubelets for a video). The only size
        test on the untiled path, so a compiled ``encode`` / ``decode`` with tiling on keeps one
        graph for all inputs below the threshold."""
        th, tw, chunk = self._window_tokens()
        t, h, w = grid
        return t * h * w > self.tiling.threshold * th * tw * (chunk if video else 1)

    def _tiles(self, tiled: bool | None, grid: tuple[int, int, int], video: bool) -> bool:
        """Whether a call with ``tiled`` (None = automatic) tiles a token ``grid``. With tiling off
        nothing looks at the size, so a compiled encode / decode keeps one graph."""
        if tiled is None:
            return self.tiling.enabled and self.is_large(grid, video)
        if not isinstance(tiled, bool):
            raise TypeError(f"tiled must be None (automatic), True or False, got {tiled!r}")
        return tiled


def overlap_tokens(fraction: float, window: int) -> int:
    """The overlap in whole tokens for ``fraction`` of a ``window``: rounded up, so a non-zero
    fraction never rounds to no overlap (3/16 of 16 tokens is 3; 1/4 of a 2-tubelet chunk is 1).
    :func:`spans` caps it at ``window - 1``."""
    return math.ceil(fraction * window - 1e-9)


def spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Windows ``[start, end)`` covering ``[0, length)``: the fewest windows of at most ``tile`` that
    overlap their neighbours by ``overlap`` (at most ``tile - 1``), their lengths balanced (they
    differ by at most one), the first at 0 and the last flush with the end.

    The fewest windows, because each costs a near-fixed time; balanced, because the slack that
    whole tiles would spend on extra overlap is taken off every window instead (a 512 px image at
    p = 16 is 3 windows of 12-13 tokens, not of 16 overlapping by 8). The overlap stays at its
    target, so the time per pixel stays flat across sizes (``benchmarks/bench_tiling.py``).

    >>> spans(10, 4, 1)
    [(0, 4), (3, 7), (6, 10)]
    >>> spans(11, 4, 1)
    [(0, 4), (3, 7), (6, 9), (8, 11)]
    """
    if length <= tile:
        return [(0, length)]
    overlap = min(overlap, tile - 1)
    count = math.ceil((length - overlap) / (tile - overlap))
    covered = length + (count - 1) * overlap  # every window's length, overlaps counted twice
    sizes = [covered // count + (i < covered % count) for i in range(count)]
    windows, start = [], 0
    for size in sizes:
        windows.append((start, start + size))
        start += size - overlap
    return windows


def ramp_weights(windows: list[tuple[int, int]], index: int, scale: int) -> Tensor:
    """Blend weights (length ``(end - start) * scale``) of window ``index`` along one axis, in output
    units (``scale`` outputs per token): rising linearly over the overlap with the previous window,
    falling over the overlap with the next one, 1 elsewhere; neighbouring weights sum to 1."""
    start, end = windows[index]
    positions = torch.arange((end - start) * scale, dtype=torch.float64, device="cpu") + 0.5  # unit centres
    weight = torch.ones_like(positions)
    if index > 0:
        lap = (windows[index - 1][1] - start) * scale
        if lap > 0:
            weight = torch.minimum(weight, positions / lap)
    if index < len(windows) - 1:
        lap = (end - windows[index + 1][0]) * scale
        if lap > 0:
            weight = torch.minimum(weight, ((end - start) * scale - positions) / lap)
    return weight.clamp(0, 1)


def along(vector: Tensor, axis: int, axes: int) -> Tensor:
    """A 1-D ``vector`` viewed along ``axis`` of the last ``axes`` dimensions (size 1 elsewhere),
    so that it broadcasts over them."""
    shape = [1] * axes
    shape[axis] = -1
    return vector.view(shape)


def tiled_apply(fn: Callable[[Tensor], Tensor], x: Tensor, windows: list[list[tuple[int, int]]],
                scale_in: list[int], scale_out: list[int], out_channels: int,
                progress: Callable[[int, int], None] | None = None) -> Tensor:
    """Apply ``fn`` window by window over the last ``len(windows)`` axes of ``x`` and blend.

    Args:
        fn: maps an input crop (..., C_in, *sizes_in) to (..., out_channels, *sizes_out) with
            ``sizes_out[i] = sizes_in[i] / scale_in[i] * scale_out[i]``.
        x: the input, its tiled axes already whole multiples of ``scale_in``.
        windows: per tiled axis, the :func:`spans` in token units.
        scale_in, scale_out: input / output elements per token along each tiled axis.
        out_channels: channels (dim 1) of ``fn``'s output.
        progress: called with (done, total) after each window.
    Returns:
        the blended output, (B, out_channels, *token_counts * scale_out).
    """
    axes = len(windows)
    tokens = [w[-1][1] for w in windows]
    shape = (x.shape[0], out_channels, *x.shape[2:x.ndim - axes], *(t * s for t, s in zip(tokens, scale_out)))
    out = torch.zeros(shape, dtype=torch.float32, device=x.device)
    # the weights are separable and the windows a full grid, so the sum of the weights is the product
    # of one sum per axis: the output is divided by each in turn, and the only buffer of the output's
    # size is the output (memory flat in a video's length)
    ramps = [[ramp_weights(w, i, s) for i in range(len(w))] for w, s in zip(windows, scale_out)]
    grid = list(itertools.product(*(range(len(w)) for w in windows)))
    for done, index in enumerate(grid, 1):
        crop_in = tuple(slice(w[i][0] * s, w[i][1] * s) for w, i, s in zip(windows, index, scale_in))
        crop_out = tuple(slice(w[i][0] * s, w[i][1] * s) for w, i, s in zip(windows, index, scale_out))
        y = fn(x[(..., *crop_in)]).float()
        weight = torch.ones((), dtype=torch.float64, device="cpu")
        for axis, i in enumerate(index):
            weight = weight * along(ramps[axis][i], axis, axes)
        weight = weight.to(out.device, torch.float32)
        out[(..., *crop_out)] += y * weight
        if progress is not None:
            progress(done, len(grid))
    for axis, (w, s) in enumerate(zip(windows, scale_out)):  # divide by the weights' sum, one axis at a time
        line = torch.zeros(w[-1][1] * s, dtype=torch.float64)
        for (start, end), ramp in zip(w, ramps[axis]):
            line[start * s:end * s] += ramp
        out.div_(along(line.to(out.device, torch.float32), axis, axes))  # in place, no (T, H, W) weight map
    return out


def progress_bar(description: str, enabled: bool) -> Callable[[int, int], None] | None:
    """A ``progress`` callback for :func:`tiled_apply` that draws a tqdm bar of windows on stderr
    (opened on the first window, closed after the last), or None when not ``enabled``."""
    if not enabled:
        return None
    state: dict = {}

    def update(done: int, total: int) -> None:
        from tqdm import tqdm

        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc=description, unit="tile", leave=False, dynamic_ncols=True)
        state["bar"].update(1)
        if done == total:
            state.pop("bar").close()

    return update


def batch_slices(batch: int, size: int | None) -> list[slice]:
    """Consecutive slices of at most ``size`` items (one slice for the whole batch if None)."""
    size = size or batch
    return [slice(i, min(i + size, batch)) for i in range(0, batch, size)]


def split_batch(x: Tensor, size: int | None) -> list[Tensor]:
    """``x`` cut along the batch into slices of at most ``size`` items (``[x]`` if None)."""
    return [x] if size is None else [x[part] for part in batch_slices(x.shape[0], size)]


def concat_slices(fn: Callable[[Tensor], Tensor], x: Tensor, size: int | None) -> Tensor:
    """``fn`` over batch slices of ``x``, concatenated (diffusers' ``enable_slicing``)."""
    if size is None:
        return fn(x)
    parts = batch_slices(x.shape[0], size)
    if len(parts) == 1:
        return fn(x)
    return torch.cat([fn(x[part]) for part in parts])
