"""Stopping on a scheduler's signal: finish the step (or the start, or the export), save, exit 128 +
signum, resume exactly; one rank signalled or the whole job, data-loader workers included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, assert_same_final_state
from tests.test_train import _plain, tiny_config
from vitok.train import Trainer, train
from vitok.train.checkpoint import list_checkpoints
from vitok.train.preemption import RunInterruptedError, stop_signals

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")


def test_signals_are_recorded_once_repeats_do_not_kill_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_signals() as received:
        for signum in (signal.SIGUSR1, signal.SIGTERM, signal.SIGTERM, signal.SIGUSR1):
            os.kill(os.getpid(), signum)  # a scheduler, then torchrun, forward the same signal
        assert received == [signal.SIGUSR1, signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is before
    code = ("import os, signal\nfrom vitok.train.preemption import stop_signals\n"
            "with stop_signals() as received:\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n    os.kill(os.getpid(), signal.SIGTERM)\n"
            "print('caught', received, flush=True)\nos.kill(os.getpid(), signal.SIGTERM)\nprint('survived')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert result.returncode == -signal.SIGTERM, result.stderr[-2000:]  # the default handler is back
    assert "caught [15]" in result.stdout and "survived" not in result.stdout


def test_signal_while_starting_stops_before_step_one_and_leaves_nothing(image_folder, tmp_path,
                                                                        monkeypatch) -> None:
    from vitok.train import trainer

    original = trainer.build_model

    def signalled_build(cfg):
        os.kill(os.getpid(), signal.SIGTERM)
        return original(cfg)

    monkeypatch.setattr(trainer, "build_model", signalled_build)
    with pytest.raises(RunInterruptedError, match="SIGTERM while starting, before step 1; nothing new") as err:
        train(tiny_config(image_folder, tmp_path / "run"))
    assert err.value.moment == "starting" and err.value.exit_status == 143
    assert not (tmp_path / "run").exists()  # a fresh folder that never stepped is removed


def test_signal_during_the_export_completes_it_then_reports(image_folder, tmp_path, monkeypatch) -> None:
    original = Trainer.export

    def signalled_export(self):
        os.kill(os.getpid(), signal.SIGUSR1)
        original(self)

    monkeypatch.setattr(Trainer, "export", signalled_export)
    with pytest.raises(RunInterruptedError, match=r"SIGUSR1 after the last step \(6\); the run is complete") as err:
        train(tiny_config(image_folder, tmp_path / "run"))
    assert err.value.moment == "finished" and err.value.exit_status == 138
    assert (tmp_path / "run" / "model").is_dir() and [s for s, _ in list_checkpoints(tmp_path / "run")] == [3, 6]


def test_signal_between_building_and_the_loop_is_not_lost(image_folder, tmp_path, monkeypatch) -> None:
    from vitok.train import engine

    original = engine.open_run

    def signalled_open_run(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "open_run", signalled_open_run)
    with pytest.raises(RunInterruptedError, match="SIGTERM after step 1; checkpoint saved"):
        train(tiny_config(image_folder, tmp_path / "run"))
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [1]


def test_a_repeat_while_closing_does_not_kill_and_the_lock_is_released(image_folder, tmp_path,
                                                                       monkeypatch) -> None:
    from vitok.files import LOCK_NAME
    from vitok.train.engine import Engine

    original_step, original_close = Trainer.train_step, Engine.close

    def signalled_step(self, batches):
        if self.step == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return original_step(self, batches)

    def signalled_close(self):
        os.kill(os.getpid(), signal.SIGTERM)  # the scheduler's repeat (or torchrun's forward)
        original_close(self)

    monkeypatch.setattr(Trainer, "train_step", signalled_step)
    monkeypatch.setattr(Engine, "close", signalled_close)
    with pytest.raises(RunInterruptedError, match="after step 2"):
        train(tiny_config(image_folder, tmp_path / "run"))
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_loader_workers_are_shut_down_before_the_export(image_folder, tmp_path, monkeypatch) -> None:
    import multiprocessing

    original, alive = Trainer.export, []
    before = set(multiprocessing.active_children())  # an earlier test's process is not this run's worker

    def export(self):
        alive.extend(set(multiprocessing.active_children()) - before)
        original(self)

    monkeypatch.setattr(Trainer, "export", export)
    train(tiny_config(image_folder, tmp_path / "run", "data.workers=1"))
    assert alive == [] and (tmp_path / "run" / "model").is_dir()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_signal_mid_run_saves_that_step_and_resume_is_exact(signum, image_folder, tmp_path,
                                                            monkeypatch) -> None:
    extra = ("run.ema=0.9", "loss.gan_weight=0.05", "loss.disc_channels=8", "loss.disc_warmup=2")
    train(tiny_config(image_folder, tmp_path / "full", *extra))
    original = Trainer.train_step

    def signalled_at_step_2(self, batches):
        if self.step == 1:  # the second step: the signal arrives while it runs
            os.kill(os.getpid(), signum)
        return original(self, batches)

    monkeypatch.setattr(Trainer, "train_step", signalled_at_step_2)
    with pytest.raises(RunInterruptedError, match=f"stopped by {signum.name} after step 2") as err:
        train(tiny_config(image_folder, tmp_path / "split", *extra))
    assert err.value.exit_status == 128 + signum and err.value.step == 2
    assert [s for s, _ in list_checkpoints(tmp_path / "split")] == [2]  # ckpt_every=3: the signal's save
    assert not (tmp_path / "split" / "model").exists()
    monkeypatch.setattr(Trainer, "train_step", original)
    train(tiny_config(image_folder, tmp_path / "split", *extra))
    full, split = assert_same_final_state(tmp_path / "full", tmp_path / "split")
    assert split["step"] == full["step"] == 6


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}


def endless_config(images: Path, tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    """A tiny run config (YAML) that would train far longer than any test waits; (config, run dir)."""
    config, run = tmp_path / "cfg.yaml", tmp_path / "run"
    base = tiny_config(images, run, "run.steps=100000", "run.ckpt_every=100000", *extra)
    config.write_text(yaml.safe_dump(_plain(base.to_dict())))
    return config, run


def start_and_wait(command: list[str], metrics: Path, more_lines: int) -> subprocess.Popen:
    """Start ``command`` in a new session (its own process group) and return once ``metrics`` has
    ``more_lines`` more lines than now (the run is training)."""
    before = len(metrics.read_text().splitlines()) if metrics.is_file() else 0
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= before + more_lines):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run logged no steps in 240 s"
        time.sleep(0.2)
    return proc


def test_vitok_train_killed_like_a_scheduler_exits_143_and_resumes(image_folder, tmp_path) -> None:
    """The whole process group (trainer and its data-loader worker) gets SIGTERM, as from ``scancel``."""
    config, run = endless_config(image_folder, tmp_path, "data.workers=1")
    command = [sys.executable, "-m", "vitok", "train", str(config)]
    metrics = run / "metrics.jsonl"
    proc = start_and_wait(command, metrics, 3)
    os.killpg(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    steps = [s for s, _ in list_checkpoints(run)]
    assert len(steps) == 1 and steps[0] >= 3, steps
    assert f"stopped by SIGTERM after step {steps[0]}; checkpoint saved in {run}" in stderr
    assert "Traceback" not in stderr
    result = subprocess.run([*command, f"run.steps={steps[0] + 2}"], env=ENV, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert logged[-1] == steps[0] + 2 and (run / "model").is_dir()


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc to find the ranks")
def test_torchrun_ranks_agree_to_stop_when_one_is_signalled(image_folder, tmp_path) -> None:
    config, run = endless_config(image_folder, tmp_path)
    metrics = run / "metrics.jsonl"

    def torchrun(port_salt: int, *overrides: str) -> list[str]:
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                str(20000 + (os.getpid() * port_salt) % 20000), "-m", "vitok", "train", str(config), *overrides]

    proc = start_and_wait(torchrun(11), metrics, 3)
    ranks = children(proc.pid)
    assert len(ranks) == 2, ranks
    os.kill(ranks[1], signal.SIGTERM)  # one rank only: the other must learn it and stop at the same step
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode != 0
    assert stderr.count("stopped by SIGTERM after step") == 2, stderr[-3000:]
    steps = [s for s, _ in list_checkpoints(run)]
    assert len(steps) == 1 and f"after step {steps[0]};" in stderr
    # then as Slurm's scancel does it: SIGTERM to torchrun and both ranks, and torchrun forwards it again
    proc = start_and_wait(torchrun(13), metrics, 2)
    os.killpg(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=180)
    later = [s for s, _ in list_checkpoints(run)]
    assert later[-1] > steps[0] and stderr.count(f"stopped by SIGTERM after step {later[-1]};") == 2, stderr[-3000:]
    result = subprocess.run(torchrun(17, f"run.steps={later[-1] + 1}"), env=ENV, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run / "model").is_dir()
