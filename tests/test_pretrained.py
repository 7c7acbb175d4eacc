"""The shipped default tokenizer (src/vitok/pretrained/vitok-tiny): it loads offline, is within the
size limit, and still reconstructs the shipped validation samples as well as it did when exported."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vitok import io
from vitok.cli import SAMPLES, SHIPPED
from vitok.models.vitok import ViTok
from vitok.reconstruct import item_scores

TINY = SHIPPED / "vitok-tiny"

# Measured on the exported weights (fp32 forward, posterior mean, native size: 256 px photos, the
# first 16 frames of the 176x144 clip): baboon 20.13, butterfly 15.29, fruits 23.86, carphone 19.27 dB.
# Each floor sits 0.5 dB below its measurement: a broken model or pipeline drops far more.
PSNR_FLOORS = {"baboon.jpg": 19.6, "butterfly.jpg": 14.8, "fruits.jpg": 23.3, "carphone.mp4": 18.7}

pytestmark = pytest.mark.skipif(not (TINY / "model.safetensors").is_file(), reason="vitok-tiny not shipped")


def test_shipped_files_and_size_limit() -> None:
    files = {p.name for p in TINY.iterdir()}
    assert {"config.json", "model.safetensors", "README.md"} <= files
    assert (TINY / "model.safetensors").stat().st_size <= 25 * 2**20


@pytest.fixture(scope="module")
def tiny() -> ViTok:
    return ViTok.from_pretrained("vitok-tiny").eval()


def test_loads_by_name_with_latent_stats(tiny: ViTok) -> None:
    c = tiny.config
    assert c.latent_mean is not None and len(c.latent_std) == c.latent_channels
    assert all(s > 0 for s in c.latent_std)


@pytest.mark.parametrize("name", sorted(PSNR_FLOORS))
def test_reconstructs_shipped_sample_above_floor(tiny: ViTok, name: str) -> None:
    path: Path = SAMPLES / name
    x = io.load_video(path, 16) if io.is_video_file(path) else io.load_image(path)
    with torch.inference_mode():
        recon = tiny(x[None]).recon[0].float().clamp(-1, 1)
    assert recon.shape == x.shape
    assert item_scores(x, recon)["psnr"] > PSNR_FLOORS[name]


def test_tiled_reconstruction_has_no_psnr_loss_on_a_large_photo(tiny: ViTok, shared_data: Path) -> None:
    """A 384 px val photo through 128 px tiles (the training size) against the whole image at once:
    the seams cost nothing measurable (the trained model is even better inside its training size)."""
    from vitok.io import to_uint8
    from vitok.metrics.psnr import psnr_uint8

    path = sorted((shared_data / "images" / "val").iterdir())[0]
    x = io.resize_center_crop(io.load_image(path), (384, 384))[None]
    psnr = {}
    with torch.inference_mode():
        for tiled in (False, True):
            recon = tiny(x, tiled=tiled).recon.clamp(-1, 1)
            psnr[tiled] = psnr_uint8(to_uint8(recon), to_uint8(x)).item()
    assert psnr[True] >= psnr[False] - 0.1, psnr
