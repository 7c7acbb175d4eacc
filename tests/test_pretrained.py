"""The shipped tokenizers (src/vitok/pretrained/<name>): each loads offline, is within the size
limit, and still reconstructs the shipped validation samples as well as it did when exported."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from vitok import io
from vitok.cli import SAMPLES, SHIPPED
from vitok.models.vitok import ViTok
from vitok.presets import DEFAULT_MODEL
from vitok.reconstruct import item_scores

# Measured on each model's exported weights (fp32 forward, posterior mean, native size: 256 px
# photos, the first 16 frames of the 176x144 clip). Each floor sits 0.5 dB below its measurement:
# a broken model or pipeline drops far more.
PSNR_FLOORS = {
    # baboon 20.87, butterfly 15.91, fruits 24.75, carphone 19.98 dB
    "vitok-tiny-conv": {"baboon.jpg": 20.3, "butterfly.jpg": 15.4, "fruits.jpg": 24.2, "carphone.mp4": 19.4},
    # baboon 20.13, butterfly 15.29, fruits 23.86, carphone 19.27 dB
    "vitok-tiny": {"baboon.jpg": 19.6, "butterfly.jpg": 14.8, "fruits.jpg": 23.3, "carphone.mp4": 18.7},
}
CASES = [(model, sample) for model, floors in PSNR_FLOORS.items() for sample in sorted(floors)]


def shipped(name: str) -> bool:
    return (SHIPPED / name / "model.safetensors").is_file()


def test_default_model_is_shipped_and_measured() -> None:
    assert shipped(DEFAULT_MODEL) and DEFAULT_MODEL in PSNR_FLOORS


@pytest.mark.parametrize("name", sorted(PSNR_FLOORS))
def test_shipped_files_and_size_limit(name: str) -> None:
    files = {p.name for p in (SHIPPED / name).iterdir()}
    assert {"config.json", "model.safetensors", "README.md"} <= files
    # bf16 weights stay small enough to ship in the repository and the wheel (vitok-tiny-conv: 27.6 MiB)
    assert (SHIPPED / name / "model.safetensors").stat().st_size <= 30 * 2**20


@functools.cache
def load(name: str) -> ViTok:
    """One instance per shipped model for the whole module."""
    return ViTok.from_pretrained(name).eval()


@pytest.mark.parametrize("name", sorted(PSNR_FLOORS))
def test_loads_by_name_with_latent_stats(name: str) -> None:
    c = load(name).config
    assert c.latent_mean is not None and len(c.latent_std) == c.latent_channels
    assert all(s > 0 for s in c.latent_std)


@pytest.mark.parametrize(("model", "name"), CASES)
def test_reconstructs_shipped_sample_above_floor(model: str, name: str) -> None:
    path: Path = SAMPLES / name
    x = io.load_video(path, 16) if io.is_video_file(path) else io.load_image(path)
    with torch.inference_mode():
        recon = load(model)(x[None]).recon[0].float().clamp(-1, 1)
    assert recon.shape == x.shape
    assert item_scores(x, recon)["psnr"] > PSNR_FLOORS[model][name]


def test_tiled_reconstruction_has_no_psnr_loss_on_a_large_photo(shared_data: Path) -> None:
    """A 384 px val photo through 128 px tiles (the training size) against the whole image at once:
    the seams cost nothing measurable (the trained model is even better inside its training size)."""
    from vitok.io import to_uint8
    from vitok.metrics.psnr import psnr_uint8

    path = sorted((shared_data / "images" / "val").iterdir())[0]
    x = io.resize_center_crop(io.load_image(path), (384, 384))[None]
    psnr = {}
    with torch.inference_mode():
        for tiled in (False, True):
            recon = load(DEFAULT_MODEL)(x, tiled=tiled).recon.clamp(-1, 1)
            psnr[tiled] = psnr_uint8(to_uint8(recon), to_uint8(x)).item()
    assert psnr[True] >= psnr[False] - 0.1, psnr
