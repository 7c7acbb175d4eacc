"""Measuring: ``eval`` (quality with the paper's protocol) and ``bench`` (speed, memory, FLOP use)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from vitok.cli.argtypes import positive_int
from vitok.cli.common import input_frames, load_model
from vitok.cli.options import (
    add_baseline,
    add_batch_size,
    add_device,
    add_input_kind,
    add_inputs,
    add_kind,
    add_model,
    add_out,
    add_precision,
    add_size,
)
from vitok.files import check_output_folder
from vitok.text import model_label, plural


def register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="PSNR / SSIM / LPIPS / rFID / rFVD with the paper's protocol",
                       description="Evaluate a tokenizer (and/or the SD-VAE baseline) on image or video files: "
                                   "resize the shorter side + centre-crop; videos as --frames clips. Writes "
                                   "results.json and comparison.png into --out (with --baseline: --out/model and "
                                   "--out/baseline).")
    add_inputs(p, "image or video files or folders (one kind at a time)", old="--data")
    add_model(p, "shipped", what="tokenizer, or a diffusers AutoencoderKL folder ('none' with --baseline: "
                                   "only the baseline)")
    add_out(p, "out/eval")
    add_kind(p)
    add_size(p, 256)
    p.add_argument("--frames", type=positive_int, default=16, help="frames per video clip (default 16)")
    p.add_argument("--metrics", default="psnr,ssim,lpips,rfid,grid",
                   help="comma list of psnr, ssim, lpips, lpips-vgg, rfid, rfvd, grid (default: "
                        "psnr,ssim,lpips,rfid,grid)")
    p.add_argument("--max-samples", type=positive_int, default=None, help="evaluate only the first N files")
    add_batch_size(p, 8)
    add_precision(p)
    add_device(p)
    add_baseline(p)
    p.add_argument("--cache", default=None, help="metric weights cache (default $VITOK_CACHE or ~/.cache/vitok)")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from vitok.data.datasets import describe_skipped
    from vitok.evaluate import EvalConfig, evaluate, model_info

    use_model = args.model.lower() != "none"
    if not use_model and args.baseline is None:
        raise ValueError("--model none needs --baseline: there is nothing to evaluate")
    if not args.inputs:
        raise ValueError("no input given: name image or video files or folders")
    labels = (["model"] if use_model else []) + (["baseline"] if args.baseline else [])
    base = EvalConfig(data=[str(p) for p in args.inputs], kind=args.kind, size=args.size, frames=args.frames,
                      metrics=[m for m in args.metrics.split(",") if m.strip()], max_samples=args.max_samples,
                      batch_size=args.batch_size, device=args.device, precision=args.precision,
                      compile=args.compile,
                      cache=args.cache, out_dir=str(args.out))
    kind = base.check()  # data, kinds and metrics, before any model loads
    configs = {label: dataclasses.replace(base, out_dir=str(args.out / label)) if len(labels) > 1 else base
               for label in labels}
    if args.baseline_weights and not args.baseline:
        raise ValueError("--baseline-weights needs --baseline sd-vae")
    if args.baseline and not args.baseline_weights:  # bench may time random weights; scores of them mean nothing
        raise ValueError("--baseline sd-vae needs --baseline-weights DIR (a local diffusers AutoencoderKL folder, "
                         "e.g. benchmarks/baselines/autoencoder-kl): a VAE with random weights has no scores")
    if args.baseline_weights and not (Path(args.baseline_weights) / "config.json").is_file():
        raise FileNotFoundError(f"--baseline-weights {args.baseline_weights} is not a local diffusers model directory "
                                "(no config.json)")
    check_output_folder(args.out)
    for label, cfg in configs.items():
        if label == "model":
            model = load_model(args.model, args.device, conv_vae=True)
        else:
            from vitok.models.baselines import load_sd_vae

            model = load_sd_vae(args.baseline_weights, args.device)
        crop = cfg.crop
        results = evaluate(model, cfg, model_info(model, (args.frames if kind == "video" else 1, *crop)))
        if results["skipped_files"]:
            print(describe_skipped(results["skipped_files"]), file=sys.stderr)
        few = [m for m in ("rfid", "rfvd") if m in results["metrics"] and results["samples"] < FRECHET_MIN_SAMPLES]
        if few:  # Frechet distances carry a bias that shrinks with the sample count (Chong & Forsyth 2020)
            print(f"warning: {' and '.join(few)} over {plural(results['samples'], kind)}: a Frechet distance over "
                  f"fewer than {FRECHET_MIN_SAMPLES} samples is biased upwards, so compare it only with runs "
                  "on the same files (arXiv 2501.09755 evaluates on the 50,000 ImageNet val images)",
                  file=sys.stderr)
        if results["padded_clips"]:
            print(f"warning: {describe_padded(results['padded_clips'], args.frames)}", file=sys.stderr)
        scores = ", ".join(f"{k} {v:.4f}" for k, v in results["metrics"].items())
        print(f"{results['model']}: {plural(results['samples'], kind)}, {results['gmacs']:.1f} GMACs, "
              f"E {results['E']}: {scores} -> {Path(cfg.out_dir) / 'results.json'}")
    return 0


FRECHET_MIN_SAMPLES = 1000  # below this, rFID / rFVD values are comparable only between runs on the same files


def describe_padded(names: list[str], frames: int, shown: int = 3) -> str:
    """'2 clips shorter than 16 frames were padded with their last frame: a.mp4, b.mp4 (...)'."""
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    return (f"{plural(len(names), 'clip')} shorter than {frames} frames {'was' if len(names) == 1 else 'were'} "
            f"padded with {'its' if len(names) == 1 else 'their'} last frame and scored as {frames} frames: "
            f"{listed} (--frames N scores the first N)")


def register_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="encode/decode speed, memory and FLOP efficiency (optionally vs SD-VAE)",
                       description="Latency, throughput, peak memory and achieved GFLOP/s (as a fraction of "
                                   "this machine's measured matmul peak) of encode and decode, per precision.")
    add_model(p, "shipped")
    add_size(p, 256, many=True)
    add_input_kind(p, "time")
    p.add_argument("--frames", type=positive_int, default=None, help="clip length for video (default: the model's)")
    add_batch_size(p, 1, old=True)
    p.add_argument("--repeats", type=positive_int, default=3, help="timed repeats per measurement (default 3)")
    add_precision(p, many=True)
    add_baseline(p, old=True)
    add_device(p)
    p.set_defaults(func=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    import torch

    from vitok.bench import run_bench
    from vitok.metrics.flops import count_macs

    if args.baseline_weights and not args.baseline:  # as in eval: never silently ignored
        raise ValueError("--baseline-weights needs --baseline sd-vae")
    device = torch.device(args.device)
    model = load_model(args.model, args.device)
    frames = input_frames(args.kind, args.frames, model.config, args.model, "times")
    shapes = [(frames, h, w) for h, w in args.size]
    baseline = None
    if args.baseline == "sd-vae":
        from vitok.models.baselines import load_sd_vae

        vae = load_sd_vae(args.baseline_weights, device)
        baseline = (vae, "sd-vae", vae.gmacs)
    run_bench(model, model_label(args.model, model.config.name), lambda shape: count_macs(model.config, shape).gmacs,
              shapes, args.precision, args.batch_size, args.repeats, device, baseline, compile=args.compile)
    return 0
