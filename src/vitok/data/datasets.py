"""Map-style datasets over folders of images or videos.

Items are addressed by ``(index, seed)`` keys (see :mod:`vitok.data.sampler`): the seed drives
the sample's crop, flip and clip start. An unreadable file is logged with its path, skipped (the
next file is used instead, so batches keep their size) and reported in the item's ``skipped``
list, which the trainer counts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from vitok import io
from vitok.data.transforms import EvalTransform, TrainTransform

log = logging.getLogger("vitok.data")
Kind = Literal["image", "video"]


def list_files(roots: list[str | Path], kind: Kind) -> list[Path]:
    """Sorted media files of ``kind`` under the given folders (recursive) or file paths."""
    accept = io.is_image_file if kind == "image" else io.is_video_file
    files: list[Path] = []
    for root in map(Path, roots):
        if root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.is_file() and accept(p))
        elif root.is_file() and accept(root):
            files.append(root)
        elif not root.exists():
            raise FileNotFoundError(f"data path does not exist: {root}")
    if not files:
        raise ValueError(f"no {kind} files found under {[str(r) for r in roots]}")
    return files


def fit_clip(frames: Tensor, num_frames: int) -> Tensor:
    """Pad a short clip (3, t, H, W) to ``num_frames`` by repeating its last frame."""
    t = frames.shape[1]
    if t >= num_frames:
        return frames[:, :num_frames]
    return torch.cat([frames, frames[:, -1:].expand(-1, num_frames - t, -1, -1)], dim=1)


class MediaFolder(Dataset):
    """Images (3, H, W) or clips (3, T, H, W) from files, transformed, values in [-1, 1].

    Args:
        roots: folders (searched recursively) or files.
        kind: "image" or "video".
        transform: :class:`TrainTransform` or :class:`EvalTransform`.
        num_frames, frame_stride: clip length and frame step for videos; short videos use a
            smaller stride, then repeat their last frame.
        random_clips: random clip start (training) or the first frames (evaluation).
        max_tries: consecutive unreadable files tolerated before giving up.
    """

    def __init__(self, roots: list[str | Path], kind: Kind, transform: TrainTransform | EvalTransform,
                 num_frames: int = 16, frame_stride: int = 1, random_clips: bool = True, max_tries: int = 16) -> None:
        if kind not in ("image", "video"):
            raise ValueError(f"kind must be 'image' or 'video', got {kind!r}")
        self.files = list_files(roots, kind)
        self.kind = kind
        self.transform = transform
        self.num_frames = num_frames
        self.frame_stride = frame_stride
        self.random_clips = random_clips
        self.max_tries = max_tries
        self._frame_counts: dict[Path, int] = {}

    def __len__(self) -> int:
        return len(self.files)

    def load_clip(self, path: Path, gen: torch.Generator) -> Tensor:
        if path not in self._frame_counts:
            self._frame_counts[path] = io.video_info(path)[0]
        total = self._frame_counts[path]
        stride = self.frame_stride
        while stride > 1 and (self.num_frames - 1) * stride >= total:
            stride -= 1
        last_start = max(0, total - 1 - (self.num_frames - 1) * stride)
        start = int(torch.randint(0, last_start + 1, (), generator=gen)) if self.random_clips else 0
        return fit_clip(io.load_video(path, self.num_frames, start=start, stride=stride), self.num_frames)

    def load(self, path: Path, gen: torch.Generator, size: int | None = None) -> Tensor:
        transform = self.transform if size is None else self.transform.resized((size, size))
        if self.kind == "image":
            x = io.load_image(path, min_side=transform.decode_min_side)
        else:
            x = self.load_clip(path, gen)
        return transform(x, gen)

    def __getitem__(self, key: int | tuple[int, ...]) -> dict[str, object]:
        """``key``: an index, ``(index, seed)``, or ``(index, seed, size)`` (a crop size for
        this sample, multi-resolution training)."""
        index, seed, size = (*key, None)[:3] if isinstance(key, tuple) else (key, key, None)
        skipped: list[str] = []
        for attempt in range(self.max_tries):
            path = self.files[(index + attempt) % len(self.files)]
            gen = torch.Generator().manual_seed(seed)
            try:
                return {"x": self.load(path, gen, size), "seed": seed, "path": str(path), "skipped": skipped}
            except ValueError as err:
                log.warning("skipping unreadable file %s: %s", path, err)
                skipped.append(str(path))
        raise RuntimeError(f"{self.max_tries} unreadable files in a row from {self.files[index]}: {skipped}")


class KeyedConcat(Dataset):
    """Concatenation of ``(index, seed)``-keyed datasets, each repeated ``repeats[i]`` times (a
    mixing weight: a source repeated twice is sampled twice as often per epoch)."""

    def __init__(self, datasets: list[Dataset], repeats: list[int] | None = None) -> None:
        self.datasets = datasets
        self.repeats = repeats or [1] * len(datasets)
        self.sizes = [len(d) * r for d, r in zip(datasets, self.repeats)]

    def __len__(self) -> int:
        return sum(self.sizes)

    def __getitem__(self, key: tuple[int, ...]) -> dict[str, object]:
        index, *rest = key
        for dataset, size in zip(self.datasets, self.sizes):
            if index < size:
                return dataset[(index % len(dataset), *rest)]
            index -= size
        raise IndexError(f"index {key[0]} out of range for {len(self)} items")


def collate(items: list[dict[str, object]]) -> dict[str, object]:
    """Stack samples: ``x`` (B, 3, [T,] H, W), ``seed`` (B,) int64, ``skipped`` list of paths."""
    return {
        "x": torch.stack([item["x"] for item in items]),
        "seed": torch.tensor([item["seed"] for item in items], dtype=torch.int64),
        "path": [item["path"] for item in items],
        "skipped": [p for item in items for p in item["skipped"]],
    }
