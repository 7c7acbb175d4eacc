"""bf16-weights and compiled inference (vitok.models.inference) and the CLI's --precision / --compile."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import smooth_image
from vitok import ViTok
from vitok.cli import main
from vitok.metrics.psnr import psnr
from vitok.models.inference import (
    CompileStats,
    autocast,
    cast_for_inference,
    compile_model,
    prepare_for_inference,
)


def trained_like(preset: str = "N-N/8", **overrides: object) -> ViTok:
    """A random model whose conv tail is not zero (a fresh tail adds nothing, hiding its dtype)."""
    torch.manual_seed(0)
    model = ViTok.from_preset(preset, **overrides).eval()
    if model.conv_tail is not None:
        torch.nn.init.normal_(model.conv_tail.conv_out.weight, std=0.02)
    return model


@pytest.mark.parametrize("head", ["linear", "conv"])
def test_bf16_weights_match_fp32_within_tolerance(head: str) -> None:
    model = trained_like(head=head, head_channels=8, head_blocks=1)
    x = smooth_image(40, 56)[None] * 0.9
    bf16 = cast_for_inference(copy.deepcopy(model), torch.bfloat16)
    dtypes = {name: p.dtype for name, p in bf16.named_parameters()}
    kept = {name for name, dtype in dtypes.items() if dtype == torch.float32}
    assert kept and all(name.startswith(bf16.fp32_modules) for name in kept)
    assert dtypes["encoder.blocks.0.attn.qkv.weight"] == torch.bfloat16
    assert bf16.latent_std.dtype == torch.float32 and not any(p.requires_grad for p in bf16.parameters())
    with torch.no_grad():
        ref, out = model(x), bf16(x)
    assert out.latent.dtype == torch.float32 and out.recon.dtype == torch.float32 and out.recon.shape == x.shape
    # bf16 rounds activations to 8 bits of mantissa: the reconstructions agree to ~40 dB, far above
    # what a tokenizer reconstructs (20-35 dB), so the PSNR against the input is unchanged
    assert psnr(out.recon, ref.recon).item() > 35
    assert abs(psnr(out.recon, x).item() - psnr(ref.recon, x).item()) < 0.1
    with torch.no_grad():  # the tiled path and the latent API in bf16 too
        tiled = bf16.decode(bf16.encode(x, tiled=True), size=x.shape[-2:], tiled=True)
    assert tiled.dtype == torch.float32 and psnr(tiled, ref.recon).item() > 30


def test_from_pretrained_with_bf16_keeps_the_float32_parts(tmp_path: Path) -> None:
    model = trained_like()
    model.save_pretrained(tmp_path / "m")
    loaded = ViTok.from_pretrained(tmp_path / "m", dtype=torch.bfloat16)
    assert loaded.dtype == torch.bfloat16 and loaded.bottleneck.proj.weight.dtype == torch.float32
    x = smooth_image(32, 32)[None]
    with torch.no_grad():
        assert psnr(loaded(x).recon, model(x).recon).item() > 35


def test_cast_and_prepare_refuse_bad_arguments() -> None:
    model = trained_like()
    with pytest.raises(TypeError, match="dtype"):
        cast_for_inference(model, "bf16")
    with pytest.raises(ValueError, match="precision"):
        prepare_for_inference(model, "fp16")
    with pytest.raises(TypeError, match="compile_targets"):
        compile_model(torch.nn.Linear(2, 2))
    assert autocast("fp32", "cpu").__class__.__name__ == "nullcontext"


def test_compiled_inference_equals_eager_and_compiles_a_few_times_for_many_sizes() -> None:
    """The real compiler (inductor) on the smallest preset: equal to eager within float32 rounding;
    three sizes give at most two graphs per target (automatic dynamic shapes), never one per size."""
    torch._dynamo.reset()
    model = trained_like()
    compiled = compile_model(copy.deepcopy(model))
    stats = CompileStats()
    for h, w in [(32, 32), (40, 48), (24, 56)]:
        x = smooth_image(h, w)[None]
        with torch.no_grad(), stats.track():
            out = compiled(x).recon
        with torch.no_grad():
            torch.testing.assert_close(out, model(x).recon, rtol=1e-4, atol=1e-4)
    assert 2 <= stats.graphs <= 2 * len(model.compile_targets) and stats.seconds > 0
    assert "compiled" in stats.summary()
    torch._dynamo.reset()


@pytest.fixture
def quick_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.compile with the eager backend: the CLI's --compile path (dynamo tracing, graph
    counting) without minutes of C++ code generation per test."""
    torch._dynamo.reset()
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    yield
    torch._dynamo.reset()


def test_cli_precision_and_compile_run_end_to_end(media_dir: Path, tmp_path: Path, capsys, quick_compile) -> None:
    trained_like().save_pretrained(tmp_path / "model")
    model = str(tmp_path / "model")
    assert main(["reconstruct", str(media_dir / "a.png"), "--model", model, "--precision", "bf16", "--compile",
                 "--out", str(tmp_path / "rec")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "rec" / "a_recon.png").is_file() and "compiled" in out and "compiling" in out
    assert main(["eval", str(media_dir), "--model", model, "--kind", "image", "--size", "32", "--metrics",
                 "psnr", "--precision", "bf16", "--compile", "--out", str(tmp_path / "ev")]) == 0
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert results["precision"] == "bf16" and results["compile_seconds"] > 0 and results["samples"] > 0
    assert main(["bench", "--model", model, "--size", "32", "--repeats", "1", "--precision", "bf16", "--compile"]) == 0
    table = capsys.readouterr().out
    assert " bf16 " in table and " bf16+compile " in table and "speed vs fp32" not in table


def test_cache_latents_in_bf16_keeps_the_saved_tokenizer_in_float32(tmp_path: Path, capsys) -> None:
    from vitok.io import save_image

    for cls in ("a", "b"):
        for i in range(2):
            (tmp_path / "data" / cls).mkdir(parents=True, exist_ok=True)
            save_image(smooth_image(32, 32, seed=i + (cls == "b") * 5), tmp_path / "data" / cls / f"{i}.png")
    trained_like().save_pretrained(tmp_path / "model")
    assert main(["cache-latents", str(tmp_path / "data"), "--model", str(tmp_path / "model"), "--size", "32",
                 "--precision", "bf16", "--out", str(tmp_path / "lat")]) == 0
    stats = json.loads((tmp_path / "lat" / "stats.json").read_text())
    assert stats["precision"] == "bf16" and stats["samples"] == 4
    saved = ViTok.from_pretrained(tmp_path / "lat" / "tokenizer")
    reference = trained_like()
    assert torch.equal(saved.encoder.blocks[0].attn.qkv.weight, reference.encoder.blocks[0].attn.qkv.weight)
