"""Helpers shared by the subcommands: size parsing, tables, model loading, the shipped samples."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitok.model_config import ViTokConfig
from vitok.presets import DEFAULT_MODEL
from vitok.text import model_label

if TYPE_CHECKING:  # torch is imported by the commands that run: `vitok --help` does not load it
    import torch


def preset_row(config: ViTokConfig, shape: tuple[int, int, int] | None = None,
               name: str | None = None) -> dict[str, object]:
    """Name, parameters, GMACs, input shape, tokens, E and compression ratio of one config; a
    ``name`` the user gave that differs from the architecture shows as ``name (architecture)``."""
    import torch

    from vitok.metrics.flops import compression_ratio, count_macs, latent_size, token_count
    from vitok.models.vitok import ViTok

    shape = shape or config.default_input_shape
    with torch.device("meta"):
        params = sum(p.numel() for p in ViTok(config).parameters())
    macs = count_macs(config, shape)
    t, h, w = shape
    return {
        "name": model_label(name, config.name),
        "head": config.head if config.head == "linear" else
        f"conv C={config.head_channels} x{config.head_blocks}", "params_M": params / 1e6, "gmacs": macs.gmacs,
        "encoder_gmacs": macs.encoder / 1e9, "decoder_gmacs": macs.decoder / 1e9,
        "input": f"{t}x{h}x{w}" if t > 1 else f"{h}x{w}", "tokens": token_count(config, shape),
        "E": latent_size(config, shape), "ratio": compression_ratio(config, shape),
    }


def format_table(rows: list[dict[str, object]], columns: Sequence[str], left: Sequence[str] = ()) -> str:
    """Plain-text table, columns right-aligned except those named in ``left``."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
        return str(value)

    cells = [[cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    def align(text: str, column: str, width: int) -> str:
        return text.ljust(width) if column in left else text.rjust(width)

    lines = ["  ".join(align(c, c, wd) for c, wd in zip(columns, widths))]
    lines += ["  ".join(align(v, c, wd) for v, c, wd in zip(r, columns, widths)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


PRESET_COLUMNS = ("name", "head", "params_M", "gmacs", "input", "tokens", "E", "ratio")
SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"
SHIPPED = Path(__file__).resolve().parents[1] / "pretrained"

# vitok.DEFAULT_MODEL (the shipped tokenizer), else the paper's S-B/16 with random weights
DEMO_MODEL = DEFAULT_MODEL if (SHIPPED / DEFAULT_MODEL / "model.safetensors").is_file() else "S-B/16"


def unknown_model_message(spec: str) -> str:
    """The one-line error for a --model that names nothing: what it can be, the shipped names, and
    the closest name (difflib)."""
    import difflib

    from vitok.presets import PRESETS

    if Path(spec).is_dir():
        return (f"--model {spec} is a folder without a model: expected vitok's config.json + model.safetensors "
                "or a diffusers folder (config.json + diffusion_pytorch_model.safetensors)")
    shipped = sorted(p.name for p in SHIPPED.iterdir() if (p / "config.json").is_file())
    close = difflib.get_close_matches(spec, [*shipped, *PRESETS], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (f"--model {spec!r} is neither a saved model directory, a shipped model ({', '.join(shipped) or 'none'}), "
            f"a Hugging Face hub id (org/name, cached) nor a preset name (see `vitok presets`){hint}")


def diffusers_class(folder: Path) -> str | None:
    """The ``_class_name`` of a diffusers model folder, "?" for a folder with diffusers weights
    (``diffusion_pytorch_model.*``) whose config.json is not a JSON object or names a class that is
    not a string, and None for anything else (vitok's own layout, a name, a missing folder). A
    folder may hold both layouts when one export overwrote another: its config.json decides."""
    import json

    config = folder / "config.json"
    if not config.is_file():
        return None
    weights = any((folder / f"diffusion_pytorch_model.{ext}").is_file() for ext in ("safetensors", "bin"))
    try:
        found = json.loads(config.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        found = None
    if not isinstance(found, dict):
        return "?" if weights else None
    if "_class_name" not in found:
        return None  # vitok's own config.json (beside left-over diffusers weights, it still decides)
    return found["_class_name"] if isinstance(found["_class_name"], str) else "?"


def input_frames(kind: str, frames: int | None, config: ViTokConfig, model: str, verb: str) -> int:
    """T of the input ``flops`` counts / ``bench`` times (``verb``: 'counts', 'times'): 1 for
    ``--kind image``, else ``--frames`` or the model's clip length. ``ValueError`` for ``--frames``
    with ``--kind image`` and for ``--kind video`` on an image tokenizer."""
    if kind == "image" and frames not in (None, 1):
        raise ValueError(f"--kind image {verb} one frame: --frames {frames} is for --kind video")
    if kind == "video" and not config.is_video:
        raise ValueError(f"--kind video: {model} is an image tokenizer (tubelet size 1)")
    return 1 if kind == "image" else frames or config.num_frames


def load_diffusers(spec: str, kind: str, device: str, conv_vae: bool) -> torch.nn.Module:
    """A diffusers folder of class ``kind`` (see :func:`load_model`) as a vitok-interface model.

    Raises:
        ValueError: a class this command cannot use, or a folder its loader cannot read (config
            and weights that disagree, missing weights), named in one line.
    """
    if kind == "?":
        raise ValueError(f"--model {spec} holds diffusers weights but its config.json names no diffusers class "
                         "(not a JSON object with a _class_name)")
    if kind not in ("AutoencoderViTok", "AutoencoderKL") or (kind == "AutoencoderKL" and not conv_vae):
        also = " (`vitok reconstruct` and `vitok eval` take an AutoencoderKL too)" if kind == "AutoencoderKL" else ""
        raise ValueError(f"--model {spec} is a diffusers {kind} folder: this command needs a vitok tokenizer{also}")
    try:
        if kind == "AutoencoderKL":
            from vitok.models.baselines import build_autoencoder_kl

            model = build_autoencoder_kl({}, spec)
        else:  # low_cpu_mem_usage: without `accelerate` diffusers would warn on every load
            from vitok.integrations.diffusers import AutoencoderViTok

            model = AutoencoderViTok.from_pretrained(spec, low_cpu_mem_usage=False).to_vitok()
    except (OSError, RuntimeError, TypeError, ValueError, KeyError) as err:  # diffusers' errors for a bad folder
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"--model {spec}: cannot load this diffusers {kind} folder: {reason}") from err
    return model.to(device).eval()


def load_model(spec: str, device: str, conv_vae: bool = False) -> torch.nn.Module:
    """A saved / shipped model, a diffusers ``AutoencoderViTok`` folder, or a randomly initialised
    preset (with a warning). With ``conv_vae`` (the commands that measure any autoencoder:
    ``reconstruct``, ``eval``), a diffusers ``AutoencoderKL`` folder too, e.g. the conv VAE
    baseline in ``benchmarks/baselines/autoencoder-kl``.

    Raises:
        ValueError: a diffusers folder this command cannot use or read (:func:`load_diffusers`).
        FileNotFoundError: ``spec`` names nothing (the message lists what it can be).
    """
    from vitok.models.vitok import ViTok
    from vitok.presets import PRESETS, parse_name

    kind = diffusers_class(Path(spec))
    if kind is not None:
        return load_diffusers(spec, kind, device, conv_vae)
    try:
        return ViTok.from_pretrained(spec, device=device)
    except FileNotFoundError:
        if spec not in PRESETS:
            try:
                parse_name(spec)
            except ValueError:
                raise FileNotFoundError(unknown_model_message(spec)) from None
    print(f"warning: {spec} is a preset: using randomly initialised weights", file=sys.stderr)
    return ViTok.from_preset(spec).to(device).eval()


def print_final(scalars: dict[str, float]) -> None:
    """The last logged training scalars as one line, on rank 0 only (torchrun)."""
    import os

    if scalars and os.environ.get("RANK", "0") == "0":
        print("final: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(scalars.items())))


def train_or_print(cfg: Any, print_config: bool, train: Callable[[Any], dict[str, float]]) -> int:
    """What ``vitok train`` and ``vitok train-dit`` do with a loaded run config: print it as YAML
    (``--print-config``) or train it and print the final scalars. Returns the exit status."""
    if print_config:
        from vitok.train.schema import to_yaml

        print(to_yaml(cfg.to_dict()))
        return 0
    print_final(train(cfg))
    return 0


def report_skipped(skipped: dict[str, str]) -> None:
    """The end-of-run summary of unreadable inputs on stderr: how many and which (with the reason)."""
    if skipped:
        from vitok.text import plural

        listed = "; ".join(f"{path} ({reason})" for path, reason in skipped.items())
        print(f"skipped {plural(len(skipped), 'unreadable file')}: {listed}", file=sys.stderr)


def optional_lpips(device: str) -> torch.nn.Module | None:
    """LPIPS (AlexNet) when its weights are cached, else None (with a hint)."""
    from vitok.metrics.lpips import LPIPS
    from vitok.weights import MissingWeightsError

    try:
        return LPIPS("alex").to(device)
    except MissingWeightsError:
        print("note: LPIPS weights not cached (`vitok weights fetch`): LPIPS not reported", file=sys.stderr)
        return None
