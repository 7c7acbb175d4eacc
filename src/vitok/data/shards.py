"""WebDataset tar shards, for data that does not fit on one disk (the ``webdataset`` package).

Shards are named by local paths, globs (``/data/train-*.tar``), WebDataset's brace ranges
(``/data/train-{000000..000999}.tar``), URLs or ``pipe:COMMAND`` (a command that writes the tar
to its stdout, e.g. ``pipe:aws s3 cp s3://bucket/train-000000.tar -``); plain or compressed
(``.tar.gz``, ``.tgz``). A shard holds samples as ``<key>.jpg`` / ``.png`` / ``.webp`` (images)
or ``<key>.mp4`` etc. (videos). Members are grouped into samples on their LAST extension, so
``scan.2023.01.jpg`` is the image of sample ``scan.2023.01`` (WebDataset's own reader splits at
the first dot and would find no image in it). A video sample gives a random clip of
``num_frames`` at ``frame_stride``, as from folders.

Each rank reads its own shards (``shards[rank::world]``), each DataLoader worker every n-th
block of ``batch_size`` samples of those (the batches it makes in its turn); shards are visited
in a seeded order per pass. Resume skips the samples this rank already consumed, so with all
samples readable a resumed run sees the batches an uninterrupted one does. Unreadable samples
are skipped and reported like in :class:`MediaFolder`; a whole pass that yields nothing raises
:class:`UnreadableDataError`.
"""

from __future__ import annotations

import glob
import io as pyio
import itertools
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import IterableDataset, get_worker_info

from vitok import io
from vitok.checks import describe
from vitok.data.config import Kind
from vitok.data.datasets import UnreadableDataError, read_clip
from vitok.data.transforms import EvalTransform, TrainTransform

log = logging.getLogger("vitok.data")
IMAGE_KEYS = tuple(ext.lstrip(".") for ext in io.IMAGE_EXTENSIONS)  # the extensions folders accept
VIDEO_KEYS = tuple(ext.lstrip(".") for ext in io.VIDEO_EXTENSIONS)


