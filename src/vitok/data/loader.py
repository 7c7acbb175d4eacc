"""The training DataLoader (folders or shards, rank-aware, resumable) of a :class:`DataConfig`."""

from __future__ import annotations

import random
import signal

import numpy as np
import torch
from torch.utils.data import DataLoader

from vitok.data.config import MAX_SIDE as MAX_SIDE  # its home is data/config.py
from vitok.data.config import DataConfig
from vitok.data.datasets import KeyedConcat, MediaFolder, collate, nested_subset
from vitok.data.motion import CameraMotion, MotionClips
from vitok.data.sampler import StepBatchSampler
from vitok.data.shards import ShardDataset, is_shard_spec

# the signals a scheduler stops or warns a job with; the trainer saves on them (vitok.train.preemption)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1") if hasattr(signal, name))
WORKER_GRACE_S = 120  # how long a data-loader worker outlives a SIGTERM (the trainer's step + save)


def _end_after_grace(signum: int, frame: object) -> None:
    """A worker's SIGTERM handler: end the process :data:`WORKER_GRACE_S` seconds from the first one."""
    remaining = signal.alarm(0)  # a repeat keeps the first deadline
    signal.alarm(remaining or WORKER_GRACE_S)


def _seed_worker(worker_id: int) -> None:
    """Per-worker seeding of the libraries a user transform might use (ours use explicit seeds),
    and the worker's part in a clean stop (``vitok.train.preemption``): a scheduler signals every
    process of the job, and a worker that died at once would fail the step the trainer finishes
    and saves. So a worker ignores ``SIGUSR1`` (a warning) and on ``SIGTERM`` lives on for
    :data:`WORKER_GRACE_S` seconds (then ``SIGALRM`` ends it: a stuck worker cannot outlive a
    stop). It also exits with its parent, as every DataLoader worker does."""
    for sig in STOP_SIGNALS:
        graceful = sig == signal.SIGTERM and hasattr(signal, "alarm")
        signal.signal(sig, _end_after_grace if graceful else signal.SIG_IGN)
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_dataset(cfg: DataConfig) -> MediaFolder | KeyedConcat:
    """The folder dataset of ``cfg.train``, mixed with camera-motion clips of ``cfg.motion`` photos."""
    sources: list = []
    if cfg.train:
        folder = MediaFolder(cfg.train, cfg.kind, cfg.transform(), cfg.num_frames, cfg.frame_stride)
        if cfg.subset is not None:
            folder.files = nested_subset(folder.files, cfg.subset)
        sources.append(folder)
    if cfg.motion:
        if cfg.kind != "video":
            raise ValueError("data.motion makes video clips: it needs data.kind=video")
        motion = CameraMotion(num_frames=cfg.num_frames, size=(cfg.sizes[0], cfg.sizes[0]))
        sources.append(MotionClips(cfg.motion, motion, hflip=cfg.hflip))
    if len(sources) == 1 and cfg.train_repeat == 1:
        return sources[0]
    repeats = ([cfg.train_repeat] if cfg.train else []) + ([cfg.motion_repeat] if cfg.motion else [])
    return KeyedConcat(sources, repeats)


def build_train_loader(cfg: DataConfig, global_batch: int, rank: int = 0, world: int = 1, seed: int = 0,
                       start_step: int = 0, accum: int = 1) -> DataLoader:
    """Endless loader of this rank's micro-batches, starting at optimiser step ``start_step``."""
    if not cfg.train and not cfg.motion:
        raise ValueError("data.train is empty: give image/video folders or tar shards")
    # the loader's own generator: creating an iterator draws its workers' base seed from it, not from
    # the global RNG (which a checkpoint saves: a resumed run would otherwise draw once more than an
    # uninterrupted one, and the saved RNG states of the two would differ)
    common = {"num_workers": cfg.workers, "collate_fn": collate, "worker_init_fn": _seed_worker,
              "persistent_workers": cfg.workers > 0, "pin_memory": torch.cuda.is_available(),
              "generator": torch.Generator().manual_seed(seed * 1_000_003 + rank)}
    multi = len(cfg.sizes) > 1
    if cfg.train and is_shard_spec(cfg.train):
        if multi:
            raise ValueError("multi-resolution training (several data.image_size values) reads folders, not shards")
        if cfg.subset is not None:
            raise ValueError("data.subset picks files of folders; with tar shards, give fewer shards")
        if cfg.motion or cfg.train_repeat != 1:
            raise ValueError("data.motion and data.train_repeat mix folder sources; with tar shards in data.train, "
                             "pack the mix into the shards (or give folders)")
        micro = global_batch // (world * accum)
        dataset = ShardDataset(cfg.train, cfg.kind, cfg.transform(), cfg.num_frames, rank, world, seed,
                               start_sample=start_step * accum * micro, batch_size=micro,
                               frame_stride=cfg.frame_stride)
        return DataLoader(dataset, batch_size=micro, **common)
    dataset = build_dataset(cfg)
    sampler = StepBatchSampler(len(dataset), global_batch, rank, world, seed, start_step, accum,
                               sizes=cfg.sizes if multi else None)
    return DataLoader(dataset, batch_sampler=sampler, **common)
