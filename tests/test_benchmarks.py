"""The benchmark scripts whose output the README quotes run end to end (tiny inputs; no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_train import TINY_AUTOENCODER_KL
from vitok.presets import DEFAULT_MODEL


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses in the script look their module up
    spec.loader.exec_module(module)
    return module


def test_compare_vitok_tiny_writes_one_row_per_model(media_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from vitok.models.baselines import build_autoencoder_kl

    build_autoencoder_kl(TINY_AUTOENCODER_KL).save_pretrained(tmp_path / "akl")
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["compare_vitok_tiny", "--baseline", str(tmp_path / "akl"),
                                      "--images", str(media_dir), "--video", str(media_dir),
                                      "--image-sizes", "32", "--repeats", "1", "--out", str(out),
                                      "--precisions", "fp32"])
    assert load_script("compare_vitok_tiny").main() == 0
    rows = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in rows] == [DEFAULT_MODEL, "autoencoder-kl"]
    vitok, akl = rows
    assert vitok["E_128"] == 4096 and vitok["E_video"] == 16384  # 16x16x16, 4-frame tubelets
    assert akl["E_video"] == 16 * akl["E_128"]  # a 2D VAE codes every frame
    for r in rows:
        assert set(r["image_32"]) >= {"psnr", "ssim", "grid"} and math.isfinite(r["image_32"]["psnr"])
        assert math.isfinite(r["video_128"]["psnr"]) and r["ms_fp32"]["encode"] > 0
    assert vitok["files_32"] == akl["files_32"] and vitok["files_32"]["samples"] > 0  # the same files, checked
    assert vitok["gmacs_32"] < vitok["gmacs_128"]  # the cost of the size evaluated, not of 128 px
    table = (out / "table.md").read_text().splitlines()
    assert len(table) == 4 and table[2].startswith(f"| {DEFAULT_MODEL} |") and "| GMACs 32 | E 32 |" in table[0]
    script = load_script("compare_vitok_tiny")
    with pytest.raises(ValueError, match="did not score the same files at 32 px"):
        script.check_same_files([vitok, {**akl, "files_32": {"samples": 1, "skipped": []}}], [32])
    with pytest.raises(ValueError, match="share a label"):
        script.check_same_files([vitok, vitok], [32])


def test_compare_vitok_tiny_without_a_baseline(media_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """--no-baseline: only the --vitok rows (a new default against the one it replaces); the
    baseline's folder is then not needed."""
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["compare_vitok_tiny", "--no-baseline", "--baseline", "x"])
    with pytest.raises(SystemExit):  # the two contradict each other: refused before any work
        load_script("compare_vitok_tiny").main()
    monkeypatch.setattr(sys, "argv", ["compare_vitok_tiny", "--no-baseline",
                                      "--images", str(media_dir), "--video", str(media_dir),
                                      "--image-sizes", "32", "--repeats", "1", "--out", str(out),
                                      "--precisions", "fp32"])
    assert load_script("compare_vitok_tiny").main() == 0
    assert [r["model"] for r in json.loads((out / "results.json").read_text())] == [DEFAULT_MODEL]


