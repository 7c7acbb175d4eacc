"""argparse ``type=`` converters with ranges, so a bad number, size or device is an argparse error
(exit 2, one line: ``argument --frames: must be a positive integer, got '0'``) before any work."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

DEVICES = "auto, cpu, cuda, cuda:N or mps"
MAX_SIZE = 16384  # px per side for --size: a 16384^2 RGB image is 3 GiB in fp32 (tiling bounds the model)


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _int_at_least(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def finite_float(text: str) -> float:
    """A finite number (no nan / inf)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def unit_float(text: str) -> float:
    """A number in [0, 1]."""
    value = finite_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text!r}")
    return value


def _int_at_least(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def path(text: str) -> Path:
    """A file or folder path; an empty one is an error (``Path("")`` would silently be ``.``)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a path, got an empty string")
    return Path(text)


def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '256x512' -> (256, 512) as (H, W)."""
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"size must be N or HxW with positive integers, got {text!r}")
    if max(parts) > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"size must be at most {MAX_SIZE} px per side, got {text!r}")
    return parts[0], parts[1]


def parse_device(text: str) -> str:
    """``auto`` (cuda when available, else cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, checked
    against this machine: asking for a device it does not have is an argparse error (exit 2)."""
    import torch

    text = text.strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        import difflib

        close = difflib.get_close_matches(text, ["auto", "cpu", "cuda", "mps"], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise argparse.ArgumentTypeError(f"must be {DEVICES}, got {text!r}{hint}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "no usable GPU"
            raise argparse.ArgumentTypeError(f"{text!r} is not available (torch {torch.__version__}: {build}); "
                                             "use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r} is not available on this machine; use --device cpu or auto")
    return str(device)
