"""Stopping a training run cleanly on a scheduler's signal: save, then exit with a resumable state.

A cluster scheduler ends a job with ``SIGTERM`` (Slurm's ``scancel``, Kubernetes, ``kill``), and
warns ahead of a time limit or preemption with a signal of the job's choice (Slurm
``--signal=USR1@120``). Without a handler either one kills the process at once, losing every step
since the last periodic checkpoint. While :func:`stop_signals` is active, the first ``SIGTERM`` or
``SIGUSR1`` is only recorded: the engine finishes the step in progress, saves a checkpoint, and
raises :class:`RunInterruptedError` (``vitok train`` then exits with 128 + the signal number, the
shell's convention for death by that signal, so that ``stage1 && stage2`` does not go on). A second
signal of the same kind kills the process as before, so a stuck run can still be stopped.

Data-loader worker processes ignore both signals (``vitok.data.loader``, their ``worker_init_fn``):
a scheduler signals every process of the job, and a worker killed mid-step would fail the step the
engine is finishing. Workers still exit with their parent.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from vitok.data.loader import STOP_SIGNALS


class RunInterruptedError(RuntimeError):
    """The run stopped on ``signum`` after saving its checkpoint at ``step`` in ``run_dir``;
    running the same command again resumes it exactly."""

    def __init__(self, signum: int, step: int, run_dir: str | Path) -> None:
        self.signum, self.step, self.run_dir = signum, step, Path(run_dir)
        super().__init__(f"stopped by {signal.Signals(signum).name} after step {step}; checkpoint saved in "
                         f"{self.run_dir}; run the same command again to resume")

    @property
    def exit_status(self) -> int:
        """128 + the signal number (143 for SIGTERM), as a shell reports a process killed by it."""
        return 128 + self.signum


@contextlib.contextmanager
def stop_signals() -> Iterator[list[int]]:
    """While active, the first ``SIGTERM`` / ``SIGUSR1`` is appended to the yielded list instead of
    ending the process; a repeat of the same signal restores the previous handler and re-raises it
    (so a second ``kill`` still kills). The previous handlers come back on exit. Outside the main
    thread (where Python cannot set handlers) it yields a list that stays empty."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handler(signum: int, frame: object) -> None:
        if signum in received:  # the second one: behave as if we had never caught it
            signal.signal(signum, previous[signal.Signals(signum)])
            signal.raise_signal(signum)
            return
        received.append(signum)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)

