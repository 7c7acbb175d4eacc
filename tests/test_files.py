"""Files and disks: atomic writes with normal modes, stale temp files, full / read-only disks,
checkpoints and weights files that cannot be used (issue #13)."""

from __future__ import annotations

import errno
import json
import os
import pickle
import stat

import pytest
import torch

from vitok.cli import main
from vitok.files import WriteError, atomic_write, check_writable, load_safetensors, remove_stale_temp_files
from vitok.train.checkpoint import CheckpointError, load_checkpoint, load_latest, save_checkpoint


def _disk_full(*_: object) -> None:
    """What torch.save does on a full disk: a RuntimeError with the OSError chained."""
    try:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError as err:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from err


def test_atomic_write_honours_the_umask_and_cleans_up(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.json", lambda path: path.write_text("{}"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644  # not mkstemp's 0600
    with pytest.raises(WriteError, match=r"cannot write .*b\.pt: No space left on device"):
        atomic_write(tmp_path / "b.pt", _disk_full)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temp file left behind


def test_stale_temp_files_are_removed_and_nothing_else(tmp_path) -> None:
    (tmp_path / "model").mkdir()
    stale = [tmp_path / ".ckpt-00000002.pt.1a2b3c4d.tmp", tmp_path / "model" / ".model.safetensors.x.tmp"]
    keep = [tmp_path / "ckpt-00000001.pt", tmp_path / "notes.tmp", tmp_path / "model" / "config.json"]
    for path in stale + keep:
        path.write_bytes(b"x")
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)


def test_unwritable_directory_is_one_line_naming_it(tmp_path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(WriteError, match=r"^run.out_dir .*file/run is not writable: Not a directory$"):
        check_writable(tmp_path / "file" / "run", "run.out_dir")


def test_checkpoint_write_failure_names_the_file_reason_and_last_good(tmp_path, monkeypatch) -> None:
    save_checkpoint(tmp_path, 4, {"step": 4, "model": {}})
    monkeypatch.setattr(torch, "save", _disk_full)
    with pytest.raises(WriteError) as caught:
        save_checkpoint(tmp_path, 6, {"step": 6, "model": {}})
    assert str(caught.value) == (f"cannot write checkpoint {tmp_path / 'ckpt-00000006.pt'}: No space left on device "
                                 "(last good checkpoint: ckpt-00000004.pt)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-00000004.pt"]


class _Evil:
    def __reduce__(self) -> tuple:
        return (exec, ("raise SystemExit('the pickle ran')",))


def test_bad_checkpoints_are_refused_by_name_and_resume_falls_back(tmp_path, capsys) -> None:
    save_checkpoint(tmp_path, 2, {"step": 2, "model": {"w": torch.ones(1)}})
    (tmp_path / "ckpt-00000004.pt").write_bytes((tmp_path / "ckpt-00000002.pt").read_bytes()[:100])  # truncated
    path, state = load_latest(tmp_path)
    assert path.name == "ckpt-00000002.pt" and state["step"] == 2
    assert "ckpt-00000004.pt: unreadable or truncated" in capsys.readouterr().err
    (tmp_path / "ckpt-00000004.pt").write_bytes(pickle.dumps({"step": 1, "model": _Evil()}, protocol=2))
    with pytest.raises(CheckpointError, match=r"ckpt-00000004.pt: not a vitok checkpoint .*refusing to unpickle"):
        load_checkpoint(tmp_path / "ckpt-00000004.pt")
    torch.save({"step": 3}, tmp_path / "ckpt-00000003.pt")
    with pytest.raises(CheckpointError, match=r"ckpt-00000003.pt: not a vitok checkpoint \(no model\)"):
        load_checkpoint(tmp_path / "ckpt-00000003.pt")
    (tmp_path / "ckpt-00000002.pt").unlink()
    with pytest.raises(CheckpointError, match="ckpt-00000004.pt"):  # nothing loads: the newest one's error
        load_latest(tmp_path)


def test_a_save_after_falling_back_keeps_itself_and_text_files_are_refused(tmp_path, capsys) -> None:
    save_checkpoint(tmp_path, 1000, {"step": 1000, "model": {"w": torch.ones(1)}}, keep_last=1)
    (tmp_path / "ckpt-00002000.pt").write_bytes((tmp_path / "ckpt-00001000.pt").read_bytes()[:100])  # truncated
    assert load_latest(tmp_path)[1]["step"] == 1000  # resumes from the older one
    saved = save_checkpoint(tmp_path, 1500, {"step": 1500, "model": {"w": torch.ones(1)}}, keep_last=1)
    assert saved.is_file()  # the newer broken file does not push out the one just written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-00001500.pt", "ckpt-00002000.pt"]
    assert load_latest(tmp_path)[1]["step"] == 1500
    for junk in (b"truncated", b"not a checkpoint\n", b""):  # IndexError in the unpickler; text; empty
        (tmp_path / "ckpt-00003000.pt").write_bytes(junk)
        with pytest.raises(CheckpointError, match="ckpt-00003000.pt: unreadable or truncated"):
            load_checkpoint(tmp_path / "ckpt-00003000.pt")
    assert load_latest(tmp_path)[1]["step"] == 1500
    capsys.readouterr()


def test_train_resume_from_a_pickled_checkpoint_is_one_line(tmp_path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "ckpt-00000001.pt").write_bytes(pickle.dumps({"step": 1, "model": _Evil()}, protocol=2))
    (run / ".ckpt-00000002.pt.0123abcd.tmp").write_bytes(b"PK" + bytes(100))  # an interrupted write
    code = main(["train", "/dev/null", f"data.train=[{data}]", "model.preset=N-N/8", "loss.perceptual=none",
                 f"run.out_dir={run}", "run.progress=false", "run.tensorboard=false"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith(f"vitok train: error: cannot load checkpoint {run / 'ckpt-00000001.pt'}")
    assert not list(run.glob(".*.tmp"))  # stale temp files are removed at start


def test_foreign_weights_files_are_refused_by_name(tmp_path) -> None:
    from vitok.models.dit import DiT
    from vitok.presets import dit_config

    (tmp_path / "w.safetensors").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match=r"w\.safetensors: not a readable safetensors file"):
        load_safetensors(tmp_path / "w.safetensors")
    DiT(dit_config("DiT-T", latent_channels=4, num_classes=2, depth=1)).save_pretrained(tmp_path / "dit")
    assert stat.S_IMODE((tmp_path / "dit" / "config.json").stat().st_mode) == 0o666 & ~_umask()
    config = json.loads((tmp_path / "dit" / "config.json").read_text())
    (tmp_path / "dit" / "config.json").write_text(json.dumps({**config, "heads": "4"}))
    with pytest.raises(ValueError, match=r"dit/config\.json: heads must be an int, got '4'"):
        DiT.from_pretrained(tmp_path / "dit")
    (tmp_path / "dit" / "config.json").write_text(json.dumps({**config, "depth": 2}))
    with pytest.raises(ValueError, match=r"model\.safetensors does not match .*config\.json"):
        DiT.from_pretrained(tmp_path / "dit")
    (tmp_path / "dit" / "config.json").write_text(json.dumps(config))
    (tmp_path / "dit" / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match=r"dit/model\.safetensors: not a readable safetensors file"):
        DiT.from_pretrained(tmp_path / "dit")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask



def test_resume_drops_metrics_rows_logged_after_the_checkpoint(tmp_path) -> None:
    from vitok.train.monitor import drop_rows_after

    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 6)) + '{"step": 6, "lo')
    assert drop_rows_after(path, 3) == 3  # steps 4, 5 and the half-written row of the crashed run
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3]
    assert drop_rows_after(path, 3) == 0 and drop_rows_after(tmp_path / "none.jsonl", 0) == 0


