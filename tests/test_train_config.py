"""Training configs are checked at the door: types, ranges, YAML syntax, cross-field rules, and the
command line's numbers, each a one-line error naming the key (issue #13)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from vitok.checks import check_ranges
from vitok.cli import main
from vitok.train.config import TrainConfig, load_config


@pytest.mark.parametrize(("override", "message"), [
    ("optim.batch_size=0", r"optim.batch_size must be >= 1, got 0"),
    ("optim.accum=-1", r"optim.accum must be >= 1"),
    ("optim.accum=3", r"optim.batch_size 256 must be divisible by optim.accum 3"),  # fuzz campaign: accepted
    ("optim.accum=1099511627776", r"optim.batch_size 256 must be divisible by optim.accum 1099511627776"),
    ("optim.grad_clip=-1", r"optim.grad_clip must be > 0"),  # would be gradient ascent
    ("optim.grad_clip=0", r"optim.grad_clip must be > 0"),  # would zero every gradient
    ("optim.grad_clip=.nan", r"optim.grad_clip: expected a finite number, got nan"),
    ("optim.min_lr=-1", r"optim.min_lr must be >= 0"),
    ("optim.betas=[0.9,1.5]", r"optim.betas must be two values in \[0, 1\)"),
    ("run.ema=1", r"run.ema must be null \(no EMA\) or a decay in \[0, 1\), got 1.0"),
    ("run.ema=1.5", r"run.ema must be"),
    ("run.steps=0", r"run.steps must be >= 1, got 0"),
    ("run.stop_at=-1", r"run.stop_at must be null or >= 1"),
    ("run.out_dir=''", r"run.out_dir must be a non-empty path"),
    ("run.log_every=0", r"run.log_every must be >= 1"),
    ("run.ckpt_every=0", r"run.ckpt_every must be >= 1"),
    ("run.device=tpu", r"run.device must be auto, cpu, mps, cuda or cuda:N, got 'tpu'"),
    ("data.image_size=100000", r"data.image_size must be an int or a non-empty list of ints in \[1, 8192\]"),
    ("data.short_side=[0,0]", r"data.short_side must be null or \[lo, hi\]"),
    ("data.scale=[-1,0.5]", r"data.scale must be \[lo, hi\] with 0 < lo <= hi <= 1"),
    ("data.frame_stride=0", r"data.frame_stride must be >= 1"),
    ("loss.disc_channels=0", r"loss.disc_channels must be in \[1, 4096\]"),
    ("loss.kl_weight=-1", r"loss.kl_weight must be >= 0"),
    ("video={every: 0}", r"video.every must be >= 1, got 0"),
    ("video={data: {num_frames: 0}}", r"video.data.num_frames must be in \[1, 4096\]"),
    ("model.overrides={bogus: 1}", r"model.overrides: unknown keys \['bogus'\]"),
    ("model.overrides={patch_size: '8'}", r"model.overrides: patch_size must be an int, got '8'"),
    ("model.preset=Q-B/16", r"model.preset='Q-B/16'"),
    ("run.ema={", r"override 'run.ema=\{': the value is not valid YAML \(line 1, column 2"),
])
def test_out_of_range_values_are_rejected_naming_the_key(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_config(None, [override])


def test_video_batch_must_split_into_the_micro_batches() -> None:
    with pytest.raises(ValueError, match=r"video.batch_size 3 must be divisible by optim.accum 2"):
        load_config(None, ["optim.batch_size=4", "optim.accum=2", "video={batch_size: 3}"])


def test_video_section_data_defaults_to_video() -> None:
    cfg = load_config(None, ["video={every: 2, batch_size: 2, data: {train: [clips]}}"])
    assert cfg.video.data.kind == "video"
    with pytest.raises(ValueError, match="video.data.kind must be 'video', got 'image'"):
        load_config(None, ["video={data: {kind: image}}"])


def test_config_files_errors_name_the_file_and_line(tmp_path) -> None:
    (tmp_path / "bad.yaml").write_text("data:\n  image_size: 32\n run: {steps: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: YAML syntax error at line 3, column 2"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "scalar.yaml").write_text("just some text\n")
    with pytest.raises(ValueError, match=r"scalar\.yaml: expected a mapping of sections"):
        load_config(tmp_path / "scalar.yaml", ["run.steps=3"])
    with pytest.raises(ValueError, match="is a folder, not a YAML file"):
        load_config(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ValueError, match="run.out_dir must be a folder"):
        load_config(None, [f"run.out_dir={tmp_path / 'a_file'}"])


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys) -> None:
    assert main(["train", "/dev/null", "optim.grad_clip=-1", f"run.out_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vitok train: error: optim.grad_clip must be > 0 (a gradient-norm bound; a large value clips "
                   "nothing), got -1.0"]
    assert not (tmp_path / "run").exists()  # rejected before any work


@pytest.mark.parametrize("argv", [
    ["eval", "--model", "N-N/8", "x", "--size", "0"],
    ["eval", "--model", "N-N/8", "x", "--max-samples", "0"],
    ["eval", "--model", "N-N/8", "x", "--frames", "-1"],
    ["bench", "--size", "0"],
    ["bench", "--repeats", "0"],
    ["cache-latents", "--model", "N-N/8", "x", "--out", "y", "--shard-size", "0"],
    ["sample", "--dit", "d", "--model", "t", "--steps", "0"],
    ["sample", "--dit", "d", "--model", "t", "--cfg", "nan"],
])
def test_cli_numbers_are_range_checked_by_argparse(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert caught.value.code == 2 and ": error: argument --" in err
    assert any(text in err for text in ("must be a positive integer", "must be a finite number",
                                        "must be N or HxW with positive integers"))


def _random_value(rng: random.Random) -> object:
    return rng.choice([0, -1, 1, 3, 2**40, 0.5, -0.5, 1.5, float("nan"), float("inf"), "abc", "", None, True,
                       [], [1], [0, 0], [1, 2, 3], {"a": 1}, "[", "{"])


def test_config_fuzz_never_gives_anything_but_a_clear_value_error() -> None:
    """Seeded mutations of every field: a valid config or a one-line ValueError naming the key."""
    rng = random.Random(13)
    sections = {"data": TrainConfig().data, "loss": TrainConfig().loss, "optim": TrainConfig().optim,
                "run": TrainConfig().run}
    keys = [f"{section}.{f.name}" for section, value in sections.items() for f in dataclasses.fields(value)]
    assert all(type(v).ranges for v in sections.values())  # every section declares its ranges
    keys += ["model.preset", "model.overrides", "video.every", "video.data.image_size", "model.kind"]
    outcomes = {"valid": 0, "rejected": 0}
    for _ in range(300):
        chosen = rng.sample(keys, rng.randint(1, 3))
        overrides = [f"{key}={_random_value(rng)!r}".replace("'", "") if rng.random() < 0.3
                     else f"{key}={_random_value(rng)}" for key in chosen]
        try:
            cfg = load_config(None, overrides)
        except ValueError as err:
            text = str(err)
            assert "\n" not in text and text, (overrides, text)
            assert any(key.split(".")[-1] in text for key in chosen) or "YAML" in text, (overrides, text)  # the field
            outcomes["rejected"] += 1
        else:
            assert isinstance(cfg, TrainConfig)
            for name in ("data", "loss", "optim", "run"):  # an accepted config is within every declared range
                check_ranges(getattr(cfg, name), f"{name}.")
            outcomes["valid"] += 1
    assert min(outcomes.values()) > 10  # both paths exercised
