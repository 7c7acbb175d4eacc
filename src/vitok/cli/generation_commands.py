"""Generation: ``cache-latents``, ``train-dit``, ``sample``, ``eval-gen`` (a DiT on tokenizer latents)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from vitok.cli.argtypes import finite_float, nonnegative_int, positive_int, unit_float
from vitok.cli.common import load_model, report_skipped, train_or_print
from vitok.cli.options import (
    add_batch_size,
    add_device,
    add_inputs,
    add_kind,
    add_model,
    add_out,
    add_precision,
    add_size,
)
from vitok.files import check_output_folder
from vitok.text import plural

if TYPE_CHECKING:  # torch is imported by the commands that run: `vitok --help` does not load it
    import torch


def register_cache_latents(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache-latents", help="encode a dataset once into latent shards for DiT training",
                       description="Labels come from sub-folder names (or --labels FILE: JSON {relative path: "
                                   "class}); shards are safetensors; a rerun skips finished shards.")
    add_inputs(p, "the image or video folder (class sub-folders)", old="--data")
    add_model(p, "shipped")
    add_out(p, "out/latents", "output folder: latent shards, stats.json, tokenizer/")
    add_kind(p)
    add_size(p, 256)
    p.add_argument("--frames", type=positive_int, default=16, help="frames per video clip (default 16)")
    add_batch_size(p, 16)
    p.add_argument("--shard-size", type=positive_int, default=1024, help="latents per shard file (default 1024)")
    p.add_argument("--flip", action="store_true", help="also store latents of horizontally flipped inputs")
    p.add_argument("--labels", type=Path, default=None, help="JSON {relative path: class index}")
    add_precision(p)
    add_device(p)
    p.set_defaults(func=run_cache_latents)


def run_cache_latents(args: argparse.Namespace) -> int:
    from vitok.evaluate import detect_kind
    from vitok.generate.latents import cache_latents

    if len(args.inputs) != 1 or not args.inputs[0].is_dir():
        raise ValueError(f"cache-latents reads one folder (its sub-folders are the classes), got "
                         f"{[str(p) for p in args.inputs] or 'none'}")
    kind = detect_kind(args.inputs) if args.kind == "auto" else args.kind
    if args.labels is not None and not args.labels.is_file():
        raise FileNotFoundError(f"--labels {args.labels} does not exist")
    check_output_folder(args.out)
    model = load_model(args.model, args.device)
    stats = cache_latents(model, args.inputs[0], args.out, kind, args.size, args.frames, args.batch_size,
                          args.shard_size, args.flip, args.labels, args.device, precision=args.precision,
                          compile=args.compile)
    report_skipped(stats.get("skipped_files", {}))
    if stats["compile_seconds"]:
        print(f"compiling took {stats['compile_seconds']:.1f} s")
    print(f"{plural(stats['samples'], 'latent')} of {plural(stats['num_classes'], 'class')} -> {args.out} "
          f"(tokenizer with latent statistics: {args.out / 'tokenizer'})")
    return 0


def register_train_dit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-dit", help="train a class-conditional DiT on cached latents",
                       description="`vitok train-dit CONFIG.yaml [key=value ...]`; resumes from run.out_dir; "
                                   "scales out with `torchrun -m vitok train-dit ...`.")
    p.add_argument("config", type=Path, help="YAML config of the DiT run (see configs/dit/)")
    p.add_argument("overrides", nargs="*", default=[], help="key=value overrides, e.g. run.steps=100")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run_train_dit)


def run_train_dit(args: argparse.Namespace) -> int:
    from vitok.generate.config import DiTTrainConfig, check_latents
    from vitok.train.config import load_config

    cfg = load_config(args.config, args.overrides, DiTTrainConfig)  # a bad config fails before torch loads
    if not args.print_config:
        check_latents(cfg)  # so does a missing latent cache

    def train(cfg: DiTTrainConfig) -> dict[str, float]:  # the trainer (and torch) load only when a run starts
        from vitok.generate.trainer import train_dit

        return train_dit(cfg)

    return train_or_print(cfg, args.print_config, train)


def _sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dit", required=True, help="exported DiT directory (run_dir/model-ema)")
    add_model(p, None, what="the tokenizer the DiT was trained with, with latent statistics", old="--tokenizer",
              otherwise="LATENTS/tokenizer, written by cache-latents, LATENTS as recorded with the DiT")
    p.add_argument("--cfg", type=finite_float, default=4.0,
                   help="classifier-free guidance scale (1 = none; default 4.0)")
    p.add_argument("--interval", type=unit_float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="guidance only for t in [LO, HI], each in 0-1 (default: every step)")
    p.add_argument("--steps", type=positive_int, default=50, help="sampler steps (default 50)")
    p.add_argument("--sampler", choices=["ddim", "euler", "heun"], default=None,
                   help="ddim for a DiT trained with the ddpm objective; euler or heun for flow matching "
                        "(default: ddim for ddpm, heun for flow)")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of the initial noise: the same seed gives the same samples (default 0)")
    add_batch_size(p, 16)
    add_device(p)


def register_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="generate images or videos with a DiT and a tokenizer",
                       description="Writes one PNG (or MP4 + GIF) per sample and grid.png; same --seed, same samples.")
    _sampling_args(p)
    p.add_argument("--classes", default="0", help="comma-separated class indices, cycled over --n (default 0)")
    p.add_argument("--n", type=positive_int, default=16, help="number of samples (default 16)")
    add_out(p, "out/samples")
    p.set_defaults(func=run_sample)


def tokenizer_name(args: argparse.Namespace, info: dict) -> str:
    """--model, else the tokenizer `vitok cache-latents` saved with the DiT's latents."""
    return str(args.model or Path(info["latents"]) / "tokenizer")


