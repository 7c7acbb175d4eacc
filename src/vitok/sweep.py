"""The scaling study as a tool (arXiv 2501.09755: the E law and the encoder / decoder
scaling experiments; docs/sweeps): ``vitok sweep SPEC.yaml`` and ``vitok sweep report DIR``.

A sweep spec names a base training config, overrides for every run, and a grid of ``key: [values]``
(patch size x latent channels for the E study; encoder x decoder size for the scaling study; loss
weights...). Each grid point is an ordinary ``vitok train`` run in its own directory: a finished run
(``model/`` exported) is skipped, an interrupted one resumes from its checkpoint. ``jobs.sh`` lists
one command per run, to launch each as its own torchrun job on a cluster.

The report evaluates every finished run with the evaluation protocol, writes ``results.csv`` /
``results.md`` and plots: metric vs log E with a fitted line and R^2 (one colour per patch size),
metric vs encoder and decoder size, metric vs GMACs.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vitok.checks import Rule


@dataclass
class SweepEval:
    """How the report evaluates each run: ``size`` is one evaluation size or a list of them (each
    size's metrics get a ``_<size>`` suffix in the table when there are several)."""

    data: list[str] = field(default_factory=list)
    size: int | list[int] = 128
    frames: int = 16
    metrics: list[str] = field(default_factory=lambda: ["psnr", "ssim", "lpips", "rfid"])
    max_samples: int | None = None
    batch_size: int = 8

    ranges: ClassVar[dict[str, Rule]] = {
        "size": (lambda v: all(1 <= s <= 8192 for s in (v if isinstance(v, list) else [v])) and v != [],
                 "an int or a non-empty list of ints in [1, 8192]"),
        "frames": (lambda v: 1 <= v <= 4096, "in [1, 4096]"),
        "max_samples": (lambda v: v is None or v >= 1, "null (all) or >= 1"),
        "batch_size": (lambda v: v >= 1, ">= 1"),
    }


@dataclass
class SweepSpec:
    """``base``: a ``vitok train`` config; ``overrides``: applied to every run; ``grid``: key ->
    values, expanded as a Cartesian product; ``variants``: named lists of overrides (an ablation:
    each variant is crossed with the grid, or run alone when there is no grid); ``out_dir``: one
    sub-directory per run."""

    base: str
    grid: dict[str, list[Any]] = field(default_factory=dict)
    variants: dict[str, list[str]] = field(default_factory=dict)
    out_dir: str = "runs/sweep"
    overrides: list[str] = field(default_factory=list)
    eval: SweepEval = field(default_factory=SweepEval)
    nproc: int = 1  # processes per run in jobs.sh (torchrun)


def load_spec(path: str | Path) -> SweepSpec:
    """A checked :class:`SweepSpec`; its ``base`` config and ``eval.data`` resolve against the spec
    file's folder (``out_dir`` against the current directory, like a config's run directory)."""
    from vitok.train.schema import from_dict, read_yaml

    spec = from_dict(SweepSpec, read_yaml(path, relative_to_file=("base", "eval.data")))
    if not spec.grid and not spec.variants:
        raise ValueError("a sweep needs a grid (key: [values]) or variants (name: [overrides])")
    if any(not isinstance(v, list) or not v for v in spec.grid.values()):
        raise ValueError("sweep grid must map each key to a non-empty list of values")
    for name, overrides in spec.variants.items():
        if not isinstance(overrides, list) or any("=" not in str(o) for o in overrides):
            raise ValueError(f"sweep variant {name!r} must be a list of section.key=value overrides")
    # a bad eval section is found now, not after the training (its data may still be left out: a sweep that
    # only trains; the report then asks for it)
    eval_configs({**spec.eval.__dict__, "data": spec.eval.data or ["<eval.data>"]}, out=Path(spec.out_dir))
    return spec


def eval_configs(section: dict[str, Any], out: Path, device: str = "cpu") -> list[Any]:
    """The :class:`~vitok.evaluate.EvalConfig` of each evaluation size of a spec's ``eval``
    section (a dict), writing under ``out``; ``ValueError`` "sweep eval: ..." for an empty
    ``data``, an unknown metric or another bad value."""
    from vitok.evaluate import EvalConfig

    sizes = section["size"] if isinstance(section["size"], list) else [section["size"]]
    try:
        return [EvalConfig(data=list(section["data"]), kind="auto", size=size, frames=section["frames"],
                           metrics=list(section["metrics"]), max_samples=section["max_samples"],
                           batch_size=section["batch_size"], device=device,
                           out_dir=str(out / ("eval" if len(sizes) == 1 else f"eval-{size}")))
                for size in sizes]
    except ValueError as err:
        raise ValueError(f"sweep eval: {err}") from None


def slug(assignments: dict[str, Any]) -> str:
    """A readable, file-system-safe run name, e.g. ``preset=Ti-Ti_8,latent_channels=16``."""
    parts = [f"{key.split('.')[-1]}={value}" for key, value in assignments.items()]
    return re.sub(r"[^A-Za-z0-9=,._-]", "_", ",".join(parts))


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every grid point: ``{"name", "dir", "assignments", "overrides"}``, in grid order."""
    keys = list(spec.grid)
    runs = []
    for variant, extra in (spec.variants or {"": []}).items():
        for values in itertools.product(*(spec.grid[k] for k in keys)):
            assignments = dict(zip(keys, values))
            name = ",".join(part for part in (slug({"variant": variant}) if variant else "", slug(assignments))
                            if part)
            run_dir = Path(spec.out_dir) / name
            overrides = [*spec.overrides, *extra, *(f"{k}={json.dumps(v)}" for k, v in assignments.items()),
                         f"run.out_dir={run_dir}"]
            runs.append({"name": name, "dir": str(run_dir), "variant": variant, "assignments": assignments,
                         "overrides": overrides})
    return runs


def is_finished(run_dir: str | Path) -> bool:
    """A run has exported its model: a vitok directory or a diffusers one (a baseline)."""
    model = Path(run_dir) / "model"
    return (model / "model.safetensors").is_file() or (model / "diffusion_pytorch_model.safetensors").is_file()


def load_trained(directory: str | Path) -> Any:
    """The model a run exported: a :class:`ViTok`, or a diffusers AutoencoderKL baseline."""
    from vitok.models.vitok import ViTok

    if (Path(directory) / "diffusion_pytorch_model.safetensors").is_file():
        from vitok.models.baselines import build_autoencoder_kl

        return build_autoencoder_kl({}, str(directory)).eval()
    return ViTok.from_pretrained(directory)


def write_plan(spec: SweepSpec, runs: list[dict[str, Any]]) -> Path:
    """``runs.json`` and ``jobs.sh`` (one command per run) in the sweep directory."""
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs.json").write_text(json.dumps({"base": spec.base, "eval": spec.eval.__dict__, "runs": runs}, indent=2))
    launcher = "vitok" if spec.nproc == 1 else f"torchrun --nproc_per_node {spec.nproc} -m vitok"
    lines = ["#!/usr/bin/env bash", "# one run per line; each resumes if interrupted"]
    lines += [f"{launcher} train {shlex.quote(spec.base)} " + " ".join(shlex.quote(o) for o in r["overrides"])
              for r in runs]
    (out / "jobs.sh").write_text("\n".join(lines) + "\n")
    return out


def run_sweep(spec: SweepSpec, plan_only: bool = False, log: Any = print,
              shard: tuple[int, int] = (0, 1)) -> list[dict[str, Any]]:
    """Write the plan, then train every unfinished run one after another (unless ``plan_only``);
    ``shard=(i, n)`` trains only runs i, i+n, ... so that n processes can share one sweep."""
    from vitok.train import load_config, train

    runs = expand(spec)
    missing = [d for d in spec.eval.data if "*" not in d and not Path(d).exists()]
    if missing:  # the report's data, checked before hours of training
        raise FileNotFoundError(f"sweep eval.data: {missing[0]} does not exist")
    for run in runs:  # every run's config is checked before anything is written or trained
        try:
            load_config(spec.base, run["overrides"])
        except ValueError as err:
            raise ValueError(f"sweep run {run['name']}: {err}") from None
    write_plan(spec, runs)
    for i, run in enumerate(runs):
        if i % shard[1] != shard[0]:
            continue
        if is_finished(run["dir"]):
            log(f"[{i + 1}/{len(runs)}] {run['name']}: finished, skipped")
            continue
        if plan_only:
            continue
        log(f"[{i + 1}/{len(runs)}] {run['name']}: training")
        train(load_config(spec.base, run["overrides"]))
    return runs


# ---------------------------------------------------------------------- report
def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares y = a x + b; returns (a, b, R^2)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    a, b = np.polyfit(x, y, 1)
    residual = np.sum((y - (a * x + b)) ** 2)
    total = np.sum((y - y.mean()) ** 2)
    return float(a), float(b), float(1 - residual / total) if total > 0 else 1.0


def training_speed(run_dir: str | Path) -> dict[str, float]:
    """Median logged steps/s of a run and the CPU hours it implies (from ``metrics.jsonl``)."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    speeds = [r["steps_per_s"] for r in rows if r.get("steps_per_s", 0) > 0]
    if not speeds:
        return {}
    median = float(np.median(speeds))
    return {"steps_per_s": median, "hours": max(r["step"] for r in rows) / median / 3600}


def _describe(config: dict[str, Any]) -> dict[str, Any]:
    """The architecture columns of a run's exported ``config.json`` (None for a baseline)."""
    if "encoder" not in config:  # a diffusers AutoencoderKL
        return {"encoder_width": None, "encoder_depth": None, "decoder_width": None, "decoder_depth": None,
                "patch": 2 ** (len(config["block_out_channels"]) - 1), "tubelet": 1,
                "channels": config["latent_channels"], "head": "conv-vae"}
    return {"encoder_width": config["encoder"]["width"], "encoder_depth": config["encoder"]["depth"],
            "decoder_width": config["decoder"]["width"], "decoder_depth": config["decoder"]["depth"],
            "patch": config["patch_size"], "tubelet": config["tubelet_size"],
            "channels": config["latent_channels"], "head": config.get("head", "linear")}


def evaluate_runs(sweep_dir: Path, force: bool = False, log: Any = print, device: str = "cpu") -> list[dict[str, Any]]:
    """Evaluate every finished run at every eval size (results cached in ``<run>/eval/`` for one
    size, ``<run>/eval-<size>/`` for several, beside ``protocol.json``: the evaluation they were
    made with; a cache made another way, or by an older version, is evaluated again); one row per
    run. Runs are found in ``sweep_dir`` whatever folder the sweep was planned from."""
    from vitok.evaluate import evaluate, model_info

    plan = json.loads((sweep_dir / "runs.json").read_text())
    if not plan["eval"]["data"]:
        raise ValueError(f"{sweep_dir / 'runs.json'}: the sweep's eval.data is empty; set it in the spec and plan "
                         "again (`vitok sweep SPEC.yaml --plan-only`) to report")
    rows = []
    for run in plan["runs"]:
        run_dir = sweep_dir / run["name"]
        if not is_finished(run_dir):
            log(f"{run['name']}: not finished, left out")
            continue
        model = None
        config = json.loads((run_dir / "model" / "config.json").read_text())
        row: dict[str, Any] = {"run": run["name"], **_describe(config)}
        configs = eval_configs(plan["eval"], run_dir, device)
        for cfg in configs:
            results_path = Path(cfg.out_dir) / "results.json"
            protocol = {"data": cfg.data, "size": cfg.size, "frames": cfg.frames, "metrics": cfg.metrics,
                        "max_samples": cfg.max_samples}
            protocol_path = Path(cfg.out_dir) / "protocol.json"
            stale = not protocol_path.is_file() or json.loads(protocol_path.read_text()) != protocol
            if force or stale or not results_path.is_file():
                model = model or load_trained(run_dir / "model")
                is_video = getattr(getattr(model, "config", None), "is_video", False)
                kind = "video" if is_video and cfg.frames > 1 else "image"
                shape = (cfg.frames if kind == "video" else 1, cfg.size, cfg.size)
                evaluate(model, cfg, model_info(model, shape))
                protocol_path.write_text(json.dumps(protocol, indent=1))
            results = json.loads(results_path.read_text())
            suffix = "" if len(configs) == 1 else f"_{cfg.size}"
            row.update({f"E{suffix}": results["E"], f"gmacs{suffix}": results["gmacs"],
                        "params_M": results["params_M"],
                        **{f"{k}{suffix}": v for k, v in results["metrics"].items()}})
        rows.append({**row, **training_speed(run_dir)})
    return rows


def tower_params(width: int, depth: int) -> float:
    """Approximate parameters of one tower in millions (12 width^2 per block)."""
    return 12 * width * width * depth / 1e6


def write_tables(rows: list[dict[str, Any]], out: Path) -> None:
    if not rows:
        raise ValueError("no finished runs to report")
    columns = list(dict.fromkeys(k for r in rows for k in r))  # union, first-seen order
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")


def plot_report(rows: list[dict[str, Any]], metrics: list[str], out: Path) -> dict[str, dict[str, float]]:
    """PNG plots; returns the log-E fits {metric: {slope, intercept, r2}}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fits = {}
    e_key = "E" if "E" in rows[0] else next(k for k in rows[0] if k.startswith("E_"))
    gmacs_key = e_key.replace("E", "gmacs")
    for metric in metrics:
        x = np.log2([r[e_key] for r in rows])
        y = np.array([r[metric] for r in rows])
        fig, axes = plt.subplots(1, 4, figsize=(18, 4))
        for patch in sorted({r["patch"] for r in rows}):
            sel = [i for i, r in enumerate(rows) if r["patch"] == patch]
            axes[0].scatter(x[sel], y[sel], label=f"p={patch}")
        if len(set(x)) > 1:
            a, b, r2 = fit_line(x, y)
            fits[metric] = {"slope": a, "intercept": b, "r2": r2}
            grid = np.linspace(x.min(), x.max(), 20)
            axes[0].plot(grid, a * grid + b, "k--", label=f"fit R^2={r2:.2f}")
        axes[0].set(xlabel="log2 E", ylabel=metric, title=f"{metric} vs E")
        axes[0].legend()
        towers = [i for i, r in enumerate(rows) if r["encoder_width"] is not None]  # baselines have none
        for ax, key in ((axes[1], "encoder"), (axes[2], "decoder")):
            sizes = [tower_params(rows[i][f"{key}_width"], rows[i][f"{key}_depth"]) for i in towers]
            ax.scatter(sizes, y[towers])
            ax.set(xlabel=f"{key} params (M)", ylabel=metric, title=f"{metric} vs {key} size")
        axes[3].scatter([r[gmacs_key] for r in rows], y)
        axes[3].set(xlabel="GMACs", ylabel=metric, title=f"{metric} vs GMACs")
        fig.tight_layout()
        fig.savefig(out / f"{metric}.png", dpi=80)
        plt.close(fig)
    (out / "fits.json").write_text(json.dumps(fits, indent=2))
    return fits


def report(sweep_dir: str | Path, force: bool = False, log: Any = print,
           device: str = "cpu") -> dict[str, dict[str, float]]:
    """Evaluate (on ``device``), tabulate and plot a sweep; returns the log-E fits."""
    sweep_dir = Path(sweep_dir)
    rows = evaluate_runs(sweep_dir, force, log, device)
    out = sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    write_tables(rows, out)
    known = ("psnr", "ssim", "lpips", "lpips-vgg", "rfid", "rfvd", "grid")
    metrics = [k for k in rows[0] if re.sub(r"_\d+$", "", k) in known
               and all(k in r and isinstance(r[k], float) and math.isfinite(r[k]) for r in rows)]
    fits = plot_report(rows, metrics, out)
    for metric, fit in fits.items():
        log(f"{metric}: {fit['slope']:+.4f} per doubling of E, R^2 {fit['r2']:.3f}")
    return fits
