"""kill -9 check: a training run killed with SIGKILL at random moments, resumed each time, ends with
the same bytes as a run that was never interrupted (issue #13).

    nice -n 5 .venv/bin/python benchmarks/kill_resume.py --kills 20

What it does:

1. makes tiny data (smooth random PNGs; or ``--data DIR``) and a config: the nano preset
   ``N-N/8`` at 32 px with the GAN, its discriminator warm-up and an EMA (so every part of the
   training state is exercised), a checkpoint every ``--ckpt-every`` steps, keep-last 2, and
   ``--steps`` steps (default 4 per kill, so the run is still going at the last kill);
2. trains it once without interruption (``python -m vitok train``, a subprocess);
3. trains the same config in another folder and kills the process ``--kills`` times, restarting
   the same command after each kill (it resumes from the newest loadable checkpoint, removes the
   stale temp files and takes over the dead run's lock). Every other kill lands inside a
   checkpoint write: as the 1st-3rd checkpoint temp file of that start appears, plus a random
   0-20 ms (inside ``torch.save``, the fsync or just after the rename); the others at a random
   moment: during start-up, or a random 0-0.3 s after the run has logged 1-4 steps past the
   checkpoint it resumed from (a step, logging, a checkpoint, the discriminator's update);
4. lets the last restart finish and compares: the exported ``model/model.safetensors`` and
   ``model-ema/model.safetensors`` byte for byte, every tensor of the final checkpoint (model,
   EMA, discriminator, both optimisers, the RNG state) with ``torch.equal``, and the
   ``metrics.jsonl`` rows (each step exactly once, the same loss values).

A kill counts as "inside a checkpoint write" when a checkpoint temp file that this start created
is still there after the process is gone. Exit status 0 when everything is identical, 1 otherwise.

Last run (--kills 20, 2 busy CPU cores): 20 kills, 11 inside a checkpoint write, 177 s, identical
(docs/robustness.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def make_data(folder: Path, count: int = 8) -> Path:
    """``count`` smooth random colour images (40 x 48) as PNG."""
    from vitok import io

    g = torch.Generator().manual_seed(0)
    for i in range(count):
        coarse = torch.rand(1, 3, 5, 6, generator=g) * 2 - 1
        image = torch.nn.functional.interpolate(coarse, size=(40, 48), mode="bilinear", align_corners=False)[0]
        io.save_image(image, folder / f"{i}.png")
    return folder


def write_config(path: Path, data: Path, out: Path, steps: int, ckpt_every: int) -> Path:
    path.write_text(
        f"data: {{train: [{data}], image_size: 32, workers: 0}}\n"
        "model: {preset: N-N/8}\n"
        "optim: {batch_size: 4, lr: 1.0e-3, warmup: 2}\n"
        "loss: {perceptual: none, gan_weight: 0.05, disc_channels: 8, disc_warmup: 2}\n"
        f"run: {{out_dir: {out}, steps: {steps}, precision: fp32, ema: 0.9, log_every: 1, image_every: 0, "
        f"ckpt_every: {ckpt_every}, keep_last: 2, tensorboard: false, progress: false}}\n")
    return path


def command(config: Path) -> list[str]:
    return [sys.executable, "-m", "vitok", "train", str(config)]


def environment() -> dict[str, str]:
    """One thread everywhere: the reference and the killed runs compute in the same order."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def checkpoint_temps(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob(".ckpt-*.tmp")) if run_dir.is_dir() else []


def run_to_end(config: Path, log: Path) -> float:
    start = time.perf_counter()
    with open(log, "a") as out:
        done = subprocess.run(command(config), stdout=out, stderr=subprocess.STDOUT, env=environment(), check=False)
    if done.returncode != 0:
        raise SystemExit(f"training failed (exit {done.returncode}); see {log}:\n{log.read_text()[-2000:]}")
    return time.perf_counter() - start


