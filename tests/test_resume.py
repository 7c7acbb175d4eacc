"""Resuming a run: exactly where it stopped, and with the settings changed since."""

from __future__ import annotations

import json

import torch

from tests.conftest import assert_same_final_state
from tests.test_train import tiny_config
from vitok.train import Trainer, train
from vitok.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from vitok.train.engine import changed_settings


def test_resume_is_exact(image_folder, tmp_path) -> None:
    extra = ("loss.gan_weight=0.05", "loss.disc_channels=8", "run.ema=0.9", "loss.disc_warmup=2")
    train(tiny_config(image_folder, tmp_path / "full", *extra))
    train(tiny_config(image_folder, tmp_path / "split", *extra, "run.stop_at=3"))
    assert [s for s, _ in list_checkpoints(tmp_path / "split")] == [3]
    assert not (tmp_path / "split" / "model").exists()  # not finished: nothing exported
    train(tiny_config(image_folder, tmp_path / "split", *extra))  # auto-resume from step 3
    full, split = assert_same_final_state(tmp_path / "full", tmp_path / "split")
    assert split["step"] == full["step"] == 6
    # the saved global RNG state too (kill -9 campaign: each resume's DataLoader iterator drew one
    # more number from the global RNG than the uninterrupted run's)
    assert torch.equal(full["rng"], split["rng"])


def test_a_resumed_run_takes_changed_optimiser_settings_and_says_so(image_folder, tmp_path, capsys) -> None:
    # Optimizer.load_state_dict alone would bring back the weight decay the run started with
    extra = ("loss.gan_weight=0.05", "loss.disc_channels=8", "loss.disc_warmup=2")
    train(tiny_config(image_folder, tmp_path / "run", *extra, "run.stop_at=3"))
    # as if written by a version without data.rot90: the option shows with its default
    state = load_checkpoint(tmp_path / "run" / "ckpt-00000003.pt")
    config = json.loads(state["config"])
    del config["data"]["rot90"]
    save_checkpoint(tmp_path / "run", 3, {**state, "config": json.dumps(config)}, keep_last=1)
    capsys.readouterr()
    trainer = Trainer(tiny_config(image_folder, tmp_path / "run", *extra, "optim.weight_decay=0.25",
                                  "optim.betas=[0.8,0.9]", "data.rot90=true"))
    try:
        assert trainer.step == 3
        assert [g["weight_decay"] for g in trainer.opt.param_groups] == [0.25, 0.0]  # matrices, then the rest
        assert all(g["betas"] == (0.8, 0.9) for g in trainer.opt.param_groups)
        assert trainer.d_opt.param_groups[0]["weight_decay"] == 0.25
        assert trainer.opt.state  # the moments did come from the checkpoint
    finally:
        trainer.close()
    out = capsys.readouterr().out
    assert "resuming with a changed setting: optim.weight_decay: 0.0001 -> 0.25" in out
    assert "optim.betas: [0.9, 0.95] -> [0.8, 0.9]" in out
    assert "data.rot90: False -> True" in out
    assert "run.stop_at" in out and "data.train" not in out and "data.vflip" not in out  # only what changed
    # an option the checkpoint's version did not have yet is not a change
    assert changed_settings({"a": {"b": 1, "d": 0}}, {"a": {"b": 2, "c": 3, "d": 0}}) == ["a.b: 1 -> 2"]


def test_a_resumed_run_can_add_the_ema_and_the_gan(image_folder, tmp_path, capsys) -> None:
    train(tiny_config(image_folder, tmp_path / "run", "run.stop_at=3"))  # no EMA, no GAN
    capsys.readouterr()
    train(tiny_config(image_folder, tmp_path / "run", "run.ema=0", "loss.gan_weight=0.05", "loss.disc_channels=8"))
    out = capsys.readouterr().out
    assert "run.ema is new since the checkpoint" in out and "the discriminator starts fresh" in out
    assert (tmp_path / "run" / "model-ema").is_dir()  # a decay of 0 is an EMA too (a copy), not "off"
    assert load_checkpoint(list_checkpoints(tmp_path / "run")[-1][1])["step"] == 6
