"""Generation: ``cache-latents``, ``train-dit``, ``sample``, ``eval-gen`` (a DiT on tokenizer latents)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from vitok.cli.argtypes import finite_float, nonnegative_int, positive_int, unit_float


def register_cache_latents(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache-latents", help="encode a dataset once into latent shards for DiT training",
                       description="Labels come from sub-folder names (or --labels FILE: JSON {relative path: "
                                   "class}); shards are safetensors; a rerun skips finished shards.")
    p.add_argument("--model", required=True, help="tokenizer: saved directory or shipped name")
    p.add_argument("--data", type=Path, required=True, help="image/video folder (class sub-folders)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--kind", choices=["image", "video"], default="image")
    p.add_argument("--size", type=positive_int, default=256)
    p.add_argument("--frames", type=positive_int, default=16)
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--shard-size", type=positive_int, default=1024)
    p.add_argument("--flip", action="store_true", help="also store latents of horizontally flipped inputs")
    p.add_argument("--labels", type=Path, default=None)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run_cache_latents)


def run_cache_latents(args: argparse.Namespace) -> int:
    from vitok.generate.latents import cache_latents
    from vitok.models.vitok import ViTok

    model = ViTok.from_pretrained(args.model, device=args.device)
    stats = cache_latents(model, args.data, args.out, args.kind, args.size, args.frames, args.batch_size,
                          args.shard_size, args.flip, args.labels, args.device)
    print(f"{stats['samples']} latents of {stats['num_classes']} classes -> {args.out} "
          f"(tokenizer with latent statistics: {args.out / 'tokenizer'})")
    return 0


def register_train_dit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-dit", help="train a class-conditional DiT on cached latents",
                       description="`vitok train-dit CONFIG.yaml [key=value ...]`; resumes from run.out_dir; "
                                   "scales out with `torchrun -m vitok train-dit ...`.")
    p.add_argument("config", type=Path)
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=run_train_dit)


def run_train_dit(args: argparse.Namespace) -> int:
    from vitok.generate.trainer import load_dit_config, train_dit

    scalars = train_dit(load_dit_config(args.config, args.overrides))
    if scalars and os.environ.get("RANK", "0") == "0":
        print("final: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(scalars.items())))
    return 0


def _sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dit", required=True, help="exported DiT directory (run_dir/model-ema)")
    p.add_argument("--tokenizer", required=True, help="tokenizer with latent statistics (cache/tokenizer)")
    p.add_argument("--cfg", type=finite_float, default=4.0, help="classifier-free guidance scale (1 = none)")
    p.add_argument("--interval", type=unit_float, nargs=2, default=None, help="guidance only for t in [lo, hi] (0-1)")
    p.add_argument("--steps", type=positive_int, default=50)
    p.add_argument("--sampler", choices=["ddim", "euler", "heun"], default=None)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--device", default="cpu")


def register_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="generate images or videos with a DiT and a tokenizer",
                       description="Writes one PNG (or MP4 + GIF) per sample and grid.png; same --seed, same samples.")
    _sampling_args(p)
    p.add_argument("--classes", default="0", help="comma-separated class indices, cycled over --n")
    p.add_argument("--n", type=positive_int, default=16)
    p.add_argument("--out", type=Path, default=Path("out/samples"))
    p.set_defaults(func=run_sample)


def _generate(args: argparse.Namespace, labels: torch.Tensor) -> torch.Tensor:
    from vitok.generate.sample import decode, load_dit, sample_latents
    from vitok.models.vitok import ViTok

    if args.interval and args.interval[0] > args.interval[1]:
        raise ValueError(f"--interval must be LO HI with LO <= HI, got {args.interval[0]} {args.interval[1]}")
    dit, info = load_dit(args.dit, args.device)
    tokenizer = ViTok.from_pretrained(args.tokenizer, device=args.device)
    z = sample_latents(dit, info, labels, args.cfg, args.steps, args.sampler, args.seed,
                       tuple(args.interval) if args.interval else None, args.batch_size, args.device)
    return decode(tokenizer, z, device=args.device)


def run_sample(args: argparse.Namespace) -> int:
    from vitok.generate.sample import save_samples

    classes = torch.tensor([int(c) for c in args.classes.split(",")])
    labels = classes[torch.arange(args.n) % len(classes)]
    x = _generate(args, labels)
    save_samples(x, labels, args.out)
    print(f"{len(x)} samples {tuple(x.shape[1:])} -> {args.out}")
    return 0


def register_eval_gen(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-gen", help="gFID (images) / gFVD (videos) of DiT samples vs reference statistics",
                       description="Generates --n class-balanced samples and compares their Inception (I3D for "
                                   "video) features with --ref-stats (e.g. rfid_real_stats.npz from `vitok eval`).")
    _sampling_args(p)
    p.add_argument("--n", type=positive_int, default=50000)
    p.add_argument("--ref-stats", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("out/eval-gen"))
    p.set_defaults(func=run_eval_gen)


def run_eval_gen(args: argparse.Namespace) -> int:
    from vitok.generate.sample import balanced_labels, generation_fid, load_dit, save_samples

    _, info = load_dit(args.dit)
    x = _generate(args, balanced_labels(args.n, len(info["classes"])))
    name = "gfvd" if x.ndim == 5 else "gfid"
    score = generation_fid(x, args.ref_stats, args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    save_samples(x[:16], balanced_labels(args.n, len(info["classes"]))[:16], args.out / "samples")
    results = {name: score, "samples": len(x), "cfg": args.cfg, "steps": args.steps, "dit": str(args.dit)}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"{name} {score:.3f} over {len(x)} samples -> {args.out / 'results.json'}")
    return 0


COMMANDS = (register_cache_latents, register_train_dit, register_sample, register_eval_gen)