def last_step(run_dir: Path) -> int:
    """The step of the last row of ``metrics.jsonl`` (0 without one)."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def resume_step(run_dir: Path) -> int:
    found = sorted(run_dir.glob("ckpt-*.pt")) if run_dir.is_dir() else []
    return int(found[-1].stem.split("-")[1]) if found else 0


def kill_once(config: Path, run_dir: Path, log: Path, rng: random.Random, in_write: bool, timeout: float) -> str:
    """Start the run and SIGKILL it; returns 'finished' if it ended first, else 'killed' or
    'killed-in-write' (a checkpoint's temp file is left behind).

    ``in_write``: kill as the (1 + k)-th checkpoint write of this start begins (k random in 0..2,
    so the run makes progress), after a random 0-20 ms. Otherwise a random moment: during start-up
    (one kill in five, a random delay in the first seconds) or a random 0-0.3 s after the run has
    logged 1-4 more steps than where it resumed."""
    with open(log, "a") as out:
        out.write(f"\n===== start ({'at a checkpoint write' if in_write else 'at a random moment'})\n")
        out.flush()
        begin, stale = resume_step(run_dir), set(checkpoint_temps(run_dir))  # the last kill's, removed at start-up
        proc = subprocess.Popen(command(config), stdout=out, stderr=subprocess.STDOUT, env=environment())
        start = time.perf_counter()
        expired = lambda: time.perf_counter() - start > timeout  # noqa: E731
        if in_write:
            wanted, seen = 1 + rng.randrange(3), set()
            while proc.poll() is None and not expired() and len(seen) < wanted:
                seen.update(p.name.split(".tmp")[0].rsplit(".", 1)[0] for p in checkpoint_temps(run_dir)
                            if p not in stale)
                time.sleep(0.0005)
            time.sleep(rng.uniform(0, 0.02))
        elif rng.random() < 0.2:
            time.sleep(rng.uniform(0.05, 3.0))
        else:
            target, delay = begin + rng.randint(1, 4), rng.uniform(0, 0.3)
            while proc.poll() is None and not expired() and last_step(run_dir) < target:
                time.sleep(0.002)
            time.sleep(delay)
        if proc.poll() is not None:
            return "finished"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        out.write("\n===== SIGKILL\n")
    return "killed-in-write" if set(checkpoint_temps(run_dir)) - stale else "killed"


def compare(reference: Path, resumed: Path) -> list[str]:
    """Differences between two finished runs (empty when identical)."""
    from vitok.train.checkpoint import list_checkpoints, load_checkpoint

    problems = []
    for name in ("model/model.safetensors", "model-ema/model.safetensors", "model/config.json"):
        a, b = reference / name, resumed / name
        if not (a.is_file() and b.is_file()):
            problems.append(f"{name}: missing in {'the reference' if not a.is_file() else 'the resumed run'}")
        elif a.read_bytes() != b.read_bytes():
            problems.append(f"{name}: the bytes differ")
    ref_ckpts, res_ckpts = list_checkpoints(reference), list_checkpoints(resumed)
    if not ref_ckpts or not res_ckpts or ref_ckpts[-1][0] != res_ckpts[-1][0]:
        problems.append(f"final checkpoints differ: {ref_ckpts[-1:]} vs {res_ckpts[-1:]}")
    else:
        a, b = load_checkpoint(ref_ckpts[-1][1]), load_checkpoint(res_ckpts[-1][1])
        for part in ("model", "ema", "disc"):
            for key, value in a[part].items():
                if not torch.equal(value, b[part][key]):
                    problems.append(f"checkpoint {part}.{key} differs")
        for part in ("opt", "d_opt"):
            for index, state in a[part]["state"].items():
                for key, value in state.items():
                    other = b[part]["state"][index][key]
                    if isinstance(value, torch.Tensor) and not torch.equal(value, other):
                        problems.append(f"checkpoint {part} state {index}.{key} differs")
        if not torch.equal(a["rng"], b["rng"]):
            problems.append("checkpoint RNG state differs")

    def rows(run: Path) -> list[dict]:
        return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]

    ref_rows, res_rows = rows(reference), rows(resumed)
    steps = [r["step"] for r in res_rows]
    if steps != [r["step"] for r in ref_rows]:
        problems.append(f"metrics.jsonl steps differ: {steps} vs {[r['step'] for r in ref_rows]}")
    for a, b in zip(ref_rows, res_rows):
        for key in ("loss", "rec", "kl", "grad_norm", "lr"):
            if key in a and a[key] != b.get(key):
                problems.append(f"metrics.jsonl step {a['step']} {key}: {a[key]} vs {b.get(key)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs during the interrupted run")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: 4 per kill, >= 24)")
    parser.add_argument("--ckpt-every", type=int, default=2, help="checkpoint interval (steps)")
    parser.add_argument("--data", type=Path, default=None, help="image folder (default: generated PNGs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill schedule")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    args.steps = args.steps or max(24, 4 * args.kills)
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="vitok-kill-"))
    started = time.perf_counter()
    try:
        data = args.data or make_data(root / "data")
        reference, resumed = root / "reference", root / "resumed"
        ref_config = write_config(root / "reference.yaml", data, reference, args.steps, args.ckpt_every)
        res_config = write_config(root / "resumed.yaml", data, resumed, args.steps, args.ckpt_every)
        span = run_to_end(ref_config, root / "reference.log")
        print(f"reference run: {args.steps} steps in {span:.1f} s")
        outcomes: dict[str, int] = {"killed": 0, "killed-in-write": 0, "finished": 0}
        while outcomes["killed"] + outcomes["killed-in-write"] < args.kills:
            kills = outcomes["killed"] + outcomes["killed-in-write"]
            outcome = kill_once(res_config, resumed, root / "resumed.log", rng, kills % 2 == 1, 4 * span)
            outcomes[outcome] += 1
            if outcome == "finished":
                print(f"the run finished before kill {kills + 1} (use more --steps); stopping here")
                break
            found = [p.name for p in sorted(resumed.glob("ckpt-*.pt"))] if resumed.is_dir() else []
            print(f"kill {kills + 1:2d} ({'in a checkpoint write' if outcome == 'killed-in-write' else 'elsewhere'}): "
                  f"checkpoints left {found}", flush=True)
        kills = outcomes["killed"] + outcomes["killed-in-write"]
        run_to_end(res_config, root / "resumed.log")
        problems = compare(reference, resumed)
        stale = checkpoint_temps(resumed)
        if stale:
            problems.append(f"temp files left after the final run: {[p.name for p in stale]}")
        print(f"{kills} kills ({outcomes['killed-in-write']} inside a checkpoint write), "
              f"{time.perf_counter() - started:.0f} s")
        if problems:
            print("NOT identical:\n  " + "\n  ".join(problems[:20]))
            return 1
        print("identical: exported safetensors byte for byte, checkpoint tensors, metrics.jsonl rows")
        return 0
    finally:
        if args.keep:
            print(f"scratch kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
