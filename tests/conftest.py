"""Shared fixtures: tiny models, real data from ../shared/data, generated media."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real photos and videos beside the checkout (CI has them too)."""
    if not (SHARED_DATA / "images" / "val").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def smooth_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth random colour image (3, H, W) in [-1, 1] (low-frequency, like a photo)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, h // 8), max(2, w // 8), generator=g) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Six smooth 48x56 PNG images: the tiny training set of the trainer tests."""
    from vitok import io

    folder = tmp_path / "images"
    for i in range(6):
        io.save_image(smooth_image(48, 56, seed=i), folder / f"{i}.png")
    return folder


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    """A folder with two PNG images and a short MP4 video."""
    from vitok import io

    folder = tmp_path / "media"
    io.save_image(smooth_image(48, 64, 1), folder / "a.png")
    io.save_image(smooth_image(40, 40, 2), folder / "b.png")
    frames = torch.stack([smooth_image(32, 48, 3).roll(i, dims=-1) for i in range(6)], dim=1)
    io.save_video(frames, folder / "clip.mp4", fps=5)
    return folder


def psnr_np(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def assert_same_final_state(full: Path, split: Path,
                            parts: tuple[str, ...] = ("model", "ema", "disc")) -> tuple[dict, dict]:
    """The last checkpoints of an uninterrupted run folder and of a stopped-and-resumed one hold the
    same step and bit-identical tensors in each of ``parts``; returns both states."""
    from vitok.train.checkpoint import list_checkpoints, load_checkpoint

    a = load_checkpoint(list_checkpoints(full)[-1][1])
    b = load_checkpoint(list_checkpoints(split)[-1][1])
    assert a["step"] == b["step"], (a["step"], b["step"])
    for part in parts:
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key} differs after resume"
    return a, b


@pytest.fixture
def tiny_model(tmp_path: Path) -> str:
    """A saved nano tokenizer (random weights): a --model for CLI tests."""
    from vitok import ViTok

    ViTok.from_preset("N-N/8").save_pretrained(tmp_path / "model")
    return str(tmp_path / "model")


@pytest.fixture
def folder_with_a_broken_file(tmp_path: Path) -> Path:
    """photos/cats with two good images and a broken JPEG (a class folder, for cache-latents too)."""
    from vitok import io

    folder = tmp_path / "photos" / "cats"
    io.save_image(smooth_image(40, 48, 1), folder / "good.png")
    io.save_image(smooth_image(40, 48, 2), folder / "fine.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder.parent