def _load(args: argparse.Namespace) -> tuple:
    """The DiT, its generation info and the tokenizer, after the checks that need no model: the
    guidance interval and a writable --out (one-line errors before any sampling). The tokenizer
    must carry the latent statistics the DiT's latents were normalised with (those of its
    cache, when the cache is at hand): without them its decode would not undo the normalisation."""
    import torch

    from vitok.generate.sample import load_dit

    if args.interval and args.interval[0] > args.interval[1]:
        raise ValueError(f"--interval must be LO HI with LO <= HI, got {args.interval[0]} {args.interval[1]}")
    check_output_folder(args.out)
    dit, info = load_dit(args.dit, args.device)
    name = tokenizer_name(args, info)
    tokenizer = load_model(name, args.device)
    mean, std = tokenizer.config.latent_mean, tokenizer.config.latent_std
    if mean is None or std is None:
        raise ValueError(f"--model {name} has no latent statistics, so it cannot undo the normalisation of the "
                         f"DiT's latents: give the tokenizer `vitok cache-latents` wrote (LATENTS/tokenizer)")
    stats_path = Path(info["latents"]) / "stats.json" if info.get("latents") else None
    if stats_path is not None and stats_path.is_file():
        stats = json.loads(stats_path.read_text())
        same = [torch.allclose(torch.tensor(ours, dtype=torch.float64), torch.tensor(theirs, dtype=torch.float64),
                               rtol=1e-4, atol=1e-6) for ours, theirs in ((mean, stats["mean"]), (std, stats["std"]))]
        if not all(same):
            raise ValueError(f"--model {name}: its latent statistics are not those of {stats_path}, the latents the "
                             "DiT was trained on; give that cache's tokenizer (LATENTS/tokenizer)")
    return dit, info, tokenizer


def _generate(args: argparse.Namespace, dit, info: dict, tokenizer, labels: torch.Tensor, first: int = 0,
              progress: bool = True) -> torch.Tensor:
    """Pixels in [-1, 1] of samples ``first ..`` of the run, for ``labels``."""
    from vitok.generate.sample import decode, sample_latents

    z = sample_latents(dit, info, labels, args.cfg, args.steps, args.sampler, args.seed,
                       tuple(args.interval) if args.interval else None, args.batch_size, args.device, progress, first)
    return decode(tokenizer, z, args.batch_size, args.device, progress)


