"""The ``data`` section of a training config: where the training data is and how it is cropped.

Torch-free, like every config section, so that a config is read and checked (``vitok train``'s
one-line errors) before torch is imported; :mod:`vitok.data.loader` builds its DataLoader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

from vitok.checks import Rule

if TYPE_CHECKING:
    from vitok.data.transforms import TrainTransform

Kind = Literal["image", "video"]
MAX_SIDE = 8192  # largest training crop: beyond this no accelerator holds the activations


def _sizes(value: int | list[int]) -> list[int]:
    return value if isinstance(value, list) else [value]


@dataclass
class DataConfig:
    """Where the training data is and how it is cropped.

    Attributes:
        train: image/video folders or files, or tar shard paths / globs (WebDataset).
        kind: "image" or "video".
        image_size: crop size (H = W) in pixels, or a list of sizes: each optimiser step then
            draws one of them (uniformly, from the run seed and the step, so a resumed run draws
            the same), and every sample of that step is cropped to it (multi-resolution training;
            images only, folders only).
        num_frames, frame_stride: clip length and frame step for videos.
        scale: area range of the random resized crop (the paper's 0.8-1).
        short_side: instead of ``scale``: resize shorter side to a random length in [lo, hi]
            and take a random crop (for a few large photos).
        hflip: random horizontal flips.
        vflip, rot90: random vertical flips and quarter turns (off: the paper's recipe; on: with
            ``hflip`` all eight symmetries of the square). For ``train`` files and shards; the
            ``motion`` clips (camera moves over photos) only take ``hflip``.
        workers: DataLoader worker processes per rank.
        motion: photo folders turned into camera-motion clips (video only), mixed with ``train``.
        motion_repeat, train_repeat: how many times each source counts per epoch (mixing weights).
        subset: train on only this many of the ``train`` files (a data-scaling study): the first N of
            a fixed permutation of the sorted files (:func:`vitok.data.datasets.nested_subset`), so
            a smaller subset lies inside a larger one; folders only. None: all of them.
    """

    train: list[str] = field(default_factory=list)
    kind: Kind = "image"
    image_size: int | list[int] = 256
    num_frames: int = 16
    frame_stride: int = 1
    scale: tuple[float, float] = (0.8, 1.0)
    short_side: tuple[int, int] | None = None
    hflip: bool = True
    vflip: bool = False
    rot90: bool = False
    workers: int = 0
    motion: list[str] = field(default_factory=list)
    motion_repeat: int = 1
    train_repeat: int = 1
    subset: int | None = None

    ranges: ClassVar[dict[str, Rule]] = {
        "image_size": (lambda v: bool(_sizes(v)) and all(1 <= s <= MAX_SIDE for s in _sizes(v)),
                       f"an int or a non-empty list of ints in [1, {MAX_SIDE}]"),
        "num_frames": (lambda v: 1 <= v <= 4096, "in [1, 4096]"),
        "frame_stride": (lambda v: v >= 1, ">= 1"),
        "scale": (lambda v: 0 < v[0] <= v[1] <= 1, "[lo, hi] with 0 < lo <= hi <= 1"),
        "short_side": (lambda v: v is None or 1 <= v[0] <= v[1] <= 4 * MAX_SIDE,
                       f"null or [lo, hi] with 1 <= lo <= hi <= {4 * MAX_SIDE}"),
        "workers": (lambda v: 0 <= v <= 256, "in [0, 256]"),
        "motion_repeat": (lambda v: v >= 1, ">= 1"),
        "train_repeat": (lambda v: v >= 1, ">= 1"),
        "subset": (lambda v: v is None or v >= 1, "null (all files) or >= 1"),
    }

    def __post_init__(self) -> None:
        if any(size <= 0 for size in self.sizes):
            raise ValueError(f"data.image_size must be positive, got {self.image_size}")
        if len(self.sizes) > 1 and self.kind != "image":
            raise ValueError("several data.image_size values (multi-resolution training) need data.kind=image")

    @property
    def sizes(self) -> list[int]:
        """The crop sizes (one entry unless training at several resolutions)."""
        sizes = self.image_size if isinstance(self.image_size, list) else [self.image_size]
        if not sizes:
            raise ValueError("data.image_size is an empty list")
        return list(sizes)

    def transform(self) -> TrainTransform:
        from vitok.data.transforms import TrainTransform

        size = self.sizes[0]
        return TrainTransform((size, size), scale=self.scale, hflip=self.hflip, short_side=self.short_side,
                              vflip=self.vflip, rot90=self.rot90)
