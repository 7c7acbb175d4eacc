"""Rank-0 observability: tqdm progress, ``metrics.jsonl``, TensorBoard scalars, image grids."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

from vitok.nn.patch import to_frames


def comparison_grid(x: Tensor, recon: Tensor, max_items: int = 8, max_frames: int = 4) -> Tensor:
    """Originals above reconstructions: (3, 2*H, N*W) in [-1, 1].

    Images (B, 3, H, W): N = min(B, max_items). Videos (B, 3, T, H, W): the first
    ``max_frames`` frames of the first clips, laid side by side.
    """
    def tiles(v: Tensor) -> Tensor:
        if v.ndim == 5:
            clips = max(1, max_items // max_frames)
            v = to_frames(v[:clips, :, :max_frames])  # (clips*frames, 3, H, W)
        return torch.cat(list(v[:max_items].float().clamp(-1, 1)), dim=-1)

    return torch.cat([tiles(x.detach().cpu()), tiles(recon.detach().cpu())], dim=-2)


class Monitor:
    """Writes the run's logs; every method is a no-op on ranks other than 0."""

    def __init__(self, run_dir: Path, total_steps: int, start_step: int, enabled: bool,
                 tensorboard: bool = True, progress: bool = True) -> None:
        self.enabled = enabled
        self.run_dir = run_dir
        self.writer = None
        self.bar = None
        self.last = (time.perf_counter(), start_step)
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115 - closed in close()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                print("tensorboard is not installed: scalars go to metrics.jsonl only", file=sys.stderr)
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc="train", dynamic_ncols=True)

    def log(self, step: int, scalars: dict[str, float | list[str]]) -> None:
        """One ``metrics.jsonl`` row (and TensorBoard scalars for the numeric values)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        then, then_step = self.last
        scalars = {**scalars, "steps_per_s": (step - then_step) / max(now - then, 1e-9)}
        self.last = (now, step)
        self.jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
        self.jsonl.flush()
        if self.writer is not None:
            for key, value in scalars.items():
                if isinstance(value, (int, float)):  # lists (e.g. skipped_new paths) go to metrics.jsonl only
                    self.writer.add_scalar(key, value, step)
        if self.bar is not None:
            keys = ("loss", "rec", "lpips", "d_loss", "steps_per_s")
            shown = {k: f"{v:.4g}" for k, v in scalars.items() if k in keys}
            self.bar.set_postfix(shown, refresh=False)

    def advance(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def images(self, step: int, x: Tensor, recon: Tensor) -> None:
        if not self.enabled:
            return
        from vitok.io import save_image

        grid = comparison_grid(x, recon)
        save_image(grid, self.run_dir / "samples" / f"step-{step:08d}.png")
        if self.writer is not None:
            self.writer.add_image("reconstructions", (grid + 1) / 2, step)

    def message(self, text: str) -> None:
        if self.enabled:
            (self.bar.write if self.bar is not None else print)(text)

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
        self.jsonl.close()


def open_run(run_dir: Path, run: object, config: dict, step: int, is_main: bool) -> tuple[int, Monitor]:
    """Start (or continue) a run: the step to stop at (``run.steps`` or ``run.stop_at``), the resolved
    config written as ``config.yaml``, and the run's :class:`Monitor`. A resumed run (at ``step``)
    first drops the ``metrics.jsonl`` rows that an interrupted run logged after its last checkpoint,
    so every step appears once."""
    from vitok.train.schema import to_yaml

    end = min(run.steps, run.stop_at) if run.stop_at is not None else run.steps
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(to_yaml(config))
        drop_rows_after(run_dir / "metrics.jsonl", step)
    return end, Monitor(run_dir, run.steps, step, is_main, run.tensorboard, run.progress)


def drop_rows_after(path: Path, step: int) -> int:
    """Keep only the ``metrics.jsonl`` rows with ``"step" <= step`` (and drop a half-written last
    line); returns how many rows were dropped. No-op without the file."""
    if not path.is_file():
        return 0
    from vitok.files import atomic_write

    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            row_step = json.loads(line)["step"]
        except (ValueError, KeyError, TypeError):
            row_step = None
        if isinstance(row_step, int) and row_step <= step:
            kept.append(line)
        elif line.strip():
            dropped += 1
    if dropped:
        text = "".join(f"{line}\n" for line in kept)
        atomic_write(path, lambda tmp: tmp.write_text(text))
    return dropped


