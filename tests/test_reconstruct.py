"""`vitok reconstruct`'s library side: per-item scores on any image size, skipping unreadable files."""

from __future__ import annotations

import pytest
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


def test_a_small_item_does_not_drop_a_score_from_the_mean_of_the_others(tmp_path, capsys) -> None:
    """One 4 px image among 32 px ones: the SSIM mean is over the items that have SSIM, and the
    summary line and scores.json say over how many."""
    import json

    from vitok.reconstruct import mean_scores, summarize

    items = [{"psnr": 20.0, "ssim": 0.5}, {"psnr": 10.0}, {"psnr": 30.0, "ssim": 0.7}]
    assert mean_scores(items) == {"psnr": 20.0, "ssim": pytest.approx(0.6)}
    assert summarize(items) == ("PSNR 20.00 dB, SSIM 0.6000 (SSIM over 2 of 3 items: the others are smaller "
                                "than its window)")
    assert summarize(items[:1]) == "PSNR 20.00 dB, SSIM 0.5000"
    (tmp_path / "in").mkdir()
    for name, side in (("a", 32), ("b", 4), ("c", 32)):
        io.save_image(smooth_image(side, side), tmp_path / "in" / f"{name}.png")
    model = ViTok.from_preset("N-N/8").eval()
    scores, _ = reconstruct_all(model, sorted((tmp_path / "in").iterdir()), tmp_path / "out")
    report = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert report["mean"]["ssim"] == pytest.approx((scores[0]["ssim"] + scores[2]["ssim"]) / 2)
    assert report["mean_over"]["ssim"] == 2 and "psnr" not in report["mean_over"]


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


def test_each_file_once_and_every_output_name_distinct(tmp_path) -> None:
    from vitok.reconstruct import expand_inputs, output_names

    for name in ("x.jpg", "x.JPG", "y.png"):
        io.save_image(smooth_image(16, 16), tmp_path / "in" / name)
    (tmp_path / "link").symlink_to(tmp_path / "in")
    y = tmp_path / "in" / "y.png"
    paths = expand_inputs([tmp_path / "in", tmp_path / "in" / ".." / "in" / "y.png", tmp_path / "link" / "y.png"])
    assert sorted(p.name for p in paths) == ["x.JPG", "x.jpg", "y.png"] and y in paths  # y.png once, as first found
    names = output_names(paths)
    assert len({n.lower() for n in names.values()}) == 3  # distinct even on a case-insensitive file system


def test_a_conv_vae_reconstructs_any_size_at_full_size() -> None:
    """A diffusers AutoencoderKL pads to its downsampling factor and crops back, as vitok pads to patches."""
    from tests.test_train import TINY_AUTOENCODER_KL
    from vitok.models.baselines import build_autoencoder_kl

    vae = build_autoencoder_kl(TINY_AUTOENCODER_KL).eval()  # downsampling factor 2
    for shape in ((1, 3, 5, 7), (1, 3, 1, 1), (2, 3, 3, 9, 5)):
        with torch.no_grad():
            out = vae(torch.rand(shape) * 2 - 1)
        assert out.recon.shape == shape
        assert out.latent.shape == vae.latent_shape(shape)
    assert vae.gmacs((1, 5, 7)) == vae.gmacs((1, 6, 8)) > 0  # counted at the padded size


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: LPIPS on the device, pixels on the CPU")
def test_lpips_on_the_gpu_scores_pixels_from_the_cpu() -> None:
    x = smooth_image(40, 40)
    on_cpu = item_scores(x, (x + 0.05).clamp(-1, 1), LPIPS("alex", pretrained=False))
    torch.manual_seed(0)
    lpips = LPIPS("alex", pretrained=False)
    torch.manual_seed(0)
    same = LPIPS("alex", pretrained=False)
    assert abs(item_scores(x, (x + 0.05).clamp(-1, 1), lpips.cuda())["lpips"]
               - item_scores(x, (x + 0.05).clamp(-1, 1), same)["lpips"]) < 1e-4
    assert set(on_cpu) == {"psnr", "ssim", "lpips"}


def test_a_clip_too_large_at_the_requested_size_is_skipped_before_decoding(tmp_path, capsys) -> None:
    """20 frames at 4000x4000 would be 3.6 GiB of input alone: the file is skipped with the sizes
    and the way out named, before any frame is decoded; the same clip with --frames fits."""
    from vitok.reconstruct import MAX_CLIP_PIXELS, check_clip_pixels

    io.save_video(torch.zeros(3, 20, 32, 32), tmp_path / "in" / "clip.mp4")
    model = ViTok.from_preset("N-N/2x8").eval()
    scores, skipped = reconstruct_all(model, [tmp_path / "in" / "clip.mp4"], tmp_path / "out", size=(4000, 4000))
    assert not scores and "20 frames at 4000x4000 are 320M pixels" in next(iter(skipped.values()))
    assert "give --frames N or a smaller --size" in capsys.readouterr().err
    check_clip_pixels(tmp_path / "clip.mp4", 16, (4096, 4096))  # exactly the limit passes
    assert MAX_CLIP_PIXELS == 16 * 4096 * 4096
    with pytest.raises(ValueError, match="above the limit"):
        check_clip_pixels(tmp_path / "clip.mp4", 17, (4096, 4096))
