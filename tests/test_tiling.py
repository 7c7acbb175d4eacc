"""Tiled / chunked encode and decode: windows, blend weights, exactness, any size, the threshold."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import smooth_image
from vitok import ViTok
from vitok.models.tiling import TilingConfig, ramp_weights, spans, tiled_apply


@pytest.mark.parametrize(("length", "tile", "overlap"), [(10, 4, 1), (40, 16, 4), (17, 16, 4), (5, 16, 4),
                                                         (100, 7, 0), (33, 8, 7)])
def test_spans_cover_overlap_and_end_flush(length: int, tile: int, overlap: int) -> None:
    windows = spans(length, tile, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == length
    sizes = [e - s for s, e in windows]
    assert max(sizes) <= min(tile, length) and max(sizes) - min(sizes) <= 1  # balanced, none over the tile
    for (s0, e0), (s1, _) in zip(windows, windows[1:]):
        assert s1 > s0 and e0 - s1 == min(overlap, tile - 1)  # the overlap stays at its target
    if length > tile:  # the fewest windows that keep that overlap
        least = min(overlap, tile - 1)
        assert len(windows) == -(-(length - least) // (tile - least))


@pytest.mark.parametrize("scale", [1, 8])
def test_ramp_weights_are_a_partition_of_unity(scale: int) -> None:
    windows = spans(40, 16, 4)
    total = torch.zeros(40 * scale, dtype=torch.float64)
    for i, (s, e) in enumerate(windows):
        total[s * scale:e * scale] += ramp_weights(windows, i, scale)
    assert torch.allclose(total, torch.ones_like(total))


def test_tiled_apply_is_exact_for_a_local_function() -> None:
    """A per-token function (pool p x p -> token, token -> p x p pixels) gives identical results
    tiled and untiled: the blend itself adds no error."""
    x = torch.randn(2, 3, 40, 56)
    encode = lambda v: torch.nn.functional.avg_pool2d(v, 8) * 2 + 1  # noqa: E731
    windows = [spans(5, 2, 1), spans(7, 3, 1)]
    assert torch.allclose(tiled_apply(encode, x, windows, [8, 8], [1, 1], 3), encode(x), atol=1e-6)
    decode = lambda z: z.repeat_interleave(8, -1).repeat_interleave(8, -2) - 1  # noqa: E731
    z = torch.randn(2, 3, 2, 5, 7)  # video latent: t, h, w
    windows = [spans(2, 1, 0), spans(5, 2, 1), spans(7, 3, 1)]
    expected = decode(z).repeat_interleave(4, 2)
    out = tiled_apply(lambda v: decode(v).repeat_interleave(4, 2), z, windows, [1, 1, 1], [4, 8, 8], 3)
    assert torch.allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 60, 44), (1, 3, 13, 70), (2, 3, 5, 40, 30), (1, 3, 3, 17, 9)])
def test_tiled_equals_untiled_when_the_input_fits_in_one_window(shape: tuple[int, ...]) -> None:
    name = "N-N/8" if len(shape) == 4 else "N-N/2x8"
    model = ViTok.from_preset(name).eval()
    model.enable_tiling(tile=128, frames=16)
    x = torch.rand(shape) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x, tiled=False).recon, model(x, tiled=True).recon)


@pytest.mark.parametrize("shape", [(2, 3, 150, 101), (1, 3, 23, 40, 30)])
def test_tiled_shapes_any_size(shape: tuple[int, ...]) -> None:
    video = len(shape) == 5
    model = ViTok.from_preset("N-N/2x8" if video else "N-N/8").eval()
    model.enable_tiling(tile=16 if video else 32, frames=4)
    x = torch.rand(shape) * 2 - 1
    with torch.no_grad():
        z = model.encode(x, tiled=True)
        assert z.shape == model.encode(x, tiled=False).shape == model.latent_shape(shape)
        recon = model.decode(z, size=shape[2:], tiled=True)
        assert recon.shape == x.shape and torch.isfinite(recon).all()


def test_automatic_threshold_and_slicing() -> None:
    model = ViTok.from_preset("N-N/8").eval()
    model.enable_tiling(tile=16, threshold=4.0)  # a window is 2 x 2 tokens
    calls = []
    original = model._decode
    model._decode = lambda z: calls.append(tuple(z.shape)) or original(z)
    with torch.no_grad():
        model.decode(torch.randn(1, 16, 4, 4))  # 16 tokens = 4 windows: not above the threshold
        assert calls == [(1, 16, 4, 4)]
        calls.clear()
        model.decode(torch.randn(1, 16, 4, 5))  # 20 tokens > 16: tiled
        assert len(calls) > 1 and all(c[-2] <= 2 and c[-1] <= 2 for c in calls)
        calls.clear()
        model.disable_tiling()
        model.decode(torch.randn(1, 16, 8, 8))
        assert calls == [(1, 16, 8, 8)]
        calls.clear()
        model.enable_slicing(1)
        model.decode(torch.randn(3, 16, 2, 2))
        assert calls == [(1, 16, 2, 2)] * 3
    with pytest.raises(ValueError, match="overlap"):
        TilingConfig(overlap=1.0)
    with pytest.raises(ValueError, match="threshold"):
        model.enable_tiling(threshold=0.5)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"batch_slice": True}, TypeError), ({"batch_slice": 1.5}, TypeError), ({"batch_slice": "2"}, TypeError),
    ({"batch_slice": 0}, ValueError), ({"tile": (16,)}, TypeError), ({"tile": ("16", 16)}, TypeError),
    ({"overlap": "x"}, TypeError), ({"overlap": float("nan")}, ValueError), ({"threshold": float("nan")}, ValueError),
    ({"frames": 2.0}, TypeError), ({"frames": 0}, ValueError),
])
def test_tiling_config_checks_types_naming_the_field(kwargs: dict, error: type) -> None:
    """Fuzz campaign kinds: enable_slicing('2') / (1.5) raised raw TypeErrors deep in the encoder,
    enable_slicing(True) was accepted."""
    with pytest.raises(error, match=f"tiling {next(iter(kwargs))}"):
        TilingConfig(**kwargs)
    model = ViTok.from_preset("N-N/8")
    if "batch_slice" in kwargs:
        with pytest.raises(error, match="batch_slice"):
            model.enable_slicing(kwargs["batch_slice"])


def test_tiled_is_close_to_untiled_on_inputs_of_several_windows() -> None:
    """A window sees less context than the whole input, so the results differ, but only by that:
    with the shipped model on 8 x 11 overlapping windows of 4 x 4 tokens, tiled and whole agree to 33 dB, where
    a blank output scores 14.5 dB and the tiled output shifted by one patch 12.9 dB (a misplaced
    or unnormalised blend would be that far off)."""
    from vitok.metrics.psnr import psnr

    model = ViTok.from_pretrained("vitok-tiny")
    model.enable_tiling(tile=32)
    x = smooth_image(192, 272)[None]  # 24 x 34 tokens
    assert [len(w) for w in model.tile_windows((1, 24, 34), False)] == [8, 11]  # overlapping windows
    video_model = ViTok.from_preset("N-N/2x8").eval()
    video_model.enable_tiling(frames=8)
    clip = torch.stack([smooth_image(32, 32, 3).roll(i, dims=-1) for i in range(40)], dim=1)[None]
    with torch.no_grad():
        tiled, whole = model(x, tiled=True).recon.clamp(-1, 1), model(x, tiled=False).recon.clamp(-1, 1)
        chunked, unchunked = video_model(clip, tiled=True).recon, video_model(clip, tiled=False).recon
    assert psnr(tiled, whole) > 30 > psnr(torch.zeros_like(whole), whole) + 10
    assert psnr(tiled.roll(8, dims=-1), whole) < 20
    assert psnr(chunked.clamp(-1, 1), unchunked.clamp(-1, 1)) > 40


def test_seam_ratio_sees_a_hard_seam_and_not_a_blended_one() -> None:
    from vitok.metrics.seams import seam_ratio, window_borders

    torch.manual_seed(0)
    x = torch.zeros(3, 64, 64)
    noise = torch.randn(3, 64, 64) * 0.1
    hard = noise.clone()
    hard[:, :, 32:] += 1.0  # the right half's error is offset: a seam at column 32
    assert seam_ratio(x, hard, {-1: {32}}, {-1: 8}) > 5
    assert 0.7 < seam_ratio(x, noise, {-1: {32}}, {-1: 8}) < 1.3
    assert window_borders([(0, 4), (3, 7)], 8) == {24, 32}
    with pytest.raises(ValueError, match="multiples"):
        seam_ratio(x, hard, {-1: {33}}, {-1: 8})


def test_chunk_borders_do_not_show_in_time_with_the_shipped_model() -> None:
    """vitok-tiny on a moving clip, chunked: the frame-to-frame error jump at chunk borders is no
    larger than at the other tubelet borders (measured 1.05 here; the whole clip gives 1.06 at the
    same frames)."""
    from vitok.metrics.seams import seam_ratio, window_borders

    model = ViTok.from_pretrained("vitok-tiny")
    clip = torch.stack([smooth_image(64, 64, 3).roll(i, dims=-1) for i in range(48)], dim=1)[None]
    q = model.config.tubelet_size
    borders = window_borders(model.tile_windows(model.latent_grid((48, 64, 64)), True)[0], q)
    assert borders  # 12 tubelets in chunks of 4
    with torch.no_grad():
        chunked = model(clip, tiled=True).recon.clamp(-1, 1)
    assert seam_ratio(clip[0] * 127.5, chunked[0] * 127.5, {1: borders}, {1: q}) < 1.15


def test_cli_reconstructs_a_large_image_whole_through_tiles(tmp_path: Path, capsys) -> None:
    from vitok import io
    from vitok.cli import main

    io.save_image(smooth_image(300, 420, 5), tmp_path / "large.png")
    ViTok.from_preset("N-N/8", image_size=(32, 32)).save_pretrained(tmp_path / "model")  # 32 px windows
    assert main(["reconstruct", str(tmp_path / "large.png"), "--model", str(tmp_path / "model"),
                 "--out", str(tmp_path / "out")]) == 0
    assert "(300, 420)" in capsys.readouterr().out
    assert io.load_image(tmp_path / "out" / "large_recon.png").shape == (3, 300, 420)


def test_the_baseline_wrapper_tiles_large_inputs_through_diffusers(tmp_path: Path) -> None:
    from diffusers import AutoencoderKL

    from vitok.models.baselines import load_sd_vae

    AutoencoderKL(block_out_channels=[8, 8], down_block_types=["DownEncoderBlock2D"] * 2,
                  up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=1, latent_channels=4,
                  norm_num_groups=4, sample_size=32).save_pretrained(tmp_path / "vae")
    vae = load_sd_vae(tmp_path / "vae")
    assert vae.vae.use_tiling  # on by default, like ViTok's automatic tiling
    calls = []
    original = vae.vae.tiled_decode
    vae.vae.tiled_decode = lambda *a, **k: calls.append(1) or original(*a, **k)
    with torch.no_grad():
        out = vae(smooth_image(48, 80)[None]).recon
    assert out.shape == (1, 3, 48, 80) and calls  # larger than 32 px: diffusers' tiled path ran
    vae.enable_tiling(64)
    assert vae.vae.tile_latent_min_size == 32
    with pytest.raises(ValueError, match="multiple of 2"):
        vae.enable_tiling(33)
    vae.disable_tiling()
    assert not vae.vae.use_tiling


# ---------------------------------------------------------------- found by a review as a new user
def test_tiled_must_be_none_or_a_bool() -> None:
    model = ViTok.from_preset("N-N/8").eval()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    for bad in ("False", "auto", 0, []):
        with pytest.raises(TypeError, match="tiled"):
            model.encode(x, tiled=bad)
        with pytest.raises(TypeError, match="tiled"):
            model.decode(torch.randn(1, 16, 2, 2), tiled=bad)


def test_a_tile_is_at_least_one_patch_and_other_switches_check_their_values() -> None:
    model = ViTok.from_preset("N-N/8")  # p = 8
    for tile in (4, (16, 1)):
        with pytest.raises(ValueError, match="tile"):
            model.enable_tiling(tile=tile)
    model.enable_tiling(tile=[24, 16])
    assert model.tiling.tile == (24, 16)  # a list becomes the frozen config's tuple
    with pytest.raises(TypeError, match="batch_slice"):
        model.enable_slicing(None)
    with pytest.raises(TypeError, match="show_progress"):
        model.show_progress("x")
    with pytest.raises(ValueError, match="frame_overlap must be in"):
        model.enable_tiling(frame_overlap=1)
    with pytest.raises(ValueError, match=r"must be a finite number, got nan"):
        model.enable_tiling(overlap=float("nan"))


def test_a_nonzero_overlap_never_rounds_to_no_overlap() -> None:
    from vitok.models.tiling import overlap_tokens

    assert overlap_tokens(0.1875, 16) == 3 and overlap_tokens(0.25, 4) == 1 and overlap_tokens(0.25, 2) == 1
    assert overlap_tokens(0.1875, 6) == 2 and overlap_tokens(0.0, 16) == 0
    model = ViTok.from_preset("N-N/2x8")
    model.enable_tiling(tile=16, frames=4)  # 2 x 2 tokens, chunks of 2 tubelets
    for axis in model.tile_windows((10, 6, 6), video=True):
        assert all(e0 - s1 >= 1 for (_, e0), (s1, _) in zip(axis, axis[1:]))


def test_enable_tiling_keeps_the_settings_it_is_not_given() -> None:
    model = ViTok.from_preset("N-N/8")
    model.enable_tiling(tile=24, overlap=0.5, threshold=2.0)
    model.disable_tiling()
    model.enable_tiling()
    assert model.tiling.enabled and model.tiling.tile == (24, 24) and model.tiling.overlap == 0.5
    assert model.tiling.threshold == 2.0
    model.enable_tiling(frames=8)
    assert model.tiling.tile == (24, 24) and model.tiling.frames == 8


def test_the_automatic_threshold_counts_a_video_s_tokens_in_space_and_time_together() -> None:
    model = ViTok.from_preset("N-N/2x8")
    model.enable_tiling(tile=16, frames=4, threshold=4.0)  # a window: 2 x 2 tokens x 2 tubelets = 8
    assert not model.is_large((2, 4, 4), video=True)  # 32 tokens = 4 windows
    assert model.is_large((4, 4, 4), video=True)  # 64 tokens: neither axis alone exceeds 4x, together they do
    assert model.is_large((1, 4, 5), video=False) and not model.is_large((1, 4, 4), video=False)
