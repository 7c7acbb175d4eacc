"""Map-style datasets over folders of images or videos.

Items are addressed by ``(index, seed)`` keys (see :mod:`vitok.data.sampler`): the seed drives
the sample's crop, flip and clip start. An unreadable file is logged (once per file) with its
path and reported in the item's ``skipped`` list, which the trainer counts per distinct file.
For training it is replaced by another file drawn from the sample's seed (batches keep their
size); for evaluation and inference (``substitute=False``) the item is dropped by :func:`collate`,
so each readable file is used exactly once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import BinaryIO

import torch
from torch import Tensor
from torch.utils.data import Dataset

from vitok import io
from vitok.checks import check_int, check_tensor, describe
from vitok.data.config import Kind
from vitok.data.transforms import EvalTransform, TrainTransform

log = logging.getLogger("vitok.data")


class UnreadableDataError(ValueError):
    """A data source yielded no readable sample after a bounded number of tries (the message
    names the source, the files tried and the first reason)."""


def describe_skipped(paths: list[str], shown: int = 5) -> str:
    """'skipped 2 unreadable files: a.png, b.jpg' (the first ``shown`` named, then a count)."""
    names = ", ".join(paths[:shown]) + (f" and {len(paths) - shown} more" if len(paths) > shown else "")
    return f"skipped {len(paths)} unreadable file{'s' if len(paths) != 1 else ''}: {names}"


def list_files(roots: list[str | Path], kind: Kind) -> list[Path]:
    """Sorted media files of ``kind`` under the given folders (recursive) or file paths, each once.

    Raises ``TypeError`` unless ``roots`` is a list of paths, ``ValueError`` for another ``kind``,
    ``FileNotFoundError`` for a path that does not exist and ``ValueError`` when nothing is found."""
    if isinstance(roots, (str, os.PathLike)) or not isinstance(roots, (list, tuple)) or not all(
            isinstance(r, (str, os.PathLike)) for r in roots):
        raise TypeError(f"roots must be a list of folders or files, got {describe(roots)}")
    if kind not in ("image", "video"):
        raise ValueError(f"kind must be 'image' or 'video', got {describe(kind)}")
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
    return list(dict.fromkeys(files))  # a file named twice (or inside a folder also named) counts once


def fit_clip(frames: Tensor, num_frames: int) -> Tensor:
    """Pad a short clip (C, t, H, W) to ``num_frames`` by repeating its last frame (or keep its
    first ``num_frames``). ``TypeError`` / ``ValueError`` naming the argument otherwise."""
    check_tensor("frames", frames, (4,), layout="(C, T, H, W)")
    check_int("num_frames", num_frames, 1)
    t = frames.shape[1]
    if t >= num_frames:
        return frames[:, :num_frames]
    return torch.cat([frames, frames[:, -1:].expand(-1, num_frames - t, -1, -1)], dim=1)


def read_clip(source: Path | BinaryIO, num_frames: int, frame_stride: int = 1,
              gen: torch.Generator | None = None, total: int | None = None) -> Tensor:
    """A clip (3, ``num_frames``, H, W) in [-1, 1] of a video file (a path, or a file-like object
    such as a shard member's bytes): frames ``start, start + stride, ...`` with ``start`` drawn
    uniformly from ``gen`` over the starts whose clip fits (the first frame when ``gen`` is None).
    ``stride`` is ``frame_stride``, lowered for a video too short for it; a video shorter than
    the clip is padded with its last frame (:func:`fit_clip`). ``total`` is the frame count when
    known (else it is read from the file; it may be an estimate, so a late start that finds no
    frames falls back to the first). ``ValueError`` naming the file for an unreadable video."""
    if total is None:
        total = io.video_info(source)[0]
    stride = frame_stride
    while stride > 1 and (num_frames - 1) * stride >= total:
        stride -= 1
    last_start = max(0, total - 1 - (num_frames - 1) * stride)
    start = int(torch.randint(0, last_start + 1, (), generator=gen)) if gen is not None else 0
    try:
        clip = io.load_video(source, num_frames, start=start, stride=stride)
    except ValueError:
        if start == 0:
            raise
        clip = io.load_video(source, num_frames, start=0, stride=stride)  # the count was an estimate
    return fit_clip(clip, num_frames)


def nested_subset(files: list[Path], count: int) -> list[Path]:
    """``count`` of ``files`` for a data-scaling study: the first ``count`` of a fixed (seed 0)
    permutation of the sorted list, in sorted order, so every smaller subset lies inside every
    larger one and the choice does not depend on the run's seed. ``ValueError`` when ``count``
    exceeds the files there are."""
    check_int("count", count, 1)
    if count > len(files):
        raise ValueError(f"data.subset {count} exceeds the {len(files)} training files")
    ordered = sorted(files)
    chosen = torch.randperm(len(ordered), generator=torch.Generator().manual_seed(0))[:count]
    return [ordered[i] for i in sorted(chosen.tolist())]


class MediaFolder(Dataset):
    """Images (3, H, W) or clips (3, T, H, W) from files, transformed, values in [-1, 1].

    Args:
        roots: folders (searched recursively) or files.
        kind: "image" or "video".
        transform: :class:`TrainTransform` or :class:`EvalTransform`.
        num_frames, frame_stride: clip length and frame step for videos; short videos use a
            smaller stride, then repeat their last frame.
        random_clips: random clip start (training) or the first frames (evaluation).
        max_tries: unreadable files tolerated in a row before :class:`UnreadableDataError`.
        substitute: replace an unreadable file by another one drawn from the sample's seed
            (training: batches keep their size), or return an item with ``x=None`` that
            :func:`collate` drops (evaluation and inference: each readable file used once).
    """

    def __init__(self, roots: list[str | Path], kind: Kind, transform: TrainTransform | EvalTransform,
                 num_frames: int = 16, frame_stride: int = 1, random_clips: bool = True, max_tries: int = 16,
                 substitute: bool = True) -> None:
        if kind not in ("image", "video"):
            raise ValueError(f"kind must be 'image' or 'video', got {kind!r}")
        if max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {max_tries}")
        self.roots = [str(r) for r in roots]
        self.files = list_files(roots, kind)
        self.kind = kind
        self.transform = transform
        self.num_frames = num_frames
        self.frame_stride = frame_stride
        self.random_clips = random_clips
        self.max_tries = max_tries
        self.substitute = substitute
        self._frame_counts: dict[Path, int] = {}
        self._warned: set[str] = set()  # files already logged as unreadable (per worker process)

    def __len__(self) -> int:
        return len(self.files)

    def load_clip(self, path: Path, gen: torch.Generator) -> Tensor:
        if path not in self._frame_counts:
            self._frame_counts[path] = io.video_info(path)[0]
        return read_clip(path, self.num_frames, self.frame_stride, gen if self.random_clips else None,
                         total=self._frame_counts[path])

    def load(self, path: Path, gen: torch.Generator, size: int | None = None) -> Tensor:
        transform = self.transform if size is None else self.transform.resized((size, size))
        if self.kind == "image":
            x = io.load_image(path, min_side=transform.decode_min_side)
        else:
            x = self.load_clip(path, gen)
        return transform(x, gen)

    def _skip(self, path: Path, err: ValueError) -> None:
        if str(path) not in self._warned:
            self._warned.add(str(path))
            log.warning("skipping unreadable file %s: %s", path, err)

    def _candidate(self, index: int, seed: int, attempt: int) -> int:
        """The file tried at ``attempt``: ``index`` first, then files drawn from the seed."""
        if attempt == 0:
            return index
        gen = torch.Generator().manual_seed((seed * 1_000_003 + attempt) % 2**63)  # any run seed: within int64
        return int(torch.randint(0, len(self.files), (), generator=gen))

    def __getitem__(self, key: int | tuple[int, ...]) -> dict[str, object]:
        """``key``: an index, ``(index, seed)``, or ``(index, seed, size)`` (a crop size for
        this sample, multi-resolution training). Returns ``{"x", "seed", "path", "index",
        "skipped", "padded"}`` (``padded``: a video shorter than ``num_frames``, padded with its last
        frame by :func:`fit_clip`; ``x`` is None, with an ``error``, for an unreadable file when not
        substituting). Raises :class:`UnreadableDataError` after ``max_tries`` unreadable files."""
        index, seed, size = (*key, None)[:3] if isinstance(key, tuple) else (key, key, None)
        skipped: list[str] = []
        errors: dict[str, str] = {}
        for attempt in range(self.max_tries if self.substitute else 1):
            file_index = self._candidate(index, seed, attempt)
            path = self.files[file_index]
            try:
                x = self.load(path, torch.Generator().manual_seed(seed), size)
            except ValueError as err:
                self._skip(path, err)
                skipped.append(str(path))
                errors.setdefault(str(path), str(err))
                continue
            padded = self.kind == "video" and self._frame_counts[path] < self.num_frames
            return {"x": x, "seed": seed, "path": str(path), "index": file_index, "skipped": skipped,
                    "padded": padded}
        if not self.substitute:
            return {"x": None, "seed": seed, "path": str(path), "index": file_index, "skipped": skipped,
                    "error": errors[str(path)]}
        raise UnreadableDataError(self._nothing_readable(errors))

    def _nothing_readable(self, errors: dict[str, str]) -> str:
        reason = next(iter(errors.values()))
        if len(errors) == len(self.files):
            return (f"none of the {len(self.files)} {self.kind} files under {', '.join(self.roots)} could be read "
                    f"(first: {reason})")
        return (f"{self.max_tries} unreadable files in a row ({len(errors)} distinct) under "
                f"{', '.join(self.roots)} (first: {reason})")


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
    """Stack samples: ``x`` (B, 3, [T,] H, W) (None when every item was dropped), ``seed`` (B,)
    int64, ``path`` and ``index`` of the kept items, ``skipped`` paths (of dropped items and of
    substituted files), ``errors`` (one reason per dropped item), ``padded`` paths (kept clips
    shorter than the clip length, padded with their last frame).

    Items with ``x`` None (unreadable files of a non-substituting :class:`MediaFolder`) are dropped.
    """
    kept = [item for item in items if item["x"] is not None]
    return {
        "x": torch.stack([item["x"] for item in kept]) if kept else None,
        "seed": torch.tensor([item["seed"] for item in kept], dtype=torch.int64),
        "path": [item["path"] for item in kept],
        "index": [item.get("index") for item in kept],
        "skipped": [p for item in items for p in item["skipped"]],
        "errors": [item["error"] for item in items if item["x"] is None],
        "padded": [item["path"] for item in kept if item.get("padded")],
    }