def run_sample(args: argparse.Namespace) -> int:
    import torch

    from vitok.generate.sample import save_samples

    try:
        classes = torch.tensor([int(c) for c in args.classes.split(",")])
    except ValueError:
        raise ValueError(f"--classes must be comma-separated class indices, got {args.classes!r}") from None
    dit, info, tokenizer = _load(args)
    count = len(info["classes"])
    if classes.min() < 0 or classes.max() >= count:
        raise ValueError(f"--classes must be in 0..{count - 1} (this DiT has {plural(count, 'class')}: "
                         f"{', '.join(info['classes'][:10])}), got {args.classes}")
    labels = classes[torch.arange(args.n) % len(classes)]
    x = _generate(args, dit, info, tokenizer, labels)
    save_samples(x, labels, args.out)
    print(f"{plural(len(x), 'sample')} {tuple(x.shape[1:])} -> {args.out}")
    return 0


def register_eval_gen(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-gen", help="gFID (images) / gFVD (videos) of DiT samples vs reference statistics",
                       description="Generates --n class-balanced samples and compares their Inception (I3D for "
                                   "video) features with --ref-stats (e.g. rfid_real_stats.npz from `vitok eval`).")
    _sampling_args(p)
    p.add_argument("--n", type=positive_int, default=50000,
                   help="number of class-balanced samples (default 50000, the paper's gFID protocol)")
    p.add_argument("--ref-stats", type=Path, required=True,
                   help="reference feature statistics (.npz: mu, sigma), e.g. rfid_real_stats.npz written by "
                        "`vitok eval` on the real images")
    p.add_argument("--cache", default=None, help="metric weights cache (default $VITOK_CACHE or ~/.cache/vitok)")
    add_out(p, "out/eval-gen")
    p.set_defaults(func=run_eval_gen)


def run_eval_gen(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from vitok.files import atomic_write
    from vitok.generate.sample import (
        balanced_labels,
        default_sampler,
        feature_dimension,
        generation_fid,
        save_samples,
    )
    from vitok.metrics.frechet import load_stats

    mu, _, _ = load_stats(args.ref_stats)  # a missing or malformed file fails here, before any sampling
    if args.n < 2:
        raise ValueError(f"--n must be at least 2 for a Frechet distance (a covariance), got {args.n}")
    dit, info, tokenizer = _load(args)
    video = len(info["latent_shape"]) == 4  # (c, t, h, w)
    name, network = ("gfvd", "I3D") if video else ("gfid", "Inception")
    dim = feature_dimension(video)
    if mu.shape != (dim,):
        raise ValueError(f"--ref-stats {args.ref_stats} holds {mu.shape[0]}-d features; this DiT makes "
                         f"{'videos' if video else 'images'}, whose {network} features are {dim}-d "
                         f"(`vitok eval` writes {'rfvd' if video else 'rfid'}_real_stats.npz)")
    labels = balanced_labels(args.n, len(info["classes"]))
    kept: list[torch.Tensor] = []  # the first 16 samples, saved as pictures

    def batches():  # sampled, decoded and measured one batch at a time: memory stays that of a batch
        bar = tqdm(total=args.n, desc=f"sample ({args.steps} steps) + decode", unit="sample", dynamic_ncols=True)
        for start in range(0, args.n, args.batch_size):
            x = _generate(args, dit, info, tokenizer, labels[start:start + args.batch_size], start, progress=False)
            kept.extend(x[:16 - len(kept)])
            bar.update(len(x))
            yield x
        bar.close()

    score, count = generation_fid(batches(), args.ref_stats, args.device, args.cache, progress=False)
    args.out.mkdir(parents=True, exist_ok=True)
    save_samples(torch.stack(kept), labels[:len(kept)], args.out / "samples")
    results = {name: score, "samples": count, "cfg": args.cfg, "interval": args.interval, "steps": args.steps,
               "sampler": args.sampler or default_sampler(info["objective"]), "seed": args.seed,
               "dit": str(args.dit), "tokenizer": tokenizer_name(args, info),
               "ref_stats": str(args.ref_stats)}
    atomic_write(args.out / "results.json", lambda path: path.write_text(json.dumps(results, indent=2) + "\n"))
    print(f"{name} {score:.3f} over {plural(count, 'sample')} -> {args.out / 'results.json'}")
    return 0


COMMANDS = (register_cache_latents, register_train_dit, register_sample, register_eval_gen)
