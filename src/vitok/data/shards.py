"""WebDataset tar shards, for data that does not fit on one disk (the ``webdataset`` package).

A shard holds samples as ``<key>.jpg`` / ``.png`` / ``.webp`` (images) or ``<key>.mp4`` etc.
(videos). Each rank reads its own shards (``shards[rank::world]``), each DataLoader worker its
own subset of those; shards are visited in a seeded order per pass. Resume skips the samples this
rank already consumed. Unreadable samples are skipped and reported like in :class:`MediaFolder`.
"""

from __future__ import annotations

import glob
import io as pyio
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import IterableDataset, get_worker_info

from vitok import io
from vitok.data.datasets import Kind, fit_clip
from vitok.data.transforms import EvalTransform, TrainTransform

log = logging.getLogger("vitok.data")
IMAGE_KEYS = ("jpg", "jpeg", "png", "webp", "bmp")
VIDEO_KEYS = ("mp4", "webm", "mkv", "avi")


def expand_shards(patterns: list[str]) -> list[str]:
    """Shard paths from globs or brace-free paths, sorted; raises if none exist."""
    shards = sorted({p for pattern in patterns for p in glob.glob(pattern)})
    if not shards:
        raise ValueError(f"no tar shards match {patterns}")
    return shards


class ShardDataset(IterableDataset):
    """Endless stream of ``{"x", "seed", "path", "skipped"}`` items from tar shards."""

    def __init__(self, patterns: list[str], kind: Kind, transform: TrainTransform | EvalTransform,
                 num_frames: int = 16, rank: int = 0, world: int = 1, seed: int = 0, start_sample: int = 0) -> None:
        self.shards = expand_shards(patterns)
        if len(self.shards) < world:
            raise ValueError(f"{len(self.shards)} shards cannot be split over {world} ranks")
        self.kind, self.transform, self.num_frames = kind, transform, num_frames
        self.rank, self.world, self.seed, self.start_sample = rank, world, seed, start_sample

    def decode(self, sample: dict[str, object], gen: torch.Generator) -> torch.Tensor:
        keys = IMAGE_KEYS if self.kind == "image" else VIDEO_KEYS
        key = next((k for k in keys if k in sample), None)
        if key is None:
            raise ValueError(f"no {self.kind} entry ({', '.join(keys)}) in sample {sample.get('__key__')}")
        data = pyio.BytesIO(sample[key])
        if self.kind == "image":
            x = io.load_image(data, min_side=self.transform.decode_min_side)
        else:
            x = fit_clip(io.load_video(data, self.num_frames), self.num_frames)
        return self.transform(x, gen)

    def samples(self) -> Iterator[dict[str, object]]:
        import webdataset as wds

        mine = self.shards[self.rank::self.world]
        epoch = 0
        while True:
            order = torch.randperm(len(mine), generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()
            urls = [mine[i] for i in order]
            yield from wds.WebDataset(urls, shardshuffle=False, nodesplitter=lambda x: x, empty_check=False)
            epoch += 1

    def __iter__(self) -> Iterator[dict[str, object]]:
        worker = get_worker_info()
        wid, nworkers = (worker.id, worker.num_workers) if worker else (0, 1)
        skipped: list[str] = []
        for count, sample in enumerate(self.samples()):
            if count < self.start_sample or count % nworkers != wid:
                continue
            seed = self.seed * 1_000_003 + count * self.world + self.rank
            name = f"{sample.get('__url__')}:{sample.get('__key__')}"
            try:
                x = self.decode(sample, torch.Generator().manual_seed(seed))
            except ValueError as err:
                log.warning("skipping unreadable sample %s: %s", name, err)
                skipped.append(name)
                continue
            yield {"x": x, "seed": seed, "path": name, "skipped": skipped}
            skipped = []


def is_shard_spec(paths: list[str]) -> bool:
    """True when the data paths name tar shards rather than folders."""
    return all(str(p).endswith(".tar") or "*" in str(p) for p in paths) and bool(paths)


def write_shards(files: list[Path], out_pattern: str, per_shard: int = 1000) -> list[str]:
    """Pack media files into tar shards named ``out_pattern % i`` (e.g. "data-%05d.tar")."""
    import webdataset as wds

    written = []
    for start in range(0, len(files), per_shard):
        path = out_pattern % (start // per_shard)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with wds.TarWriter(path) as sink:
            for i, f in enumerate(files[start:start + per_shard]):
                sink.write({"__key__": f"{start + i:08d}", f.suffix.lstrip(".").lower(): f.read_bytes()})
        written.append(path)
    return written
