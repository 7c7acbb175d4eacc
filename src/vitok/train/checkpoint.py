"""Atomic, keep-last-k training checkpoints.

A checkpoint is ``ckpt-<step>.pt`` in the run directory, written to a temp file and renamed
(:func:`vitok.files.atomic_write`), so a crash never leaves a half-written file under that name;
a full or read-only disk is one :class:`~vitok.files.WriteError` naming the file, the reason and
the last good checkpoint. Loading uses ``torch.load(weights_only=True)``: tensors and plain
containers only, no code; a file that is not such a checkpoint is one :class:`CheckpointError`
naming it. Resume takes the newest checkpoint that loads, warning about newer broken ones.
"""

from __future__ import annotations

import pickle
import re
import sys
from pathlib import Path
from typing import Any

import torch

from vitok.files import WriteError, atomic_write, os_reason

_NAME = re.compile(r"^ckpt-(\d+)\.pt$")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (unreadable, truncated, not a vitok checkpoint)."""


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
    """Write ``state`` atomically as the checkpoint of ``step``; delete all but the last ``keep_last``
    of the checkpoints up to ``step`` (newer ones, left by a run that resumed from an older
    checkpoint because they do not load, are never counted: the one just written always stays).

    Raises :class:`~vitok.files.WriteError` "cannot write checkpoint <path>: <reason> (last good
    checkpoint: <name>)" when the disk is full, read-only or over a quota (nothing is left behind).
    """
    target = checkpoint_path(run_dir, step)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda path: _save(state, path))
    except OSError as err:
        good = [p.name for _, p in list_checkpoints(run_dir) if p != target]
        raise WriteError(f"cannot write checkpoint {target}: {os_reason(err)} "
                         f"(last good checkpoint: {good[-1] if good else 'none'})") from err
    # only checkpoints up to this step are pruned: after a resume that fell back past a newer broken
    # one, the broken file must not count as "newest" and push out the checkpoint just written
    kept = [path for at, path in list_checkpoints(run_dir) if at <= step]
    for old in kept[:-keep_last] if keep_last > 0 else []:
        old.unlink(missing_ok=True)
    return target


def _save(state: dict[str, Any], path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(state, f)


def load_checkpoint(path: str | Path, required: tuple[str, ...] = ("model",)) -> dict[str, Any]:
    """Load a checkpoint safely (no unpickling of arbitrary objects) onto the CPU.

    Raises :class:`CheckpointError` "cannot load checkpoint <path>: <reason>" for a missing,
    unreadable or truncated file, one holding objects other than tensors and plain containers
    (refused, never run), or a dict without the ``required`` keys.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [line.strip().rstrip(".") for line in str(err).splitlines()]
        garbled = next((line for line in lines if line.startswith("Unsupported operand")), "")
        if garbled:  # not a pickle stream at all (a text file, random bytes): nothing was refused
            raise CheckpointError(f"cannot load checkpoint {path}: unreadable or truncated (not a torch "
                                  f"checkpoint: {garbled.lower()})") from None
        what = next((line for line in lines if "global" in line.lower()), "")
        raise CheckpointError(f"cannot load checkpoint {path}: not a vitok checkpoint (it contains objects other "
                              f"than tensors{': ' + what if what else ''}; refusing to unpickle)") from None
    except Exception as err:  # any failure to read: IndexError, KeyError... from a mangled file
        reason = os_reason(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"cannot load checkpoint {path}: unreadable or truncated ({reason})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"cannot load checkpoint {path}: not a vitok checkpoint (a {type(state).__name__}, "
                              "not a dict)")
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(f"cannot load checkpoint {path}: not a vitok checkpoint (no {', '.join(missing)})")
    return state


def load_latest(run_dir: str | Path, required: tuple[str, ...] = ("model",)) -> tuple[Path, dict[str, Any]] | None:
    """(path, state) of the newest checkpoint in ``run_dir`` that loads, or None when there is
    none. A newer checkpoint that does not load (e.g. truncated by a crash) is skipped with a
    warning; when none loads, the newest one's :class:`CheckpointError` is raised."""
    found = list_checkpoints(run_dir)
    errors: list[CheckpointError] = []
    for _, path in reversed(found):
        try:
            state = load_checkpoint(path, required)
        except CheckpointError as err:
            errors.append(err)
            continue
        for err in errors:
            print(f"warning: {err}; resuming from the older {path.name}", file=sys.stderr)
        return path, state
    if errors:
        raise errors[0]
    return None


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None
