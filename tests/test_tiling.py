"""Tiled / chunked encode and decode: windows, blend weights, exactness, any size, the threshold."""

from __future__ import annotations

import pytest
import torch

from vitok import ViTok
from vitok.models.tiling import TilingConfig, ramp_weights, spans, tiled_apply


@pytest.mark.parametrize(("length", "tile", "overlap"), [(10, 4, 1), (40, 16, 4), (17, 16, 4), (5, 16, 4),
                                                         (100, 7, 0), (33, 8, 7)])
def test_spans_cover_overlap_and_end_flush(length: int, tile: int, overlap: int) -> None:
    windows = spans(length, tile, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == length
    assert all(e - s == min(tile, length) for s, e in windows)
    for (s0, e0), (s1, _) in zip(windows, windows[1:]):
        assert s1 > s0 and e0 - s1 >= min(overlap, tile - 1)


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
