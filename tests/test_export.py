"""Compile and export: torch.compile(fullgraph=True) without graph breaks on encode / decode / the
training forward, torch.export with dynamic batch, time and spatial sizes (also sizes that need
padding), and the ONNX export (dynamo exporter) matching eager in onnxruntime."""

from __future__ import annotations

import pytest
import torch

from vitok import ViTok
from vitok.integrations.graph_export import Encoder, Reconstructor, dynamic_shapes


@pytest.fixture(scope="module")
def image_model() -> ViTok:
    torch.manual_seed(0)
    return ViTok.from_preset("N-N/8", head="conv", head_channels=8, head_blocks=1).eval()


@pytest.fixture(scope="module")
def video_model() -> ViTok:
    torch.manual_seed(0)
    return ViTok.from_preset("N-N/2x8").eval()


@pytest.mark.parametrize("video", [False, True])
def test_compile_fullgraph_has_no_graph_breaks(video: bool, image_model, video_model) -> None:
    model = video_model if video else image_model
    x = torch.rand(2, 3, *((4,) if video else ()), 24, 40) * 2 - 1
    noise = torch.randn(model.latent_shape(tuple(x.shape)))
    train_forward = lambda x: model(x, sample=True, noise=noise, tiled=False).recon  # noqa: E731
    calls = {
        "encode": (lambda x: model.encode(x, tiled=False), x),
        "decode": (lambda z: model.decode(z, tiled=False), model.encode(x, tiled=False)),
        "train forward": (train_forward, x),
    }
    for name, (fn, arg) in calls.items():
        explained = torch._dynamo.explain(fn)(arg)
        assert explained.graph_break_count == 0 and explained.graph_count == 1, (name, explained.break_reasons)
        torch._dynamo.reset()
    if not video:  # fullgraph=True would raise on a break; the compiled function equals eager
        compiled = torch.compile(train_forward, fullgraph=True, backend="eager", dynamic=True)
        torch.testing.assert_close(compiled(x), train_forward(x), rtol=1e-5, atol=1e-5)
        torch._dynamo.reset()


def test_torch_export_dynamic_batch_and_sizes_with_padding(image_model, video_model) -> None:
    exported = torch.export.export(Reconstructor(image_model), (torch.rand(2, 3, 36, 44),),
                                   dynamic_shapes=dynamic_shapes("image"))
    for shape in [(1, 3, 64, 64), (3, 3, 30, 50), (2, 3, 16, 200)]:  # multiples of p and not
        x = torch.rand(shape) * 2 - 1
        with torch.no_grad():
            torch.testing.assert_close(exported.module()(x), image_model(x, tiled=False).recon, rtol=1e-5, atol=1e-5)
    exported = torch.export.export(Encoder(video_model), (torch.rand(2, 3, 5, 36, 44),),
                                   dynamic_shapes=dynamic_shapes("video"))
    for shape in [(1, 3, 3, 64, 30), (2, 3, 8, 16, 16)]:
        x = torch.rand(shape) * 2 - 1
        with torch.no_grad():
            torch.testing.assert_close(exported.module()(x), video_model.encode(x, tiled=False), rtol=1e-5, atol=1e-5)


def test_onnx_export_matches_eager_in_onnxruntime(image_model, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from vitok.cli import main

    image_model.save_pretrained(tmp_path / "model")
    assert main(["export", "--model", str(tmp_path / "model"), "--out", str(tmp_path), "--name", "tiny",
                 "--format", "onnx", "--precision", "fp32"]) == 0
    assert {"decoder.onnx", "encoder.onnx", "model.safetensors", "config.json"} <= {p.name for p in tmp_path.iterdir()}
    for shape in [(1, 3, 32, 32), (3, 3, 40, 56), (1, 3, 30, 50)]:  # other batch and sizes than exported
        assert_onnx_matches_eager(ort, tmp_path, image_model, torch.rand(shape) * 2 - 1)


def assert_onnx_matches_eager(ort, folder, model: ViTok, x: torch.Tensor) -> None:
    """encoder.onnx / decoder.onnx in ``folder``, run by onnxruntime, equal the model's eager path."""
    with torch.no_grad():
        z = model.encode(x, tiled=False)
        recon = model.decode(z, tiled=False)
    (z_onnx,) = ort.InferenceSession(str(folder / "encoder.onnx")).run(None, {"pixels": x.numpy()})
    (recon_onnx,) = ort.InferenceSession(str(folder / "decoder.onnx")).run(None, {"latent": z.numpy()})
    torch.testing.assert_close(torch.from_numpy(z_onnx), z, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(torch.from_numpy(recon_onnx), recon, rtol=1e-4, atol=1e-4)


def test_onnx_export_of_a_video_tokenizer_for_images_with_kind(video_model, image_model, tmp_path, capsys) -> None:
    """A video tokenizer exports video graphs by default (pixels (B, 3, T, H, W), said on stdout);
    ``--kind image`` gives graphs that take images (B, 3, H, W), equal to the eager image path.
    ``--kind video`` on an image tokenizer, and ``--kind`` without ``--format onnx``, are refused
    before anything is written."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from vitok.cli import main

    video_model.save_pretrained(tmp_path / "video")
    image_model.save_pretrained(tmp_path / "image")
    export = ["export", "--name", "tiny", "--precision", "fp32"]
    assert main([*export, "--model", str(tmp_path / "video"), "--out", str(tmp_path / "v"), "--format", "onnx"]) == 0
    assert "pixels (B, 3, T, H, W)" in capsys.readouterr().out
    assert main([*export, "--model", str(tmp_path / "video"), "--out", str(tmp_path / "i"), "--format", "onnx",
                 "--kind", "image"]) == 0
    assert "ONNX graphs for images: encoder.onnx takes pixels (B, 3, H, W)" in capsys.readouterr().out
    assert_onnx_matches_eager(ort, tmp_path / "i", video_model, torch.rand(2, 3, 24, 40) * 2 - 1)
    for bad, message in (([str(tmp_path / "image"), "--format", "onnx", "--kind", "video"], "an image tokenizer"),
                         ([str(tmp_path / "video"), "--kind", "image"], "it needs --format onnx")):
        assert main([*export, "--model", *bad, "--out", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_compiled_encode_with_automatic_tiling_keeps_one_graph_below_the_threshold(image_model) -> None:
    """Tiling is on by default; its size test must not make a compiled encode / decode recompile
    for every input size (only crossing the tiling threshold may). The decode check uses a
    linear-head model: torch's own conv2d shape rules add size guards to the conv tail."""
    linear = ViTok.from_preset("N-N/8").eval()
    torch._dynamo.reset()
    with torch._dynamo.config.patch(recompile_limit=2):
        encode = torch.compile(image_model.encode, fullgraph=True, dynamic=True, backend="eager")
        decode = torch.compile(linear.decode, fullgraph=True, dynamic=True, backend="eager")
        for h, w in [(72, 16), (120, 16), (168, 16), (216, 16), (264, 16), (312, 17)]:  # < 4 windows of tokens
            x = torch.rand(1, 3, h, w) * 2 - 1
            torch.testing.assert_close(encode(x), image_model.encode(x), rtol=1e-5, atol=1e-5)
            z = linear.encode(x)
            torch.testing.assert_close(decode(z), linear.decode(z), rtol=1e-5, atol=1e-5)
    torch._dynamo.reset()
