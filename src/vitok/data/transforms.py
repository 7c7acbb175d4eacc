"""Training and evaluation crops for images (3, H, W) and clips (3, T, H, W), values in [-1, 1].

Every frame of a clip gets the same crop and flip. Randomness comes from an explicit
``torch.Generator`` so that a sample's augmentation depends only on its seed (exact resume,
identical data under any number of workers or ranks).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vitok.checks import check_number, check_shape, check_tensor, describe
from vitok.io import resize, resize_center_crop


def _pair(name: str, value: object) -> tuple[object, object]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (lo, hi), got {describe(value)}")
    return value[0], value[1]


def _check_input(x: object) -> None:
    """An image (C, H, W) or clip (C, T, H, W) of floats with H, W >= 1."""
    check_tensor("x", x, (3, 4), floating=True, layout="(C, H, W) or (C, T, H, W)")


def uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    """One draw from U[lo, hi) using ``gen`` (reproducible per sample seed)."""
    return lo + (hi - lo) * torch.rand((), generator=gen).item()


def random_resized_crop_box(h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float],
                            gen: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a crop with area fraction in ``scale`` and aspect ratio
    (w/h, log-uniform) in ``ratio``; falls back to the largest centred crop of ratio 1."""
    area = h * w
    for _ in range(10):
        target = area * uniform(gen, *scale)
        aspect = math.exp(uniform(gen, math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (), generator=gen))
            left = int(torch.randint(0, w - cw + 1, (), generator=gen))
            return top, left, ch, cw
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side, side


@dataclass(frozen=True)
class TrainTransform:
    """Random crop to ``size`` (H, W), random flips and quarter turns.

    Default: the paper's random resized crop (area 0.8-1) and horizontal flips. With
    ``short_side=(lo, hi)`` the image is instead (virtually) resized so its shorter side is a
    random length in [lo, hi] and a ``size`` crop is taken at a random position: the way to get
    many distinct, detailed crops out of a few large photos.

    ``vflip`` and ``rot90`` (off by default; the paper uses neither) add random vertical flips
    and random rotations by a multiple of 90 degrees: with ``hflip``, the eight symmetries of the
    square, for small training sets (docs/quality measures them against the train-val gap of a
    model trained on 77 photos: no change within 375 steps). A quarter-turned crop is cut with
    height and width swapped, so the output is always ``size``. With both off the random stream is
    the one without them (a run's crops do not change when the options are added).
    """

    size: tuple[int, int]
    scale: tuple[float, float] = (0.8, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True
    short_side: tuple[int, int] | None = None
    vflip: bool = False
    rot90: bool = False

    def __post_init__(self) -> None:
        check_shape("size", self.size, 2, what="(H, W) of ints")
        lo, hi = (check_number("scale", v) for v in _pair("scale", self.scale))
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"scale must be (lo, hi) with 0 < lo <= hi <= 1, got {self.scale}")
        lo, hi = (check_number("ratio", v) for v in _pair("ratio", self.ratio))
        if not 0 < lo <= hi:
            raise ValueError(f"ratio must be (lo, hi) with 0 < lo <= hi, got {self.ratio}")
        if self.short_side is not None:
            lo, hi = check_shape("short_side", _pair("short_side", self.short_side), 2, what="(lo, hi) of ints")
            if lo > hi:
                raise ValueError(f"short_side must be (lo, hi) with 1 <= lo <= hi, got {self.short_side}")

    def box(self, h: int, w: int, gen: torch.Generator,
            size: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the crop in an H x W source; height and width are at
        least 1 pixel (an image smaller than the crop is upscaled). With ``short_side``, the crop
        is for an output of ``size`` (default :attr:`size`); without, its shape comes from
        ``scale`` and ``ratio`` alone and ``size`` is not used."""
        if self.short_side is None:
            return random_resized_crop_box(h, w, self.scale, self.ratio, gen)
        out_h, out_w = size or self.size
        factor = min(h, w) / uniform(gen, *self.short_side)  # source pixels per output pixel
        # the crop keeps the output's aspect ratio: where the drawn short side is below the output's
        # (or the output is wider than the source), the largest crop of that shape that fits
        factor = min(factor, h / out_h, w / out_w)
        ch = min(h, max(1, round(out_h * factor)))
        cw = min(w, max(1, round(out_w * factor)))
        top = int(torch.randint(0, h - ch + 1, (), generator=gen))
        left = int(torch.randint(0, w - cw + 1, (), generator=gen))
        return top, left, ch, cw

    def resized(self, size: tuple[int, int]) -> TrainTransform:
        """The same transform cropping to another ``size``."""
        return dataclasses.replace(self, size=size)

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        _check_input(x)
        turns = int(torch.randint(0, 4, (), generator=gen)) if self.rot90 else 0
        size = self.size[::-1] if turns % 2 else self.size  # cut (W, H), then turn to (H, W)
        top, left, ch, cw = self.box(*x.shape[-2:], gen, size)
        x = resize(x[..., top:top + ch, left:left + cw], size)
        if self.hflip and torch.rand((), generator=gen).item() < 0.5:
            x = x.flip(-1)
        if self.vflip and torch.rand((), generator=gen).item() < 0.5:
            x = x.flip(-2)
        if turns:
            x = torch.rot90(x, turns, dims=(-2, -1))
        return x.contiguous()

    @property
    def decode_min_side(self) -> int:
        """Smallest shorter side the decoder may downscale a photo to without losing detail."""
        return max(self.short_side[1] if self.short_side else 0, *self.size)


@dataclass(frozen=True)
class EvalTransform:
    """Resize the shorter side, then center-crop to ``size`` (the evaluation protocol)."""

    size: tuple[int, int]

    def __post_init__(self) -> None:
        check_shape("size", self.size, 2, what="(H, W) of ints")

    def resized(self, size: tuple[int, int]) -> EvalTransform:
        return dataclasses.replace(self, size=size)

    def __call__(self, x: Tensor, gen: torch.Generator | None = None) -> Tensor:
        _check_input(x)
        return resize_center_crop(x, self.size).contiguous()

    @property
    def decode_min_side(self) -> int:
        return max(self.size)
