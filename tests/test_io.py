"""Image and video reading/writing and the evaluation resize."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import smooth_image
from vitok import io


def test_image_png_roundtrip_is_exact_after_quantisation(tmp_path) -> None:
    x = smooth_image(20, 30)
    io.save_image(x, tmp_path / "x.png")
    y = io.load_image(tmp_path / "x.png")
    assert y.shape == (3, 20, 30)
    assert (y - x).abs().max().item() <= 1 / 127.5 + 1e-6


def test_video_mp4_roundtrip(tmp_path) -> None:
    frames = torch.stack([smooth_image(32, 48, 3).roll(2 * i, dims=-1) for i in range(6)], dim=1)
    io.save_video(frames, tmp_path / "v.mp4", fps=5)
    back = io.load_video(tmp_path / "v.mp4")
    assert back.shape == frames.shape
    assert (back - frames).abs().mean().item() < 0.05
    assert io.load_video(tmp_path / "v.mp4", num_frames=2, start=1, stride=2).shape == (3, 2, 32, 48)
    count, fps = io.video_info(tmp_path / "v.mp4")
    assert count == 6 and fps == pytest.approx(5)


def test_odd_sized_video_and_gif(tmp_path) -> None:
    frames = torch.rand(3, 3, 15, 17) * 2 - 1
    io.save_video(frames, tmp_path / "v.mp4")
    assert io.load_video(tmp_path / "v.mp4").shape == (3, 3, 16, 18)
    io.save_video(frames, tmp_path / "v.gif")
    assert io.load_video(tmp_path / "v.gif").shape[1] == 3


def test_unreadable_files_raise_value_error(tmp_path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ValueError, match="cannot read image"):
        io.load_image(tmp_path / "bad.jpg")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="cannot read video"):
        io.load_video(tmp_path / "empty.mp4")


@pytest.mark.parametrize(("hw", "size"), [((100, 200), 64), ((300, 120), (32, 48)), ((64, 64), 64), ((10, 10), 32)])
def test_resize_center_crop(hw, size) -> None:
    x = torch.rand(3, 4, *hw) * 2 - 1
    out = io.resize_center_crop(x, size)
    expected = (size, size) if isinstance(size, int) else size
    assert out.shape == (3, 4, *expected)
    assert out.min() >= -1 and out.max() <= 1


def test_center_crop_takes_the_middle() -> None:
    x = torch.zeros(3, 10, 30)
    x[:, :, 10:20] = 1
    assert io.resize_center_crop(x, 10).min().item() == 1.0
