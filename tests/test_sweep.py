"""`vitok sweep`: grid expansion, skip/resume, the report's tables and plots, the R^2 fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, smooth_image
from vitok import io, sweep
from vitok.cli import main
from vitok.train.checkpoint import list_checkpoints


def test_fit_line_recovers_a_known_line() -> None:
    x = np.linspace(8, 14, 7)
    a, b, r2 = sweep.fit_line(x, 2.5 * x - 3)
    assert (a, b, r2) == pytest.approx((2.5, -3.0, 1.0))
    rng = np.random.default_rng(0)
    y = 2.5 * x - 3 + rng.normal(0, 1.0, x.shape)
    a, b, r2 = sweep.fit_line(x, y)
    residual = y - (a * x + b)
    assert r2 == pytest.approx(1 - residual.var() / y.var())
    assert 0 < r2 < 1


def spec_file(tmp_path: Path, images: Path, grid: dict) -> Path:
    base = {"data": {"train": [str(images)], "image_size": 32, "workers": 0}, "loss": {"perceptual": "none"},
            "optim": {"batch_size": 4, "lr": 1e-3, "warmup": 1}, "model": {"preset": "N-N/8"},
            "run": {"steps": 3, "precision": "fp32", "progress": False, "tensorboard": False, "ckpt_every": 1,
                    "image_every": 0}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    spec = {"base": str(tmp_path / "base.yaml"), "out_dir": str(tmp_path / "sweep"), "grid": grid,
            "overrides": ["run.log_every=1"],
            "eval": {"data": [str(images)], "size": 32, "metrics": ["psnr", "ssim"], "max_samples": 4}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return tmp_path / "spec.yaml"


def test_grid_expansion_and_plan(tmp_path) -> None:
    path = spec_file(tmp_path, tmp_path, {"model.preset": ["N-N/8", "N-N/16"],
                                          "model.overrides.latent_channels": [4, 8, 16]})
    spec = sweep.load_spec(path)
    runs = sweep.expand(spec)
    assert len(runs) == 6
    assert runs[0]["assignments"] == {"model.preset": "N-N/8", "model.overrides.latent_channels": 4}
    assert runs[-1]["name"] == "preset=N-N_16,latent_channels=16"
    assert len({r["dir"] for r in runs}) == 6
    assert main(["sweep", str(path), "--plan-only"]) == 0
    jobs = (tmp_path / "sweep" / "jobs.sh").read_text().splitlines()
    assert len([j for j in jobs if j.startswith("vitok train")]) == 6 and "latent_channels=16" in jobs[-1]
    from vitok.train import load_config

    cfg = load_config(spec.base, runs[-1]["overrides"])
    assert cfg.model.preset == "N-N/16" and cfg.model.overrides == {"latent_channels": 16}


def test_sweep_skips_finished_resumes_interrupted_and_reports(tmp_path, capsys) -> None:
    images = tmp_path / "images"
    for i in range(4):
        io.save_image(smooth_image(40, 48, i), images / f"{i}.png")
    path = spec_file(tmp_path, images, {"model.overrides.latent_channels": [2, 8]})
    spec = sweep.load_spec(path)
    runs = sweep.expand(spec)
    from vitok.train import load_config, train

    train(load_config(spec.base, [*runs[1]["overrides"], "run.stop_at=2"]))  # an interrupted run
    assert main(["sweep", str(path)]) == 0
    assert all(sweep.is_finished(r["dir"]) for r in runs)
    steps = [s for s, _ in list_checkpoints(runs[1]["dir"])]
    assert steps[-1] == 3
    rows = [json.loads(line) for line in (Path(runs[1]["dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # resumed at 2, not restarted
    assert main(["sweep", str(path)]) == 0
    assert "finished, skipped" in capsys.readouterr().out
    assert main(["sweep", "report", str(tmp_path / "sweep")]) == 0
    report = tmp_path / "sweep" / "report"
    lines = (report / "results.csv").read_text().splitlines()
    assert len(lines) == 3 and "E" in lines[0] and "psnr" in lines[0]
    assert (report / "psnr.png").is_file() and (report / "ssim.png").is_file() and (report / "results.md").is_file()
    fits = json.loads((report / "fits.json").read_text())
    assert set(fits) == {"psnr", "ssim"} and -1e-9 <= fits["psnr"]["r2"] <= 1 + 1e-9
    # moved elsewhere (runs.json's run folders no longer exist there), with one more metric in the
    # protocol: the runs are found in the folder given, and the cached results are evaluated again
    import shutil

    moved = shutil.move(tmp_path / "sweep", tmp_path / "moved")
    plan = json.loads((moved / "runs.json").read_text())
    plan["eval"]["metrics"] = ["psnr", "ssim", "grid"]
    (moved / "runs.json").write_text(json.dumps(plan))
    assert main(["sweep", "report", str(moved), "--device", "cpu"]) == 0
    header = (moved / "report" / "results.csv").read_text().splitlines()[0].split(",")
    assert "grid" in header and len((moved / "report" / "results.csv").read_text().splitlines()) == 3


def test_shipped_sweep_specs_parse() -> None:
    for path in sorted((REPO / "configs" / "sweeps").glob("*.yaml")):
        spec = sweep.load_spec(path)
        assert sweep.expand(spec)
        from vitok.train import load_config

        for run in sweep.expand(spec):
            load_config(REPO / spec.base, run["overrides"])


def test_variants_cross_the_grid_and_shards_split_the_runs(tmp_path, capsys) -> None:
    path = spec_file(tmp_path, tmp_path, {"model.overrides.latent_channels": [4, 8]})
    data = yaml.safe_load(path.read_text())
    data["variants"] = {"linear": [], "conv": ["model.overrides.head=conv", "loss.perceptual_shift=8"]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    runs = sweep.expand(sweep.load_spec(path))
    assert [r["name"] for r in runs] == ["variant=linear,latent_channels=4", "variant=linear,latent_channels=8",
                                         "variant=conv,latent_channels=4", "variant=conv,latent_channels=8"]
    from vitok.train import load_config

    cfg = load_config(data["base"], runs[3]["overrides"])
    assert cfg.model.overrides == {"head": "conv", "latent_channels": 8} and cfg.loss.perceptual_shift == 8
    del data["grid"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert [r["name"] for r in sweep.expand(sweep.load_spec(path))] == ["variant=linear", "variant=conv"]
    assert main(["sweep", str(path), "--shard", "2/2"]) != 0
    assert "I/N" in capsys.readouterr().err
    data["variants"] = {"bad": ["no-equals-sign"]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ValueError, match="section.key=value"):
        sweep.load_spec(path)
    data["variants"] = {"linear": []}
    data["eval"]["metrics"] = ["psnr", "fid"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ValueError, match=r"sweep eval: unknown metric 'fid'"):
        sweep.load_spec(path)  # at planning time, not in the report after the training
    data["eval"]["metrics"] = ["psnr"]
    data["eval"]["data"] = [str(tmp_path / "missing")]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["sweep", str(path), "--plan-only"]) == 2
    assert "sweep eval.data: " in capsys.readouterr().err and not (tmp_path / "sweep" / "runs.json").exists()


def test_a_finished_baseline_run_is_recognised(tmp_path) -> None:
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    assert not sweep.is_finished(tmp_path / "run")
    (model / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    assert sweep.is_finished(tmp_path / "run")
