"""Measuring: ``eval`` (quality with the paper's protocol) and ``bench`` (speed, memory, FLOP use)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from vitok.cli.argtypes import positive_int
from vitok.cli.common import load_model


def register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="PSNR / SSIM / LPIPS / rFID / rFVD with the paper's protocol",
                       description="Evaluate a tokenizer (and/or the SD-VAE baseline) on a folder of images or "
                                   "videos: resize shorter side + center crop; videos as --frames clips. Writes "
                                   "results.json and comparison.png into --out.")
    p.add_argument("--model", default=None, help="saved model directory, shipped name or preset")
    p.add_argument("--data", nargs="+", required=True, help="image / video folders or files")
    p.add_argument("--kind", choices=["auto", "image", "video"], default="auto")
    p.add_argument("--size", type=positive_int, default=256, help="center-crop size (default 256)")
    p.add_argument("--frames", type=positive_int, default=16, help="frames per video clip (default 16)")
    p.add_argument("--metrics", default="psnr,ssim,lpips,rfid",
                   help="comma list of psnr, ssim, lpips, lpips_vgg, rfid, rfvd")
    p.add_argument("--max-samples", type=positive_int, default=None, help="evaluate only the first N files")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--out", type=Path, default=Path("out/eval"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="run the model under bf16 autocast")
    p.add_argument("--baseline", choices=["sd-vae"], default=None, help="also evaluate a diffusers AutoencoderKL")
    p.add_argument("--baseline-weights", default=None, help="local diffusers AutoencoderKL directory")
    p.add_argument("--cache", default=None, help="metric weights cache (default $VITOK_CACHE or ~/.cache/vitok)")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from vitok.data.datasets import describe_skipped
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
        if results["skipped_files"]:
            print(describe_skipped(results["skipped_files"]), file=sys.stderr)
        scores = ", ".join(f"{k} {v:.4f}" for k, v in results["metrics"].items())
        print(f"{results['model']}: {results['samples']} {kind}s, {results['gmacs']:.1f} GMACs, E {results['E']}: "
              f"{scores} -> {out / 'results.json'}")
    return 0


def register_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="encode/decode speed, memory and FLOP efficiency (optionally vs SD-VAE)",
                       description="Latency, throughput, peak memory and achieved GFLOP/s (as a fraction of "
                                   "this machine's measured matmul peak) of encode and decode, fp32 and bf16.")
    p.add_argument("--model", default="S-B/16", help="preset, saved model directory or shipped name")
    p.add_argument("--sizes", type=positive_int, nargs="+", default=[256], help="square input sizes")
    p.add_argument("--frames", type=positive_int, default=None, help="clip length for video (default: the model's)")
    p.add_argument("--batch", type=positive_int, default=1)
    p.add_argument("--repeats", type=positive_int, default=3)
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
