"""A resumable, rank-aware batch sampler addressed by optimiser step.

The data order is an endless sequence of epoch permutations (seeded by ``seed + epoch``). Step
``s`` consumes global positions ``[s*G, (s+1)*G)``; rank ``r`` of ``W`` takes every W-th of them
(so the union over ranks is exactly the single-process batch) and splits its share into
``accum`` micro-batches. Each key is ``(index, sample_seed)`` with a seed unique to the global
position, so augmentation and posterior noise do not depend on workers or ranks. Resuming at step
``s`` is starting the sampler at ``s``. With ``sizes`` (multi-resolution training) each key is
``(index, sample_seed, size)``: one size per step, drawn from (seed, step), so a batch is uniform
and a resumed run draws the same sizes.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields this rank's micro-batches of ``(index, seed)`` keys, ``accum`` per step, forever."""

    def __init__(self, size: int, global_batch: int, rank: int = 0, world: int = 1, seed: int = 0,
                 start_step: int = 0, accum: int = 1, shuffle: bool = True,
                 sizes: list[int] | None = None) -> None:
        if global_batch % (world * accum):
            raise ValueError(f"global batch {global_batch} must be divisible by world size {world} x "
                             f"gradient accumulation {accum}")
        self.size, self.global_batch = size, global_batch
        self.rank, self.world, self.seed = rank, world, seed
        self.start_step, self.accum, self.shuffle = start_step, accum, shuffle
        self.sizes = list(sizes) if sizes else None
        self._perm: tuple[int, torch.Tensor] | None = None

    @property
    def micro_batch(self) -> int:
        return self.global_batch // (self.world * self.accum)

    def _index(self, position: int) -> int:
        epoch, offset = divmod(position, self.size)
        if not self.shuffle:
            return offset
        if self._perm is None or self._perm[0] != epoch:
            gen = torch.Generator().manual_seed(self.seed + epoch)
            self._perm = (epoch, torch.randperm(self.size, generator=gen))
        return int(self._perm[1][offset])

    def step_size(self, step: int) -> int | None:
        """The crop size of step ``step`` (None without ``sizes``)."""
        if not self.sizes:
            return None
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step + 2**40)
        return self.sizes[int(torch.randint(0, len(self.sizes), (), generator=gen))]

    def step_keys(self, step: int) -> list[tuple[int, ...]]:
        """This rank's keys for optimiser step ``step`` (all micro-batches)."""
        positions = range(step * self.global_batch + self.rank, (step + 1) * self.global_batch, self.world)
        size = self.step_size(step)
        if size is None:
            return [(self._index(p), self.seed * 1_000_003 + p) for p in positions]
        return [(self._index(p), self.seed * 1_000_003 + p, size) for p in positions]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while True:
            keys = self.step_keys(step)
            for micro in range(self.accum):
                yield keys[micro * self.micro_batch:(micro + 1) * self.micro_batch]
            step += 1

    def __len__(self) -> int:  # endless; DataLoader only needs a number
        return 2**62
