"""Atomic, keep-last-k training checkpoints.

A checkpoint is ``ckpt-<step>.pt`` in the run directory, written to a temp file and renamed,
so a crash never leaves a half-written file under that name. Loading uses
``torch.load(weights_only=True)``: tensors and plain containers only, no code.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

_NAME = re.compile(r"^ckpt-(\d+)\.pt$")


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / f"ckpt-{step:08d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoints in a run directory, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m[1]), p) for p in run_dir.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def save_checkpoint(run_dir: str | Path, step: int, state: dict[str, Any], keep_last: int = 3) -> Path:
    """Write ``state`` atomically as the checkpoint of ``step``; delete all but the last ``keep_last``."""
    target = checkpoint_path(run_dir, step)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".ckpt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for _, old in list_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
        old.unlink(missing_ok=True)
    return target


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely (no unpickling of arbitrary objects) onto the CPU."""
    return torch.load(path, map_location="cpu", weights_only=True)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None
