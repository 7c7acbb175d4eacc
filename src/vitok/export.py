"""Packaging a trained tokenizer for sharing or shipping (``vitok export``).

Takes a model directory (e.g. a run's ``model-ema/``), measures the per-channel latent statistics
on a set of images (center crops, the posterior means), stores the weights (optionally in bf16)
with those statistics, and writes a model card (``README.md``) from the facts given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from vitok.data.datasets import MediaFolder, collate
from vitok.data.transforms import EvalTransform
from vitok.metrics.flops import compression_ratio, count_macs, latent_size
from vitok.models.pretrained import resolve_pretrained
from vitok.models.vitok import ViTok


@torch.no_grad()
def measure_latent_stats(model: ViTok, data: list[str], size: int | tuple[int, int], max_items: int = 512,
                         batch_size: int = 16, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (c,) of posterior means over center crops of (the first
    ``max_items``) images in ``data`` (a tqdm bar of images on stderr; unreadable images skipped,
    each named once in a warning; ``ValueError`` when none can be read)."""
    from tqdm import tqdm

    crop = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    dataset = MediaFolder(data, "image", EvalTransform(crop), substitute=False)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    total = sq = None
    count, seen = 0, 0
    bar = tqdm(total=min(len(dataset), max_items), desc="latent statistics", unit="image", disable=not progress,
               dynamic_ncols=True)
    for batch in loader:
        bar.update(len(batch["index"]) + len(batch["errors"]))
        if batch["x"] is None:
            continue
        x = batch["x"].to(next(model.parameters()).device)
        z = model.encode(x).double().transpose(0, 1).flatten(1)  # (c, positions)
        total = z.sum(1) if total is None else total + z.sum(1)
        sq = z.pow(2).sum(1) if sq is None else sq + z.pow(2).sum(1)
        count += z.shape[1]
        seen += batch["x"].shape[0]
        if seen >= max_items:
            break
    bar.close()
    if total is None:
        raise ValueError(f"none of the {len(dataset)} images under {', '.join(map(str, data))} could be read")
    mean = total / count
    return mean.float(), (sq / count - mean.pow(2)).clamp_min(1e-12).sqrt().float()


# how a model card says to load the model, per export format
LOAD_LINES = {
    "vitok": "Load it with `ViTok.from_pretrained(...)`; latents are normalised with the stored per-channel "
             "statistics by `encode(x, normalize=True)`.",
    "diffusers": "Load it with `AutoencoderViTok.from_pretrained(...)` (`from vitok.integrations.diffusers import "
                 "AutoencoderViTok`), the `diffusers.AutoencoderKL` interface; the per-channel latent statistics are "
                 "`config.latents_mean` / `latents_std`, their scalar summary `scaling_factor` / `shift_factor`.",
}


def model_card(model: ViTok, name: str, facts: dict[str, Any]) -> str:
    """A Markdown model card: the architecture figures computed here, plus the given facts."""
    c = model.config
    image, video = (1, *c.image_size), (max(c.num_frames, c.tubelet_size * 4), *c.image_size)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    lines = [f"# {name}", "", f"A ViTok tokenizer ({c.name}): encoder {c.encoder.width}x{c.encoder.depth} "
             f"({c.encoder.heads} heads), decoder {c.decoder.width}x{c.decoder.depth} ({c.decoder.heads} heads), "
             f"{c.tubelet_size}x{c.patch_size}x{c.patch_size} tubelets, c = {c.latent_channels}, "
             f"{params:.1f}M parameters.",
             "", "| input | tokens | E | compression | GMACs |", "|---|---|---|---|---|"]
    for shape in (image, video):
        t, h, w = shape
        lines.append(f"| {t}x{h}x{w} | {latent_size(c, shape) // c.latent_channels} | {latent_size(c, shape)} | "
                     f"{compression_ratio(c, shape):.0f}x | {count_macs(c, shape).gmacs:.2f} |")
    lines += ["", LOAD_LINES["vitok"], ""]
    for key, value in facts.items():
        lines.append(f"## {key}\n\n{value}\n")
    return "\n".join(lines)


def export(model_dir: str | Path, out: str | Path, name: str, stats_data: list[str] | None = None,
           stats_size: int | tuple[int, int] | None = None, dtype: torch.dtype | None = torch.bfloat16,
           facts: dict[str, str] | None = None, device: str | torch.device = "cpu") -> Path:
    """Write ``out`` = config.json + model.safetensors (``dtype``; None keeps fp32) + README.md (model
    card with the ``facts`` sections). The latent statistics are measured on ``stats_data`` (image
    files or folders; none: the model keeps the statistics it has, mean 0 / std 1 if it has none)
    at ``stats_size`` (default: the model's ``image_size``) on ``device``; ``ValueError`` when none
    of those images can be read."""
    model = ViTok.from_pretrained(model_dir)
    if stats_data:
        model.to(device)
        mean, std = measure_latent_stats(model, stats_data, stats_size or tuple(model.config.image_size))
        model.cpu().set_latent_stats(mean.cpu(), std.cpu())
    out = Path(out)
    model.save_pretrained(out, dtype=dtype)
    (out / "README.md").write_text(model_card(model, name, facts or {}))
    return out


def card_sections(card: str) -> dict[str, str]:
    """The ``## title`` sections of a model card that :func:`model_card` wrote, as the ``facts`` that
    make it again (the part before the first section is computed from the model, so not kept)."""
    sections: dict[str, str] = {}
    for chunk in ("\n" + card).split("\n## ")[1:]:
        title, _, body = chunk.partition("\n")
        sections[title.strip()] = body.strip("\n")
    return sections


def card_sections_of(model: str | Path) -> dict[str, str]:
    """The sections of the model card (``README.md``) beside ``model``, a folder or a shipped name
    (:func:`card_sections`); empty when it has no card or the card cannot be read."""
    try:
        return card_sections((resolve_pretrained(model) / "README.md").read_text())
    except (OSError, ValueError):  # no card, or not a readable one: the new card has no sections
        return {}


def load_facts(path: str | Path | None) -> dict[str, str]:
    """Model-card sections from a JSON file: an object {section title: markdown text} (empty for
    None). ``ValueError`` naming the file when it is not valid JSON or not such an object;
    ``OSError`` when it cannot be read."""
    if not path:
        return {}
    try:
        facts = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"model card {path} is not valid JSON: {err}") from None
    if not isinstance(facts, dict) or not all(isinstance(v, str) for v in facts.values()):
        raise ValueError(f"model card {path} must be a JSON object {{section title: markdown text}} with "
                         f"string values")
    return facts
