"""Streaming, DDP-aware evaluation metrics with an ``update`` / ``compute`` interface.

Inputs of ``update`` are batches of originals and reconstructions with values in [-1, 1]:
images (B, 3, H, W) or videos (B, 3, T, H, W). PSNR and SSIM are computed on uint8-quantised
values in [0, 255] (per image, or per frame for videos, then averaged); LPIPS on the quantised
values mapped back to [-1, 1]; Frechet metrics on features of both sets.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vitok.checks import check_pair, describe
from vitok.io import from_uint8, to_uint8
from vitok.metrics.frechet import FeatureStats, frechet_distance
from vitok.metrics.psnr import psnr_uint8
from vitok.metrics.ssim import SSIM_WINDOW, ssim_uint8
from vitok.nn.patch import to_frames


def check_batches(x: object, y: object) -> None:
    """``TypeError`` / ``ValueError`` unless originals and reconstructions are tensors of one shape,
    images (B, C, H, W) or videos (B, C, T, H, W)."""
    check_pair(("x", "y"), x, y, (4, 5), layout="(B, C, H, W) or (B, C, T, H, W)")


def _all_reduce_sum(values: Tensor) -> Tensor:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        values = values.clone()
        dist.all_reduce(values)
    return values


class MeanMetric:
    """Mean of a per-frame score ``fn(x_uint8, y_uint8) -> (N,)`` over everything seen;
    ``min_size`` is the smallest frame height and width ``fn`` accepts."""

    def __init__(self, name: str, fn: Callable[[Tensor, Tensor], Tensor], min_size: int = 1) -> None:
        self.name, self.fn, self.min_size = name, fn, min_size
        self.total, self.count = 0.0, 0

    def update(self, x: Tensor, y: Tensor) -> None:
        check_batches(x, y)
        scores = self.fn(to_uint8(to_frames(x)), to_uint8(to_frames(y))).double()
        self.total += float(scores.sum())
        self.count += scores.numel()

    def compute(self) -> float:
        total, count = _all_reduce_sum(torch.tensor([self.total, float(self.count)], dtype=torch.float64)).tolist()
        if count == 0:
            raise ValueError(f"{self.name}: no samples seen")
        return total / count


class LPIPSMetric(MeanMetric):
    def __init__(self, net: str = "alex", cache: str | None = None) -> None:
        from vitok.metrics.lpips import LPIPS

        model = LPIPS(net, cache=cache)
        super().__init__(f"lpips_{net}", lambda x, y: model.to(x.device)(from_uint8(x), from_uint8(y)),
                         min_size=model.min_size)


class GridMetric:
    """The patch-grid measure (:mod:`vitok.metrics.grid`) pooled over everything seen, on uint8
    values, frame by frame for videos; ``period`` is the patch size or downsampling factor."""

    def __init__(self, period: int) -> None:
        from vitok.metrics.grid import lattice_steps

        self.name, self.period, self._steps = "grid", period, lattice_steps
        lattice_steps(torch.zeros(1, 1, 2, 2), period)  # validates the period now, not after the work
        self.stats = torch.zeros(4, dtype=torch.float64)

    def update(self, x: Tensor, y: Tensor) -> None:
        check_batches(x, y)
        error = to_uint8(to_frames(y)).double() - to_uint8(to_frames(x)).double()
        self.stats += self._steps(error, self.period)

    def compute(self) -> float:
        from vitok.metrics.grid import grid_ratio

        return grid_ratio(_all_reduce_sum(self.stats))


class FrechetMetric:
    """Frechet distance between the feature statistics of originals and reconstructions.

    ``extract`` maps a batch (in the layout given to ``update``, uint8 values as float) to (N, D)
    features; ``per_frame`` flattens videos to frames first (frame-wise rFID).
    """

    def __init__(self, name: str, extract: Callable[[Tensor], Tensor], per_frame: bool = True) -> None:
        self.name, self.extract, self.per_frame = name, extract, per_frame
        self.real, self.fake = FeatureStats(), FeatureStats()

    def update(self, x: Tensor, y: Tensor) -> None:
        check_batches(x, y)
        prep = (lambda v: to_uint8(to_frames(v))) if self.per_frame else to_uint8
        with torch.no_grad():
            self.real.update(self.extract(prep(x)))
            self.fake.update(self.extract(prep(y)))

    def compute(self) -> float:
        return frechet_distance(*self.real.reduced().mean_cov(), *self.fake.reduced().mean_cov())


METRICS = ("psnr", "ssim", "lpips", "lpips-vgg", "rfid", "rfvd", "grid")


def canonical_metric(name: str) -> str:
    """The one spelling of a metric name: lower case, '-' for '_' (``lpips_vgg`` -> ``lpips-vgg``),
    ``lpips-alex`` -> ``lpips``. Raises ``ValueError`` (with the closest name) for an unknown one."""
    import difflib

    if not isinstance(name, str):
        raise TypeError(f"a metric name must be a string (one of {', '.join(METRICS)}), got {describe(name)}")
    canonical = name.strip().lower().replace("_", "-")
    canonical = "lpips" if canonical == "lpips-alex" else canonical
    if canonical not in METRICS:
        close = difflib.get_close_matches(canonical, METRICS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}{hint}")
    return canonical


def build_metric(name: str, device: torch.device, cache: str | None = None,
                 period: int = 8) -> MeanMetric | FrechetMetric | GridMetric:
    """One of :data:`METRICS` (any spelling :func:`canonical_metric` accepts): ``psnr``, ``ssim``,
    ``lpips`` (AlexNet), ``lpips-vgg``, ``rfid`` (frame-wise for video), ``rfvd``, ``grid`` (the
    patch-grid measure for a lattice of ``period`` pixels)."""
    name = canonical_metric(name)
    if name == "grid":
        return GridMetric(period)
    if name == "psnr":
        return MeanMetric("psnr", psnr_uint8)
    if name == "ssim":
        return MeanMetric("ssim", ssim_uint8, min_size=SSIM_WINDOW)
    if name == "lpips":
        return LPIPSMetric("alex", cache)
    if name == "lpips-vgg":
        return LPIPSMetric("vgg", cache)
    if name == "rfid":
        from vitok.metrics.inception import InceptionV3

        net = InceptionV3(cache=cache).to(device)
        return FrechetMetric("rfid", net, per_frame=True)
    from vitok.metrics.i3d import I3D  # rfvd

    net = I3D(cache=cache).to(device)
    return FrechetMetric("rfvd", net.features_uint8, per_frame=False)
