"""The four categories of a case, the :class:`Tally` of a campaign, and running and judging one case."""

from __future__ import annotations

import contextlib
import io as pyio
import logging
import math
import signal
import traceback
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vitok

SRC = Path(vitok.__file__).resolve().parent
CATEGORIES = ("result", "clear", "traceback", "silent")
CLEAR_TYPES = (ValueError, TypeError, FileNotFoundError)  # FileNotFoundError: documented for paths
PWNED = "pwned-by-pickle"  # the file a malicious pickle would create



SRC = Path(vitok.__file__).resolve().parent
CATEGORIES = ("result", "clear", "traceback", "silent")
CLEAR_TYPES = (ValueError, TypeError, FileNotFoundError)  # FileNotFoundError: documented for paths
PWNED = "pwned-by-pickle"  # the file a malicious pickle would create


class Silent(Exception):  # noqa: N818  (a category, not an error of the campaign)
    """A check of a returned value failed: a silent wrong result (the message is its kind)."""


class Timeout(BaseException):
    """The case ran past its time limit."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise :class:`Timeout` in the main thread after ``seconds``."""
    def expire(signum, frame):
        raise Timeout(f"no answer within {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def captured():
    """Capture stdout, stderr, warnings and vitok's log records: yields the (out, err) buffers."""
    out, err = pyio.StringIO(), pyio.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [logging.StreamHandler(err)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield out, err
    finally:
        root.handlers = saved


def is_vitok_file(filename: str) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(SRC)
    except (OSError, ValueError):
        return False


def where(err: BaseException) -> str:
    """'file.py:function' of the innermost vitok frame of ``err`` (or of the innermost frame)."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if is_vitok_file(f.filename)]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    path = Path(frame.filename)
    name = str(path.resolve().relative_to(SRC.parent)) if is_vitok_file(frame.filename) else path.name
    return f"{name}:{frame.name}"


def raised_by_vitok(err: BaseException) -> bool:
    """Whether the innermost frame of ``err`` is a ``raise`` statement in vitok's own code."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames or not is_vitok_file(frames[-1].filename):
        return False
    return (frames[-1].line or "").lstrip().startswith("raise")


def one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 240 else text[:237] + "..."


def judge_error(err: BaseException, names: tuple[str, ...] = ()) -> tuple[str, str]:
    """(category, kind) of an exception raised by a case; ``names``: words of which the message
    must contain one (the key, the argument or the file)."""
    if isinstance(err, Timeout):
        return "traceback", f"timeout ({err})"
    kind = f"{type(err).__name__} at {where(err)}"
    message = str(err).strip()
    if not isinstance(err, CLEAR_TYPES):
        return "traceback", kind
    if not message or "\n" in message:
        return "traceback", f"{kind} (empty or multi-line message)"
    if not raised_by_vitok(err):
        return "traceback", f"{kind} (raised outside a vitok check)"
    if names and not any(n and n.lower() in message.lower() for n in names):
        return "traceback", f"{kind} (names none of {list(names)[:3]})"
    return "clear", ""


class Tally:
    """Counts per part and category; kinds of tracebacks and silent results with an example."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.kinds: dict[tuple[str, str], dict[str, list]] = defaultdict(dict)
        self.seconds: dict[str, float] = {}

    def add(self, part: str, category: str, kind: str = "", example: str = "") -> None:
        self.counts[part][category] += 1
        if category in ("traceback", "silent"):
            entry = self.kinds[part, category].setdefault(kind, [0, one_line(example)])
            entry[0] += 1

    def faults(self) -> int:
        return sum(c["traceback"] + c["silent"] for c in self.counts.values())

    def report(self) -> str:
        lines = []
        for part, counts in self.counts.items():
            total = sum(counts.values())
            summary = ", ".join(f"{counts[c]} {name}" for c, name in zip(
                CATEGORIES, ("results", "clear errors", "tracebacks", "silent wrong results")))
            lines.append(f"{part}: {total} cases in {self.seconds.get(part, 0):.0f} s: {summary}")
            for category in ("traceback", "silent"):
                kinds = self.kinds.get((part, category), {})
                for kind, (count, example) in sorted(kinds.items(), key=lambda kv: -kv[1][0]):
                    lines.append(f"  {category} x{count}: {kind}\n      e.g. {example}")
        return "\n".join(lines)


def run_case(tally: Tally, part: str, label: str, fn: Callable[[], Any], check: Callable[[Any], None] | None = None,
             names: tuple[str, ...] = (), seconds: float = 60.0) -> str:
    """Run one case: ``fn()`` then ``check(result)``; record and return its category."""
    try:
        with captured(), deadline(seconds):
            result = fn()
            if check is not None:
                check(result)
    except Silent as wrong:
        tally.add(part, "silent", str(wrong).split(":")[0], f"{label} -> {wrong}")
        return "silent"
    except (Exception, Timeout) as err:
        category, kind = judge_error(err, names)
        tally.add(part, category, kind, f"{label} -> {type(err).__name__}: {err}")
        return category
    tally.add(part, "result")
    return "result"


def expect(condition: bool, kind: str, detail: object = "") -> None:
    if not condition:
        raise Silent(f"{kind}: {detail}")


def finite(x: Any, bound: float = math.inf) -> bool:
    """All values finite (and of magnitude <= ``bound``: a pixel of 1e30 is finite but not an image)."""
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            return True
        x = x.detach().float()
        return bool(torch.isfinite(x).all()) and (x.numel() == 0 or float(x.abs().max()) <= bound)
    return bool(np.isfinite(np.asarray(x, dtype=np.float64)).all())


IN_RANGE = 100.0  # inputs beyond this are finite but not images or latents: NaN out is no fault then


def short(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}:{str(value.dtype).replace('torch.', '')}"
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"{type(value).__name__}(len {len(value)})"
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
