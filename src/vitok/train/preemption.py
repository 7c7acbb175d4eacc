"""Stopping a training run cleanly on a scheduler's signal: save, then exit with a resumable state.

A cluster scheduler ends a job with ``SIGTERM`` (Slurm's ``scancel``, Kubernetes, ``kill``), and
warns ahead of a time limit or preemption with a signal of the job's choice (Slurm
``--signal=USR1@120``). Without a handler either one kills the process at once, losing every step
since the last periodic checkpoint. While :func:`stop_signals` is active, ``SIGTERM`` and
``SIGUSR1`` are only recorded, and the engine acts on them at the next consistent point:

- while the trainer is being built: it stops before the first step (nothing new to save);
- during a step: it finishes that step and saves a checkpoint;
- during the last step or the export: it completes them (the run is finished).

In every case it then raises :class:`RunInterruptedError`, and ``vitok train`` exits with 128 + the
signal number (143 for SIGTERM, the shell's code for death by it), so that ``stage1 && stage2``
does not go on. The same command resumes the run. Repeats are recorded once and do not kill:
schedulers and ``torchrun`` forward a signal to processes that already had it (Slurm signals every
process of the job step, then torchrun signals its workers again), and all of them escalate to
``SIGKILL`` after a grace period (Slurm ``KillWait``, torchrun ``--shutdown-timeout``, Kubernetes
``terminationGracePeriodSeconds``: 30 s by default), which also stops a stuck run.

Data-loader worker processes survive the signals long enough for the step and the save
(``vitok.data.loader``): a worker killed mid-step would fail the step the engine is finishing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from vitok.data.loader import STOP_SIGNALS  # the data layer owns the set, so its workers can use it

Moment = Literal["starting", "training", "finished"]


class RunInterruptedError(RuntimeError):
    """The run stopped on ``signum`` at ``step`` (run folder ``run_dir``). ``moment``: "starting"
    (before the first step of this process; nothing new to save), "training" (after finishing and
    saving ``step``) or "finished" (the signal came during the last step or the export, both
    completed). Running the same command again resumes (or, when finished, only re-exports)."""

    def __init__(self, signum: int, step: int, run_dir: str | Path, moment: Moment = "training") -> None:
        self.signum, self.step, self.run_dir, self.moment = signum, step, Path(run_dir), moment
        name = signal.Signals(signum).name
        text = {
            "starting": f"stopped by {name} while starting, before step {step + 1}; nothing new to save",
            "training": f"stopped by {name} after step {step}; checkpoint saved in {self.run_dir}",
            "finished": f"stopped by {name} after the last step ({step}); the run is complete and exported "
                        f"in {self.run_dir}",
        }[moment]
        super().__init__(text + ("" if moment == "finished" else "; run the same command again to resume"))

    @property
    def exit_status(self) -> int:
        """128 + the signal number (143 for SIGTERM), as a shell reports a process killed by it."""
        return 128 + self.signum


@contextlib.contextmanager
def stop_signals() -> Iterator[list[int]]:
    """While active, ``SIGTERM`` / ``SIGUSR1`` do not end the process: each signal number is appended
    (once) to the yielded list. The previous handlers come back on exit. Outside the main thread
    (where Python cannot set handlers) it installs nothing and yields a list that stays empty."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def record(signum: int, frame: object) -> None:
        if signum not in received:
            received.append(signum)

    previous = {sig: signal.signal(sig, record) for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
