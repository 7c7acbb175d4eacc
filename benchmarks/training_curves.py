"""Validation curves of training runs, side by side: every kept checkpoint of each run evaluated with
the evaluation protocol (``vitok eval``: shorter side resized, centre crop) on the val photos.

    python benchmarks/training_curves.py RUN_DIR[::CKPT_DIR] ... --images ../shared/data/images/val \
        --size 128 --out docs/quality/curves

A run folder holds the ``config.yaml`` its training wrote; its checkpoints are ``ckpt-*.pt`` in the run
folder or in ``CKPT_DIR`` (a folder where every checkpoint was kept, e.g. hard links made while the
run pruned its own to ``run.keep_last``). Works for vitok runs and the AutoencoderKL baseline alike
(``model.kind``). Writes ``curves.json`` (per run: step -> metrics), ``curves.md`` and one plot per
metric, and reuses the results of checkpoints it has already evaluated (the same checkpoint file:
``checkpoint.json`` beside each result; ``--force`` redoes them). The weights are the EMA averages
where a checkpoint has them (stage 2, as exported and shipped), else the trained ones (stage 1).

``--train-images DIR`` also measures PSNR on the training photos, with the same protocol:
``train_psnr`` and the generalisation gap ``gap = train_psnr - psnr`` (dB), which grows when a
model fits its training photos better than unseen ones. ``--max-samples N`` evaluates the first N
photos of each folder. A cached result is reused only if it was measured on the same folder, size
and number of photos.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from vitok.data import list_files
from vitok.evaluate import EvalConfig, evaluate, model_info
from vitok.train.checkpoint import list_checkpoints, load_checkpoint
from vitok.train.config import TrainConfig
from vitok.train.ema import load_averages
from vitok.train.schema import from_dict, read_yaml
from vitok.train.trainer import build_model

METRICS = ["psnr", "ssim", "lpips", "grid"]


def parse_run(spec: str) -> tuple[Path, Path]:
    """``RUN_DIR`` or ``RUN_DIR::CKPT_DIR`` -> (run folder, checkpoint folder)."""
    run, _, kept = spec.partition("::")
    return Path(run), Path(kept or run)


def model_at(run_dir: Path, checkpoint: Path) -> torch.nn.Module:
    """The run's model (from its ``config.yaml``) with a checkpoint's weights, in eval mode: the
    EMA averages where the checkpoint has them (stage 2: what is exported and shipped), else the
    trained weights. A run that took its architecture from ``model.init_from`` (a stage-2 conv VAE
    names none of its own) is built from that folder again; ``FileNotFoundError`` if it is gone."""
    cfg = from_dict(TrainConfig, read_yaml(run_dir / "config.yaml"))
    if cfg.model.init_from is not None and not Path(cfg.model.init_from).exists():
        if cfg.model.kind == "autoencoder-kl" and not cfg.model.autoencoder_kl:
            raise FileNotFoundError(f"{run_dir}: its architecture comes from model.init_from {cfg.model.init_from}, "
                                    "which is gone")
        cfg.model.init_from = None  # the preset and overrides give the architecture; the weights come below
    model = build_model(cfg)
    state = load_checkpoint(checkpoint)
    model.load_state_dict(state["model"])
    if state.get("ema"):
        load_averages(model, state["ema"])
    return model.eval()


def checkpoint_identity(checkpoint: Path) -> dict[str, object]:
    """What a cached result was measured from: the checkpoint's path, size and modification time."""
    stat = checkpoint.stat()
    return {"checkpoint": str(checkpoint.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cached(results_path: Path, images: Path, size: int, photos: int, metrics: list[str],
           checkpoint: Path) -> dict[str, float] | None:
    """The metrics of an earlier ``results.json`` if it was measured the same way (the same folder,
    size, number of photos and at least these metrics) from the same checkpoint file (its
    ``checkpoint.json`` beside it: a run restarted under the same name writes new files), else None."""
    identity = results_path.parent / "checkpoint.json"
    if not results_path.is_file() or not identity.is_file():
        return None
    if json.loads(identity.read_text()) != checkpoint_identity(checkpoint):
        return None
    results = json.loads(results_path.read_text())
    same = (results.get("data") == [str(images)] and results.get("size") == size
            and results.get("samples", 0) + len(results.get("skipped_files", [])) == photos
            and set(metrics) <= set(results.get("metrics", {})))
    return results["metrics"] if same else None


def measure(model: torch.nn.Module, images: Path, metrics: list[str], out: Path, size: int,
            max_samples: int | None, cache: str | None) -> dict[str, float]:
    """A model's metrics on (the first ``max_samples`` of) one photo folder; written to ``out``."""
    cfg = EvalConfig(data=[str(images)], kind="image", size=size, metrics=metrics, out_dir=str(out),
                     max_samples=max_samples, cache=cache)
    return evaluate(model, cfg, model_info(model, (1, size, size)))["metrics"]


def run_curve(run_dir: Path, kept: Path, args: argparse.Namespace) -> dict[int, dict[str, float]]:
    """Step -> metrics for every checkpoint of one run (cached in ``out/<run>/step-N``, and
    ``step-N/train`` for ``--train-images``)."""
    folders = [(args.images, METRICS, "")]  # (photos, metrics, subfolder of step-N)
    if args.train_images is not None:
        folders.append((args.train_images, ["psnr"], "train"))
    photos = {}  # how many photos of each folder are evaluated (listed once per run, not per checkpoint)
    for images, _, _ in folders:
        count = len(list_files([images], "image"))
        photos[images] = min(count, args.max_samples) if args.max_samples else count
    curve = {}
    for step, path in list_checkpoints(kept):
        out = args.out / run_dir.name / f"step-{step}"
        model, results = None, []
        for images, metrics, sub in folders:
            found = None
            if not args.force:
                found = cached(out / sub / "results.json", images, args.size, photos[images], metrics, path)
            if found is None:
                model = model_at(run_dir, path) if model is None else model
                found = measure(model, images, metrics, out / sub, args.size, args.max_samples, args.cache)
                (out / sub / "checkpoint.json").write_text(json.dumps(checkpoint_identity(path)))
            results.append(found)
        curve[step] = dict(results[0])
        if len(results) > 1:
            curve[step].update(train_psnr=results[1]["psnr"], gap=results[1]["psnr"] - results[0]["psnr"])
        print(f"{run_dir.name} step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in curve[step].items()))
    return curve


def columns(curves: dict[str, dict[int, dict[str, float]]]) -> list[str]:
    """The metrics every point has, in :data:`METRICS` order, then ``train_psnr`` and ``gap``."""
    points = [m for curve in curves.values() for m in curve.values()]
    return [k for k in [*METRICS, "train_psnr", "gap"] if points and all(k in m for m in points)]


def markdown(curves: dict[str, dict[int, dict[str, float]]]) -> str:
    names = columns(curves)
    lines = ["| run | step | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 2)]
    for name, curve in curves.items():
        for step, metrics in sorted(curve.items()):
            lines.append(f"| {name} | {step} | " + " | ".join(f"{metrics[m]:.4g}" for m in names) + " |")
    return "\n".join(lines) + "\n"


def plot(curves: dict[str, dict[int, dict[str, float]]], out: Path, size: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for metric in columns(curves):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for name, curve in curves.items():
            steps = sorted(curve)
            ax.plot(steps, [curve[s][metric] for s in steps], marker="o", label=name)
        ax.set_xlabel("training step")
        split = {"gap": "train - val, dB", "train_psnr": "train"}.get(metric, "val")
        ax.set_ylabel(f"{metric} ({size} px, {split})")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / f"{metric}_{size}.png", dpi=110)
        plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="RUN_DIR or RUN_DIR::CKPT_DIR")
    parser.add_argument("--images", type=Path, required=True, help="val photo folder")
    parser.add_argument("--train-images", type=Path, default=None,
                        help="training photo folder: also report train_psnr and the gap to val")
    parser.add_argument("--max-samples", type=int, default=None, help="evaluate only the first N photos of each folder")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("out/training_curves"))
    parser.add_argument("--cache", default=None, help="metric-weight cache folder (default: vitok's)")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    curves = {}
    for spec in args.runs:
        run_dir, kept = parse_run(spec)
        curves[run_dir.name] = run_curve(run_dir, kept, args)
    (args.out / "curves.json").write_text(json.dumps({k: {str(s): m for s, m in v.items()}
                                                      for k, v in curves.items()}, indent=2))
    (args.out / "curves.md").write_text(markdown(curves))
    plot(curves, args.out, args.size)
    print(markdown(curves))


if __name__ == "__main__":
    main()