def split_last_extension(name: str) -> tuple[str | None, str | None]:
    """A tar member name -> (sample key, extension), split at the last dot of the file name:
    ``"a/scan.2023.01.jpg"`` -> ``("a/scan.2023.01", "jpg")``; (None, None) without an extension."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or "/" in ext or stem.endswith("/"):
        return None, None
    return stem, ext


def _warn_and_continue(err: Exception) -> bool:
    """WebDataset error handler: an unreadable shard or tar member is logged and skipped."""
    log.warning("skipping unreadable shard data: %s", err)
    return True


def read_samples(urls: list[str]) -> Iterator[dict[str, object]]:
    """Samples ``{"__key__", "__url__", <extension>: bytes}`` of the shards in order, members
    grouped by :func:`split_last_extension`; unreadable shards or members are logged and skipped."""
    from webdataset import tariterators

    streams = tariterators.url_opener([{"url": url} for url in urls], handler=_warn_and_continue)
    files = tariterators.tar_file_expander(streams, handler=_warn_and_continue)
    yield from tariterators.group_by_keys(files, keys=split_last_extension, handler=_warn_and_continue)


SHARD_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def is_remote(source: str) -> bool:
    """True for a shard source the reader opens itself: a URL (``scheme://...``) or ``pipe:COMMAND``."""
    return source.startswith("pipe:") or "://" in source


def expand_shards(patterns: list[str]) -> list[str]:
    """Shard sources from paths, globs, brace ranges (``a-{000..009}.tar``, WebDataset's
    notation), URLs and ``pipe:`` commands, sorted and each once. ``TypeError`` unless a list of
    strings; ``ValueError`` naming the first local pattern that matches no file."""
    from webdataset.shardlists import expand_urls

    if isinstance(patterns, (str, os.PathLike)) or not isinstance(patterns, (list, tuple)) or not all(
            isinstance(p, (str, os.PathLike)) for p in patterns):
        raise TypeError(f"shard patterns must be a list of paths or globs, got {describe(patterns)}")
    shards: set[str] = set()
    for pattern in map(os.fspath, patterns):
        for source in expand_urls(pattern) if "{" in pattern else [pattern]:
            if is_remote(source):
                shards.add(source)
                continue
            # a literal name first: "shard[1].tar" is a file, not a pattern
            found = [source] if Path(source).is_file() else [p for p in glob.glob(source) if Path(p).is_file()]
            if not found:
                raise ValueError(f"no tar shards match {source}" + (f" (from {pattern})" if source != pattern else ""))
            shards.update(found)
    if not shards:
        raise ValueError(f"no tar shards match {patterns}")
    return sorted(shards)


class ShardDataset(IterableDataset):
    """Endless stream of ``{"x", "seed", "path", "skipped"}`` items from tar shards."""

    def __init__(self, patterns: list[str], kind: Kind, transform: TrainTransform | EvalTransform,
                 num_frames: int = 16, rank: int = 0, world: int = 1, seed: int = 0, start_sample: int = 0,
                 batch_size: int = 1, frame_stride: int = 1) -> None:
        self.shards = expand_shards(patterns)
        self.batch_size = batch_size  # DataLoader workers take turns by whole batches: blocks of samples
        if len(self.shards) < world:
            raise ValueError(f"{len(self.shards)} shards cannot be split over {world} ranks")
        self.kind, self.transform, self.num_frames, self.frame_stride = kind, transform, num_frames, frame_stride
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
            x = read_clip(data, self.num_frames, self.frame_stride, gen)  # a random clip, as from folders
        return self.transform(x, gen)

    def pass_samples(self, epoch: int) -> Iterator[dict[str, object]]:
        """One pass over this rank's shards, in the seeded order of ``epoch``."""
        mine = self.shards[self.rank::self.world]
        order = torch.randperm(len(mine), generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()
        return read_samples([mine[i] for i in order])

    def __iter__(self) -> Iterator[dict[str, object]]:
        """Items ``{"x", "seed", "path", "skipped"}``; raises :class:`UnreadableDataError` when a
        whole pass over the shards gives this worker no readable sample (instead of looping)."""
        worker = get_worker_info()
        wid, nworkers = (worker.id, worker.num_workers) if worker else (0, 1)
        skipped: list[str] = []
        errors: dict[str, str] = {}
        count = 0
        for epoch in itertools.count():
            full_pass, first, yielded = count >= self.start_sample, count, 0
            for sample in self.pass_samples(epoch):
                index, count = count, count + 1
                # worker w reads blocks w, w + n, ... of batch_size samples, the batches the DataLoader
                # takes from it in turn: the first k batches are the first k * batch_size samples, so a
                # resume at start_sample neither repeats nor drops one (when all are readable)
                if index < self.start_sample or (index - self.start_sample) // self.batch_size % nworkers != wid:
                    continue
                seed = self.seed * 1_000_003 + index * self.world + self.rank
                name = f"{sample.get('__url__')}:{sample.get('__key__')}"
                try:
                    x = self.decode(sample, torch.Generator().manual_seed(seed))
                except ValueError as err:
                    if name not in errors:
                        log.warning("skipping unreadable sample %s: %s", name, err)
                        errors[name] = str(err)
                    skipped.append(name)
                    continue
                yielded += 1
                yield {"x": x, "seed": seed, "path": name, "skipped": skipped}
                skipped = []
            if (full_pass or count == first) and not yielded:
                raise UnreadableDataError(self._nothing_readable(count - first, nworkers, errors))

    def _nothing_readable(self, samples: int, workers: int, errors: dict[str, str]) -> str:
        shards = ", ".join(self.shards[self.rank::self.world])
        if samples == 0:
            return f"the shards {shards} hold no samples"
        if not errors:
            return f"the shards {shards} hold {samples} samples: too few for {workers} data loader workers"
        first = next(iter(errors.values()))
        return (f"no readable {self.kind} sample in a whole pass over the shards {shards} "
                f"({len(errors)} unreadable, first: {first})")


def is_shard_spec(paths: list[str]) -> bool:
    """True when the data paths name tar shards (``.tar`` / ``.tar.gz`` / ``.tgz`` files, globs,
    brace ranges, URLs, ``pipe:`` commands) rather than folders."""
    return bool(paths) and all(str(p).endswith(SHARD_SUFFIXES) or any(c in str(p) for c in "*?{")
                               or is_remote(str(p)) for p in paths)


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
