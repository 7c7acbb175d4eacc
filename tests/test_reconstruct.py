"""`vitok reconstruct`'s library side: per-item scores on any image size, skipping unreadable files."""

from __future__ import annotations

import torch

from tests.conftest import smooth_image
from vitok import ViTok, io
from vitok.metrics.lpips import LPIPS
from vitok.reconstruct import item_scores, reconstruct_all


def test_small_images_are_scored_without_the_scores_that_need_larger_ones() -> None:
    lpips = LPIPS("alex", pretrained=False)  # random weights: only the size handling matters here
    for side, expected in ((1, {"psnr"}), (16, {"psnr", "ssim"}), (31, {"psnr", "ssim", "lpips"})):
        x = smooth_image(side, side)
        scores = item_scores(x, (x + 0.05).clamp(-1, 1), lpips)
        assert set(scores) == expected, side


def test_unreadable_files_are_skipped_and_the_rest_reconstructed(tmp_path, capsys) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a_broken.png").write_text("not an image")
    io.save_image(smooth_image(16, 16), tmp_path / "in" / "b_photo.png")
    model = ViTok.from_preset("N-N/8").eval()
    paths = sorted((tmp_path / "in").iterdir())
    scores, skipped = reconstruct_all(model, paths, tmp_path / "out", size=(16, 16))
    assert len(scores) == 1 and (tmp_path / "out" / "b_photo_recon.png").is_file()
    assert list(skipped) == [str(tmp_path / "in" / "a_broken.png")]
    assert "warning: skipping " in capsys.readouterr().err
    assert torch.isfinite(torch.tensor(scores[0]["psnr"]))
