"""Training speed of whole recipes, side by side in one run: each config trains a few steps with
``vitok train`` (the real data pipeline, losses, optimizer and video steps) and its logged seconds
per step are summarised.

    python benchmarks/bench_train_configs.py configs/vitok-tiny-conv/stage1.yaml \\
        configs/vitok-tiny-conv/baseline_autoencoder_kl.yaml \\
        "configs/vitok-tiny-conv/stage1.yaml data.image_size=128 data.short_side=[128,640] loss.perceptual_crop=0.5" \\
        --steps 24 --threads 2

Each argument is a config path optionally followed by ``key=value`` overrides (one shell word).
The runs go one after another (not at the same time) in throw-away folders, each with
``OMP_NUM_THREADS=--threads``; the first ``--skip`` steps (start-up, warm caches) are left out.
Reported per run: the median seconds of an image step and of a video step (``video.every``), and
steps/s over a whole cycle of ``video.every`` steps (``(every - 1)`` image steps and one video
step), what a long run averages once every loss term is on; then each run's cycle speed relative
to the first. Only the first ``--steps`` steps are timed: a term that starts later (stage 2's
``loss.gan_start``, ``loss.perceptual_start``) is timed only if ``--steps`` reaches past it.
Nothing else should run meanwhile: two runs on 2 cores slow each other to ~60% (measured).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from vitok.train.config import load_config


def step_seconds(run_dir: Path) -> dict[int, float]:
    """Seconds of each logged step of a finished run (``metrics.jsonl``, ``run.log_every=1``)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {row["step"]: 1.0 / row["steps_per_s"] for row in rows if row.get("steps_per_s")}


def summarise(seconds: dict[int, float], video_every: int | None, skip: int) -> dict[str, float]:
    """Median image-step and video-step seconds (a step ``s`` is a video step when
    ``s % video_every == 0``, the trainer's rule) and the steps/s of one cycle.

    Raises:
        ValueError: no step is left after ``skip``, a video recipe logged no video step, or
            ``video_every`` is 1 (no image steps).
    """
    if video_every == 1:
        raise ValueError("video.every is 1: every step is a video step, there is no image step to time")
    kept = {s: t for s, t in seconds.items() if s > skip}
    video = [t for s, t in kept.items() if video_every and s % video_every == 0]
    image = [t for s, t in kept.items() if not (video_every and s % video_every == 0)]
    if not image or (video_every and not video):
        raise ValueError(f"too few steps after the first {skip}: {sorted(kept)} (raise --steps)")
    image_s = statistics.median(image)
    if not video_every:
        return {"image_s": image_s, "video_s": float("nan"), "steps_per_s": 1.0 / image_s}
    video_s = statistics.median(video)
    return {"image_s": image_s, "video_s": video_s,
            "steps_per_s": video_every / ((video_every - 1) * image_s + video_s)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="'CONFIG [key=value ...]', one shell word per run")
    p.add_argument("--steps", type=int, default=24, help="steps per run (default: %(default)s)")
    p.add_argument("--skip", type=int, default=4, help="first steps left out (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run (default: %(default)s)")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vitok-bench-") as tmp:
        for i, run in enumerate(args.runs):
            config, *overrides = shlex.split(run)
            try:
                cfg = load_config(config, overrides)
            except ValueError as err:
                p.error(f"{run}: {err}")
            out = Path(tmp) / f"run{i}"
            cmd = [sys.executable, "-m", "vitok", "train", config, *overrides, f"run.out_dir={out}",
                   f"run.steps={args.steps}", "run.log_every=1", "run.progress=false",
                   f"run.ckpt_every={args.steps}", "run.image_every=0", "run.tensorboard=false"]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                p.error(f"{run}: vitok train exited {done.returncode}:\n{done.stderr[-2000:]}")
            every = cfg.video.every if cfg.video is not None else None
            try:
                rows.append({"run": run, **summarise(step_seconds(out), every, args.skip)})
            except ValueError as err:
                p.error(f"{run}: {err}")
    print(f"| run ({args.steps} steps, first {args.skip} left out, {args.threads} thread(s)) "
          "| image step s | video step s | steps/s | x first |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['run']} | {row['image_s']:.4g} | {row['video_s']:.4g} | {row['steps_per_s']:.4g} "
              f"| {row['steps_per_s'] / rows[0]['steps_per_s']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