def test_bench_train_configs_times_image_and_video_steps(media_dir: Path, tmp_path: Path, capsys) -> None:
    """benchmarks/bench_train_configs.py: the cycle speed is (every - 1) image steps + one video
    step (the trainer's rule: step % every == 0), and whole recipes run through `vitok train`."""
    bench = load_script("bench_train_configs")
    seconds = {s: (2.0 if s % 4 == 0 else 0.5) for s in range(1, 13)}
    seconds[1] = 30.0  # start-up: left out
    assert bench.summarise(seconds, 4, 1) == {"image_s": 0.5, "video_s": 2.0, "steps_per_s": 4 / 3.5}
    assert bench.summarise({2: 0.25, 3: 0.25}, None, 1)["steps_per_s"] == 4.0
    with pytest.raises(ValueError, match="raise --steps"):
        bench.summarise({1: 1.0, 2: 1.0}, 4, 1)  # no video step after the skip
    config = tmp_path / "tiny.yaml"
    config.write_text(f"data: {{train: [{media_dir}], image_size: 32, workers: 0}}\n"
                      "model: {preset: N-N/8}\noptim: {batch_size: 2, warmup: 1}\nloss: {perceptual: none}\n"
                      "run: {precision: fp32}\n"
                      f"video: {{every: 2, batch_size: 1, data: {{train: [{media_dir}], kind: video, image_size: 32, "
                      "num_frames: 4, workers: 0}}\n")
    assert bench.main([str(config), f"{config} video=null", "--steps", "6", "--skip", "1"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 4 and table[2].startswith(f"| {config} | ")
    assert table[3].startswith(f"| {config} video=null | ")
    with_video, images_only = ([float(c) for c in row.strip("| ").split(" | ")[1:4]] for row in table[2:])
    assert with_video[1] > 0 and math.isnan(images_only[1])  # the trainer's video steps were found and timed
    assert with_video[2] == pytest.approx(2 / (with_video[0] + with_video[1]), rel=0.01)
    with pytest.raises(SystemExit):  # every step a video step: no image step to time
        bench.main([f"{config} video.every=1", "--steps", "3", "--skip", "1"])
    assert "every step is a video step" in capsys.readouterr().err


def test_fuzz_campaign_classifies_and_a_small_run_finds_no_fault(tmp_path: Path) -> None:
    """benchmarks/fuzz_campaign.py (issue #13) at a few hundred cases per part."""
    import random

    from vitok.checks import check_int

    campaign = load_script("fuzz_campaign")
    tally = campaign.Tally()
    assert campaign.run_case(tally, "t", "ok", lambda: 1, lambda v: campaign.expect(v == 1, "one")) == "result"
    assert campaign.run_case(tally, "t", "clear", lambda: check_int("n", 0, 1)) == "clear"
    assert campaign.run_case(tally, "t", "raw", lambda: int("x")) == "traceback"  # not raised by a vitok check
    assert campaign.run_case(tally, "t", "key", lambda: {}["k"]) == "traceback"
    assert campaign.run_case(tally, "t", "wrong", lambda: 2, lambda v: campaign.expect(v == 1, "two")) == "silent"
    assert tally.counts["t"] == {"result": 1, "clear": 1, "traceback": 2, "silent": 1}
    assert campaign.judge_cli(["eval", "--size", "0"], 0, "", "")[0] == "silent"  # exit 0 on an absurd value
    assert campaign.judge_cli(["x"], 2, "", "usage: vitok\nvitok: error: bad\n")[0] == "clear"
    traceback = "Traceback (most recent call last):\n  File x\nKeyError\n"
    assert campaign.judge_cli(["x"], 2, "", traceback)[0] == "traceback"

    tally = campaign.Tally()
    with campaign.captured():
        campaign.api_campaign(300, random.Random(11), tally, tmp_path, verbose=False)
        campaign.config_campaign(300, 0, random.Random(11), tally, tmp_path, verbose=False)
        # the training part on fixed mutations (which random ones are trainable changes whenever a
        # config field is added): one the run part must skip (it fixes the model), one it trains
        from fuzz.config import run_accepted

        run_accepted([["model.preset=S-B/16"], ["optim.lr=3e-4", "optim.warmup=1"]], 2, random.Random(0), tally,
                     tmp_path, verbose=False)
    assert sum(tally.counts["api"].values()) == 300 and sum(tally.counts["config"].values()) == 300
    assert tally.counts["config runs"] == {"result": 1}
    assert min(tally.counts["api"]["result"], tally.counts["api"]["clear"], tally.counts["config"]["result"],
               tally.counts["config"]["clear"]) > 20
    faults = {kind: entry for kinds in tally.kinds.values() for kind, entry in kinds.items()}
    assert tally.faults() == 0, faults


@pytest.mark.slow
def test_kill_resume_is_byte_identical_after_two_kills(capsys) -> None:
    """benchmarks/kill_resume.py: one kill inside a checkpoint write, one elsewhere."""
    assert load_script("kill_resume").main(["--kills", "2", "--steps", "8", "--ckpt-every", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 kills" in out and "identical" in out


def test_training_curves_evaluates_every_kept_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/training_curves.py: the checkpoints kept aside while a run pruned its own become one
    curve, and its last point is the exported model's own score."""
    import shutil

    from tests.conftest import smooth_image
    from tests.test_train import tiny_config
    from vitok import ViTok, io
    from vitok.evaluate import EvalConfig, evaluate, model_info
    from vitok.train import train

    images = tmp_path / "images"
    for i in range(4):
        io.save_image(smooth_image(48, 56, seed=i), images / f"{i}.png")
    run, kept = tmp_path / "run", tmp_path / "kept"
    kept.mkdir()
    for stop in (2, 4):  # keep_last=1: the run folder only ever holds its newest checkpoint
        train(tiny_config(images, run, "run.steps=4", "run.ckpt_every=2", "run.keep_last=1", f"run.stop_at={stop}"))
        shutil.copy(run / f"ckpt-{stop:08d}.pt", kept)
    assert sorted(p.name for p in run.glob("ckpt-*.pt")) == ["ckpt-00000004.pt"]
    others = tmp_path / "others"  # stand-ins for the training photos: different pictures
    for i in range(3):
        io.save_image(smooth_image(40, 64, seed=10 + i), others / f"{i}.png")
    out = tmp_path / "out"
    script = load_script("training_curves")

    def curves(*extra: str) -> dict:
        monkeypatch.setattr(sys, "argv", ["training_curves", f"{run}::{kept}", "--images", str(images),
                                          "--size", "32", "--out", str(out), *extra])
        script.main()
        return json.loads((out / "curves.json").read_text())["run"]

    curve = curves("--train-images", str(others), "--max-samples", "3")
    assert list(curve) == ["2", "4"] and curve["2"]["psnr"] != curve["4"]["psnr"]
    assert (out / "psnr_32.png").is_file() and (out / "gap_32.png").is_file()
    assert "| run | step | psnr | ssim | lpips | grid | train_psnr | gap |" in (out / "curves.md").read_text()
    exported = ViTok.from_pretrained(run / "model")

    def direct(folder: Path, max_samples: int | None) -> float:
        cfg = EvalConfig(data=[str(folder)], kind="image", size=32, metrics=["psnr"], max_samples=max_samples,
                         out_dir=str(tmp_path / "direct"))
        return evaluate(exported, cfg, model_info(exported, (1, 32, 32)))["metrics"]["psnr"]

    assert curve["4"]["psnr"] == pytest.approx(direct(images, 3), abs=1e-4)
    assert curve["4"]["train_psnr"] == pytest.approx(direct(others, 3), abs=1e-4)
    assert curve["4"]["gap"] == pytest.approx(curve["4"]["train_psnr"] - curve["4"]["psnr"])
    # a cached result measured on other photos (here: 3 of the 4) is not reused
    assert curves()["4"]["psnr"] == pytest.approx(direct(images, None), abs=1e-4) != curve["4"]["psnr"]



def test_training_curves_of_a_stage_2_measure_the_ema_and_a_restart_is_measured_again(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    """A stage-2 run's points are its EMA weights (what ships), also for a conv VAE whose stage 2
    takes its architecture from model.init_from; a run restarted under the same name is measured
    again, never read from the cache of the lost one."""
    from tests.conftest import smooth_image
    from tests.test_train import TINY_AUTOENCODER_KL, tiny_config
    from vitok import io
    from vitok.evaluate import EvalConfig, evaluate, model_info
    from vitok.models.baselines import build_autoencoder_kl
    from vitok.train import train

    images = tmp_path / "images"
    for i in range(3):
        io.save_image(smooth_image(48, 56, seed=i), images / f"{i}.png")
    build_autoencoder_kl(TINY_AUTOENCODER_KL).save_pretrained(tmp_path / "stage1")
    stage2 = tmp_path / "stage2"  # no autoencoder_kl section of its own, as configs/vitok-tiny-conv's stage 2
    options = ("model.kind=autoencoder-kl", f"model.init_from={tmp_path / 'stage1'}", "run.steps=2",
               "run.ckpt_every=2", "run.ema=0.5", "optim.lr=1e-2")
    train(tiny_config(images, stage2, *options))
    script = load_script("training_curves")

    def curve() -> dict:
        monkeypatch.setattr(sys, "argv", ["training_curves", str(stage2), "--images", str(images), "--size", "32",
                                          "--out", str(tmp_path / "out")])
        script.main()
        return json.loads((tmp_path / "out" / "curves.json").read_text())["stage2"]

    def score(model_dir: Path) -> float:
        model = build_autoencoder_kl({}, str(model_dir)).eval()
        cfg = EvalConfig(data=[str(images)], kind="image", size=32, metrics=["psnr"], out_dir=str(tmp_path / "d"))
        return evaluate(model, cfg, model_info(model, (1, 32, 32)))["metrics"]["psnr"]

    first = curve()["2"]["psnr"]
    ema, trained = score(stage2 / "model-ema"), score(stage2 / "model")
    assert first == pytest.approx(ema, abs=1e-4) and abs(ema - trained) > 1e-3  # the EMA, not the trained weights
    import shutil

    shutil.rmtree(stage2)
    train(tiny_config(images, stage2, *options[:-1], "optim.lr=1e-3"))  # restarted: other weights at step 2
    assert curve()["2"]["psnr"] == pytest.approx(score(stage2 / "model-ema"), abs=1e-4) != pytest.approx(first)


def test_reproduce_script_checks_its_arguments_and_unfinished_runs(tmp_path: Path) -> None:
    import subprocess

    script = REPO / "benchmarks" / "reproduce_vitok_tiny_conv.sh"
    run = lambda *args: subprocess.run(["bash", str(script), *args], capture_output=True, text=True,  # noqa: E731
                                       env={"RUNS": str(tmp_path), "KEPT": str(tmp_path / "kept"),
                                            "PATH": "/usr/bin:/bin"})
    usage = run()
    assert usage.returncode == 2 and "train candidate" in usage.stderr
    unknown = run("train", "resnet")
    assert unknown.returncode == 2 and "unknown run 'resnet'" in unknown.stderr
    unfinished = run("ship")  # nothing trained: refuses before exporting anything
    assert unfinished.returncode == 1 and "candidate-stage2 has not finished" in unfinished.stderr
    (tmp_path / "candidate-stage2").mkdir()
    (tmp_path / "candidate-stage2" / "done").touch()
    both = run("ship")  # the candidate done, the baseline not: the full ship still refuses
    assert both.returncode == 1 and "baseline-stage2 has not finished" in both.stderr
    wrong = run("ship", "resnet")
    assert wrong.returncode == 2 and "unknown ship 'resnet'" in wrong.stderr
    (tmp_path / "baseline-stage2").mkdir()
    (tmp_path / "baseline-stage2" / "done").touch()
    alone = run("ship", "baseline")  # the baseline goes beside a shipped candidate and its kept logs only
    assert alone.returncode == 1 and "its kept logs" in alone.stderr and "ship candidate first" in alone.stderr
    assert not alone.stdout  # refused before anything was made
    (tmp_path / "baseline-stage2" / "done").unlink()
    (tmp_path / "baseline-stage2").rmdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidate-stage2"]  # nothing exported
    (tmp_path / "baseline-stage1").mkdir()
    rows = '{"step": 25, "loss": 1.0}\n{"step": 1250, "loss": 0.5}\n'
    (tmp_path / "baseline-stage1" / "metrics.jsonl").write_text(rows)
    status = run("status")
    assert status.returncode == 0 and status.stdout.splitlines() == [
        "candidate-stage1: not started", "candidate-stage2: done",
        "baseline-stage1: step 1250 logged, not finished", "baseline-stage2: not started"]
    assert "set -euo" not in usage.stderr  # the usage is the header's comment lines only


def test_card_facts_measures_compute_curve_and_metrics_from_the_runs(tmp_path: Path, capsys) -> None:
    """benchmarks/card_facts.py: the card's numbers come from metrics.jsonl and the comparison."""
    facts = load_script("card_facts")
    for stage, steps, speed in (("s1", 1000, 0.5), ("s2", 500, 0.25)):
        rows = [{"step": s, "loss": s / 1000, "rec": 0.1, "lpips": 0.5, "steps_per_s": speed}
                for s in range(25, steps + 1, 25)]
        rows[3]["steps_per_s"] = 1e-4  # a paused window: the median ignores it
        lines = [json.dumps(r) for r in rows] + [json.dumps({**rows[-1], "loss": 7.025})]  # a repeated step: last wins
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    scores = {"psnr": 21.0, "ssim": 0.5, "lpips": 0.4, "rfid": 300.0, "grid": 1.1}
    results = [{"model": "ours", "gmacs_128": 4.0, "gmacs_256": 20.8, "E_128": 4096, "image_128": scores,
                "image_256": scores, "video_128": {"psnr": 20.0, "ssim": 0.45}},
               {"model": "autoencoder-kl", "gmacs_128": 3.65, "gmacs_256": 15.0, "E_128": 4096,
                "image_128": {**scores, "psnr": 20.0}, "image_256": scores, "video_128": {"psnr": 19.0, "ssim": 0.4}}]
    (tmp_path / "results.json").write_text(json.dumps(results))
    (tmp_path / "card.json").write_text(json.dumps({"Data": "photos", "Limitations": "few", "Compute": "by hand"}))
    argv = ["--card", str(tmp_path / "card.json"), "--stage1", str(tmp_path / "s1"), "--stage2", str(tmp_path / "s2"),
            "--compare", str(tmp_path / "results.json"), "--row", "ours", "--out", str(tmp_path / "out.json")]
    assert facts.main(argv) == 0
    card = json.loads((tmp_path / "out.json").read_text())
    assert card["Data"] == "photos" and card["Limitations"] == "few"  # hand-written sections kept
    assert list(card) == ["Data", "Compute", "Training curve", "Metrics", "Comparison", "Limitations"]
    # 1000 steps at 0.5 steps/s + 500 at 0.25: 0.56 h + 0.56 h
    assert "Stage 1: 1000 steps, about 0.6 h of compute (median 0.50 steps/s)" in card["Compute"]
    assert "Stage 2: 500 steps" in card["Compute"] and "About 1.1 h in all" in card["Compute"]
    # windows 1-250, 251-500 (middle) and 751-1000; the repeated last step counts once, with its last value
    curve = card["Training curve"]
    assert "Stage 1: steps 1-250: loss 0.138, MSE 0.100, LPIPS-VGG 0.500; steps 251-500:" in curve
    assert "steps 751-1000: loss 1.490" in curve  # (0.775 + ... + 0.975 + 7.025) / 10
    assert "| val photos, 128 px | 21.00 | 0.500 | 0.400 | 300.0 | 1.10 |" in card["Metrics"]
    assert "| val video, 16x128x128 | 20.00 | 0.450 |" in card["Metrics"]
    assert "**ours (E = 4096 at 128 px; 4.00 GMACs at 128 px, 20.80 GMACs at 256 px)" in card["Comparison"]
    assert "autoencoder-kl (E = 4096 at 128 px; 3.65 GMACs at 128 px, 15.00 GMACs at 256 px)" in card["Comparison"]
    with pytest.raises(SystemExit):  # a row the comparison does not have is an argparse error
        facts.main([*argv[:-4], "--row", "nobody", "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()
    (tmp_path / "twice.json").write_text(json.dumps([results[0], results[0]]))
    with pytest.raises(SystemExit):  # two rows with one label: which one is meant is not guessed
        facts.main([*argv[:-6], "--compare", str(tmp_path / "twice.json"), "--row", "ours", "--out",
                    str(tmp_path / "x.json")])
    assert "two comparison rows share a model label" in capsys.readouterr().err
    with (tmp_path / "s1" / "metrics.jsonl").open("a") as f:
        f.write('{"step": 10')  # a half-written row: named with its line
    with pytest.raises(SystemExit):
        facts.main(argv)
    assert "s1/metrics.jsonl:42 is not a JSON row" in capsys.readouterr().err  # after 40 rows + 1 repeat
    (tmp_path / "card.json").write_text(json.dumps({"Data": 5}))
    with pytest.raises(SystemExit):
        facts.main(argv)
    assert "the card must be a JSON object" in capsys.readouterr().err


# The committed AutoencoderKL baseline (benchmarks/baselines/autoencoder-kl, the README's comparison):
# its PSNR on the shipped samples, measured on the committed weights (fp32 forward, native size),
# each floor 0.5 dB below: baboon 16.42, butterfly 16.50, fruits 22.36, carphone (16 frames) 20.48 dB.
BASELINE_FLOORS = {"baboon.jpg": 15.9, "butterfly.jpg": 16.0, "fruits.jpg": 21.8, "carphone.mp4": 19.9}


def test_vitok_from_pretrained_names_a_diffusers_folder_and_how_to_load_it() -> None:
    from vitok.models.vitok import ViTok

    with pytest.raises(FileNotFoundError, match="is a diffusers model folder.*AutoencoderKL.from_pretrained"):
        ViTok.from_pretrained(REPO / "benchmarks" / "baselines" / "autoencoder-kl")


def test_committed_baseline_loads_and_reconstructs_above_its_floors(tmp_path: Path) -> None:
    """Anyone can rerun the comparison: the committed baseline is a diffusers directory with the
    comparison's config (E = 4096 and 3.65 GMACs at 128 px) that still reconstructs as measured,
    and neither it nor a re-export of it names a local path (diffusers' ``_name_or_path``)."""
    pytest.importorskip("diffusers")
    import torch

    from vitok import io
    from vitok.cli import SAMPLES
    from vitok.models.baselines import build_autoencoder_kl
    from vitok.reconstruct import item_scores

    directory = REPO / "benchmarks" / "baselines" / "autoencoder-kl"
    assert {p.name for p in directory.iterdir()} == {"config.json", "diffusion_pytorch_model.safetensors"}
    assert "_name_or_path" not in json.loads((directory / "config.json").read_text())
    model = build_autoencoder_kl({}, str(directory)).float().eval()
    model.save_pretrained(tmp_path / "again")
    assert "_name_or_path" not in json.loads((tmp_path / "again" / "config.json").read_text())
    assert model.latent_size((1, 128, 128)) == 4096
    assert model.gmacs((1, 128, 128)) == pytest.approx(3.65, abs=0.01)
    for name, floor in BASELINE_FLOORS.items():
        path = SAMPLES / name
        x = io.load_video(path, 16) if io.is_video_file(path) else io.load_image(path)
        with torch.inference_mode():
            recon = model(x[None]).recon[0].float().clamp(-1, 1)
        assert recon.shape == x.shape
        assert item_scores(x, recon)["psnr"] > floor, name
