"""Using a tokenizer: ``presets``, ``flops``, ``reconstruct``, ``demo``, ``export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vitok.cli.argtypes import nonnegative_int, parse_size, positive_int
from vitok.cli.common import (
    DEMO_MODEL,
    PRESET_COLUMNS,
    SAMPLES,
    SHIPPED,
    diffusers_class,
    format_table,
    input_frames,
    load_diffusers,
    load_model,
    optional_lpips,
    preset_row,
    report_skipped,
    unknown_model_message,
)
from vitok.cli.options import (
    KINDS,
    add_device,
    add_input_kind,
    add_inputs,
    add_model,
    add_out,
    add_precision,
    add_size,
    alias,
)
from vitok.files import check_output_folder
from vitok.text import plural


def register_presets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the named models: params, GMACs, E, compression; the shipped "
                                       "tokenizers; the DiT sizes",
                       description="Table of the registered tokenizer presets at their default input size, then "
                                   "the shipped (trained) tokenizers, then the DiT sizes that `vitok train-dit` "
                                   "takes as model.preset.")
    p.set_defaults(func=run_presets)


def run_presets(args: argparse.Namespace) -> int:
    import torch

    from vitok.models.dit import DiT
    from vitok.models.pretrained import read_config
    from vitok.presets import DEFAULT_MODEL, DIT_SIZES, PRESETS, dit_config

    print(format_table([preset_row(c) for c in PRESETS.values()], PRESET_COLUMNS))
    shipped = sorted(d for d in SHIPPED.iterdir() if (d / "model.safetensors").is_file())
    if shipped:  # trained weights in the package: `--model NAME`, ViTok.from_pretrained(NAME), no network
        rows = [preset_row(read_config(d / "config.json"), name=d.name) for d in shipped]
        print(f"\nshipped tokenizers (trained weights, `--model NAME`; the default: {DEFAULT_MODEL}):")
        print(format_table(rows, PRESET_COLUMNS))
    rows = []
    for name, (width, depth, heads) in DIT_SIZES.items():
        with torch.device("meta"):
            params = sum(p.numel() for p in DiT(dit_config(name, latent_channels=16)).parameters())
        rows.append({"DiT (train-dit model.preset)": name, "width": width, "depth": depth, "heads": heads,
                     "params_M (c=16)": params / 1e6})
    print("\n" + format_table(rows, tuple(rows[0]), left=(next(iter(rows[0])),)))
    return 0


def register_flops(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flops", help="GMACs of a model at a given input size",
                       description="Multiply-accumulates (the paper's 'GFLOPs') of encoder + decoder.")
    add_model(p, "shipped", what="model (also ENC-DEC/p, ENC-DEC/qxp names, see `vitok presets`)")
    p.add_argument("name", nargs="?", default=None, help=argparse.SUPPRESS)  # deprecated: the old positional
    p.add_argument("--size", type=parse_size, default=None, metavar="N|HxW",
                   help="input size (default: the model's)")
    p.add_argument("--frames", type=positive_int, default=None, help="clip length T (default: the preset's)")
    add_input_kind(p, "count")
    p.add_argument("--latent-channels", type=positive_int, default=None, help="override c")
    p.add_argument("--head", choices=("linear", "conv"), default=None,
                   help="decoder pixel head (conv: the residual conv tail, see vitok.nn.pixel_head)")
    p.add_argument("--head-channels", type=positive_int, default=None, help="conv tail channels C")
    p.add_argument("--head-blocks", type=nonnegative_int, default=None, help="conv tail residual blocks (0 = one conv)")
    p.add_argument("--measure", action="store_true",
                   help="also count with torch's FlopCounterMode (meta device) as a cross-check")
    p.set_defaults(func=run_flops)


def saved_config(name: str):
    """The config of a saved model directory or shipped model, or None when ``name`` is neither."""
    from vitok.models.pretrained import CONFIG_NAME, read_config, resolve_pretrained

    try:
        return read_config(resolve_pretrained(name) / CONFIG_NAME)
    except FileNotFoundError:
        return None


def run_flops(args: argparse.Namespace) -> int:
    from vitok.metrics.flops import measure_macs
    from vitok.presets import get_config

    overrides = {key: value for key, value in (("latent_channels", args.latent_channels), ("head", args.head),
                                               ("head_channels", args.head_channels),
                                               ("head_blocks", args.head_blocks)) if value is not None}
    if args.name is not None:
        if args.model != DEMO_MODEL:
            raise ValueError(f"give the model once: `vitok flops {args.name}` and --model {args.model} disagree")
        print(f"warning: `vitok flops NAME` is deprecated and goes in the next release; use --model {args.name}",
              file=sys.stderr)
        args.model = args.name
    config = load_model(args.model, "cpu").config if diffusers_class(Path(args.model)) else saved_config(args.model)
    if config is None:
        try:
            config = get_config(args.model)
        except ValueError:
            raise ValueError(unknown_model_message(args.model)) from None
    config = config.replace(**overrides)
    if config.head == "linear" and (args.head_channels is not None or args.head_blocks is not None):
        raise ValueError(f"--head-channels / --head-blocks shape the conv tail: {args.model} has the linear head, "
                         "add --head conv")
    shape = (input_frames(args.kind, args.frames, config, args.model, "counts"), *(args.size or config.image_size))
    row = preset_row(config, shape, name=args.model)
    columns = (*PRESET_COLUMNS[:2], "encoder_gmacs", "decoder_gmacs", *PRESET_COLUMNS[2:])
    print(format_table([row], columns))
    if args.measure:
        print(f"FlopCounterMode: {measure_macs(config, shape).gmacs:.2f} GMACs")
    return 0


def register_reconstruct(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruct", help="encode + decode image and video files",
                       description="Reconstruct images and videos with a model; writes the results "
                                   "and side-by-side comparisons, prints PSNR per item.")
    add_inputs(p)
    add_model(p, "shipped",
              what="tokenizer, or a diffusers AutoencoderKL folder (e.g. benchmarks/baselines/autoencoder-kl)")
    add_out(p, "out/reconstruct")
    add_size(p, None)
    p.add_argument("--frames", type=positive_int, default=None,
                   help="reconstruct only the first N frames of a video (default: the whole video, in chunks)")
    p.add_argument("--stride", type=positive_int, default=1, help="take every k-th video frame")
    add_precision(p)
    add_device(p)
    p.set_defaults(func=run_reconstruct)


def run_reconstruct(args: argparse.Namespace) -> int:
    from vitok.models.inference import CompileStats, prepare_for_inference
    from vitok.reconstruct import expand_inputs, reconstruct_all, summarize

    out = args.out.resolve()  # a rerun into a folder inside the input never reads its own outputs
    paths = [p for p in expand_inputs(args.inputs) if out not in p.resolve().parents]
    if not paths:
        raise ValueError(f"all image / video files in {', '.join(map(str, args.inputs))} are under --out {args.out}")
    check_output_folder(args.out)
    model = load_model(args.model, args.device, conv_vae=True)
    model = prepare_for_inference(model, args.precision, args.device, args.compile)
    if hasattr(model, "show_progress"):  # a vitok model: a bar of tiles inside a large image or a long video
        model.show_progress(sys.stderr.isatty())
    lpips = optional_lpips(args.device)
    compiling = CompileStats()
    scores, skipped = reconstruct_all(model, paths, args.out, args.size, args.frames, args.stride, args.device,
                                      lpips, compiling)
    if scores:  # with nothing reconstructed, the error below says it once
        report_skipped(skipped)
    if compiling.graphs:
        print(compiling.summary() + " (included in the times above)")
    if not scores:
        first = next(iter(skipped.values()))
        what = "the only file" if len(paths) == 1 else f"none of the {len(paths)} files"
        raise ValueError(f"{what} could not be read ({first})" if len(paths) == 1 else f"{what} could be read "
                         f"(first: {first})")
    print(f"mean {summarize(scores)} over {plural(len(scores), 'item')} -> {args.out} (overview.png)")
    return 0


def register_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the first thing to run: a model's table row and reconstructions",
                       description="Builds a model, prints its size row and reconstructs the sample "
                                   "images and video shipped with the package into --out.")
    add_model(p, "shipped")
    add_out(p, "out/demo")
    add_device(p)
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from vitok.reconstruct import reconstruct_all, summarize

    check_output_folder(args.out)
    model = load_model(args.model, args.device)
    print(format_table([preset_row(model.config, name=args.model)], PRESET_COLUMNS))
    samples = sorted(SAMPLES.glob("*.jpg")) + sorted(SAMPLES.glob("*.mp4"))
    scores, skipped = reconstruct_all(model, samples, args.out, device=args.device, lpips=optional_lpips(args.device))
    print(f"mean {summarize(scores)} over {plural(len(scores), 'sample')} -> {args.out} (overview.png)")
    report_skipped(skipped)
    return 0


def register_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="package a trained tokenizer: bf16 weights, latent statistics, model card",
                       description="Reads a trained model (e.g. RUN/model-ema), measures the latent statistics on "
                                   "the images given, writes weights (bf16 by default), config and README.md.")
    p.add_argument("--model", required=True,
                   help="the trained tokenizer to package: a model folder (e.g. RUN/model-ema, in vitok's or "
                        "diffusers' layout) or a shipped name")
    add_out(p, None, "output folder for the packaged model")
    p.add_argument("--name", required=True, help="name shown in the model card")
    add_inputs(p, "images for the latent statistics: per-channel mean / std of posterior means over their centre "
                  "crops (none: the model keeps its own, if any, e.g. to rewrite a shipped model's card)",
               old="--stats-data")
    p.add_argument("--size", type=parse_size, default=None, metavar="N|HxW",
                   help="centre crop for the latent statistics (default: the model's image size)")
    alias(p, "--stats-size", "size", "--size", type=parse_size)
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="bf16",
                   help="precision the weights are stored in (default: bf16)")
    alias(p, "--dtype", "precision", "--precision", choices=["fp32", "bf16", "fp16"])
    add_device(p)
    p.add_argument("--card", default=None, help="JSON {section title: markdown} for the model card (default: the "
                                                "sections of the --model folder's own card, if it has one)")
    p.add_argument("--format", choices=["vitok", "diffusers", "onnx"], default="vitok",
                   help="vitok's own layout (config.json + model.safetensors), diffusers' (AutoencoderViTok: "
                        "loads with vitok.integrations.diffusers; --model may be either), or onnx (encoder.onnx + "
                        "decoder.onnx in fp32, dynamic batch and size, beside the vitok files)")
    p.add_argument("--kind", choices=KINDS, default="auto",
                   help="with --format onnx: graphs for images, pixels (B, 3, H, W), or for videos, pixels "
                        "(B, 3, T, H, W) (default: auto = video for a model that handles video, else image)")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    import tempfile

    import torch

    from vitok.export import LOAD_LINES, card_sections_of, export, load_facts

    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    if not args.name.strip():
        raise ValueError("--name must not be empty: it heads the model card")
    if Path(args.model).is_dir() and Path(args.out).resolve() == Path(args.model).resolve():
        raise ValueError(f"--out {args.out} is the --model folder: export writes a new folder and would replace "
                         "the weights it reads")
    kind = diffusers_class(Path(args.model))
    diffusers_model = load_diffusers(args.model, kind, "cpu", conv_vae=False) if kind is not None else None
    if args.kind != "auto" and args.format != "onnx":
        raise ValueError(f"--kind {args.kind} chooses the ONNX graphs' input: it needs --format onnx")
    facts = load_facts(args.card)  # a bad card fails before anything is written
    if args.card is None:  # no new card: a packaged model's own sections (data, recipe, metrics) are kept
        facts = card_sections_of(args.model)
    if args.kind == "video":
        from vitok.models.vitok import ViTok

        if not (diffusers_model.to_vitok() if diffusers_model is not None else
                ViTok.from_pretrained(args.model)).config.is_video:
            raise ValueError(f"--kind video: {args.model} is an image tokenizer (tubelet size 1, no video "
                             "graphs); use --kind image")
    check_output_folder(args.out)
    with tempfile.TemporaryDirectory(prefix="vitok-export-") as scratch:
        source = args.model
        if diffusers_model is not None:  # a diffusers AutoencoderViTok, saved in vitok's layout to export it
            source = diffusers_model.save_pretrained(Path(scratch) / "in")
        target = args.out if args.format in ("vitok", "onnx") else Path(scratch) / "out"
        out = export(str(source), target, args.name, [str(path) for path in args.inputs], args.size, dtype,
                     facts, args.device)
        weights = out / "model.safetensors"
        if args.format == "diffusers":
            from vitok.integrations.diffusers import AutoencoderViTok
            from vitok.models.vitok import ViTok

            model = ViTok.from_pretrained(out)
            if dtype is not None:  # parameters stored smaller; the latent statistics (buffers) stay float32
                for param in model.parameters():
                    param.data = param.data.to(dtype)
            AutoencoderViTok.from_vitok(model).save_pretrained(args.out)
            if (out / "README.md").is_file():
                card = (out / "README.md").read_text().replace(LOAD_LINES["vitok"], LOAD_LINES["diffusers"])
                (Path(args.out) / "README.md").write_text(card)
            weights, out = Path(args.out) / "diffusion_pytorch_model.safetensors", Path(args.out)
        if args.format == "onnx":
            from vitok.integrations.graph_export import export_onnx
            from vitok.models.vitok import ViTok

            model = ViTok.from_pretrained(out, dtype=torch.float32)
            kind = args.kind if args.kind != "auto" else "video" if model.config.is_video else "image"
            layout = "(B, 3, T, H, W)" if kind == "video" else "(B, 3, H, W)"
            for path in export_onnx(model, out, kind):
                print(f"{path.name}: {path.stat().st_size / 2**20:.1f} MiB")
            print(f"ONNX graphs for {kind}s: encoder.onnx takes pixels {layout} in [-1, 1]"
                  + ("" if args.kind != "auto" or kind == "image" else "; --kind image for image graphs"))
        print(f"{args.name}: {weights.stat().st_size / 2**20:.1f} MiB ({args.format} format) -> {out}")
    return 0