def test_trainer_trains_a_pretrained_model_in_train_mode(tmp_path) -> None:
    from vitok import ViTok
    from vitok.train import Trainer, load_config

    ViTok.from_preset("N-N/8").save_pretrained(tmp_path / "init")
    cfg = load_config(None, [f"data.train=[{tmp_path}]", "model.preset=N-N/8", f"model.init_from={tmp_path / 'init'}",
                             "model.grad_checkpointing=true", "loss.perceptual=none", f"run.out_dir={tmp_path / 'run'}",
                             "run.progress=false", "run.tensorboard=false"])
    trainer = Trainer(cfg)
    try:
        assert trainer.model.training  # from_pretrained's eval mode would silently disable grad checkpointing
    finally:
        trainer.close()


def test_a_run_directory_is_locked_against_a_second_run(tmp_path) -> None:
    import socket
    import subprocess
    import sys

    from vitok.files import LOCK_NAME, acquire_run_lock, release_run_lock

    lock = acquire_run_lock(tmp_path)
    assert lock.name == LOCK_NAME and acquire_run_lock(tmp_path) == lock  # re-entrant in one process
    other = subprocess.run([sys.executable, "-c", f"from vitok.files import acquire_run_lock; "
                            f"acquire_run_lock({str(tmp_path)!r})"], capture_output=True, text=True)
    assert other.returncode != 0 and "in use by another training run" in other.stderr
    release_run_lock(lock)
    assert not lock.exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(f"{socket.gethostname()} {int(dead.stdout)}")  # a crashed run's lock: taken over
    assert acquire_run_lock(tmp_path) == lock and lock.read_text().endswith(str(__import__("os").getpid()))
