"""The diffusers drop-in: AutoencoderKL idioms, diffusers-format round trips, a real DiTPipeline."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")

from vitok import ViTok
from vitok.integrations.diffusers import AutoencoderViTok, scalar_scaling


def tiny_vitok() -> ViTok:
    model = ViTok.from_preset("N-N/8", latent_channels=4).eval()
    model.set_latent_stats(torch.tensor([0.1, -0.2, 0.0, 0.3]), torch.tensor([0.5, 1.0, 2.0, 0.8]))
    return model


def test_autoencoder_kl_idioms_match_vitok() -> None:
    model = tiny_vitok()
    vae = AutoencoderViTok.from_vitok(model).eval()
    x = torch.rand(2, 3, 40, 24) * 2 - 1
    with torch.no_grad():
        dist = vae.encode(x).latent_dist
        posterior = model.encode_posterior(x)
        assert torch.equal(dist.mode(), posterior.mean) and torch.equal(dist.logvar, posterior.logvar)
        z = dist.sample(generator=torch.Generator().manual_seed(0))
        assert z.shape == (2, 4, 5, 3)
        assert torch.equal(vae.decode(z).sample, model.decode(z))
        assert torch.equal(vae(x).sample, model(x).recon)
        video = ViTok.from_preset("N-N/2x8").eval()
        clip = torch.rand(1, 3, 4, 16, 16) * 2 - 1
        assert torch.equal(AutoencoderViTok.from_vitok(video)(clip).sample, video(clip).recon)
    vae.enable_tiling()
    vae.enable_slicing()
    vae.enable_gradient_checkpointing()
    assert vae.use_tiling and vae.use_slicing and vae.is_gradient_checkpointing  # diffusers' flags
    vae.disable_tiling()
    vae.disable_slicing()
    vae.disable_gradient_checkpointing()
    assert not (vae.use_tiling or vae.use_slicing or vae.is_gradient_checkpointing)
    vae.use_tiling, vae.use_slicing = True, True  # the flags are settable, as on AutoencoderKL
    assert vae.use_tiling and vae.use_slicing
    with pytest.raises(TypeError, match="use_tiling"):
        vae.use_tiling = "yes"
    assert vae.config.latents_std == pytest.approx([0.5, 1.0, 2.0, 0.8])
    # the scalar scaling pipelines apply, from the stored statistics (scalar_scaling is checked on its own below)
    scale, shift = scalar_scaling([0.1, -0.2, 0.0, 0.3], [0.5, 1.0, 2.0, 0.8])
    assert (vae.config.scaling_factor, vae.config.shift_factor) == pytest.approx((scale, shift))
    assert abs(scale - 1) > 0.1 and abs(shift) > 0.01  # not the defaults


def test_scalar_scaling_normalises_the_pooled_latent() -> None:
    mean, std = [0.1, -0.2, 0.0, 0.3], [0.5, 1.0, 2.0, 0.8]
    scale, shift = scalar_scaling(mean, std)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 4, generator=g) * torch.tensor(std) + torch.tensor(mean)
    scaled = (z - shift) * scale
    assert scaled.mean().item() == pytest.approx(0, abs=0.02) and scaled.std().item() == pytest.approx(1, abs=0.02)
    assert scalar_scaling(None, None) == (1.0, 0.0)


def test_diffusers_format_round_trip_is_bit_identical(tmp_path) -> None:
    model = tiny_vitok()
    vae = AutoencoderViTok.from_vitok(model)
    vae.save_pretrained(tmp_path / "diffusers")
    assert (tmp_path / "diffusers" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = AutoencoderViTok.from_pretrained(tmp_path / "diffusers")
    back = loaded.to_vitok()
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    assert back.config == model.config
    back.save_pretrained(tmp_path / "vitok")
    again = ViTok.from_pretrained(tmp_path / "vitok")
    assert all(torch.equal(again.state_dict()[k], v) for k, v in model.state_dict().items())


def test_bf16_keeps_the_float32_parts_through_every_diffusers_path(tmp_path) -> None:
    def dtypes(model: ViTok) -> dict[str, torch.dtype]:
        return {n: t.dtype for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_floating_point()}

    tiny_vitok().save_pretrained(tmp_path / "vitok", dtype=torch.bfloat16)
    bf16 = ViTok.from_pretrained(tmp_path / "vitok", dtype=torch.bfloat16)
    reference = dtypes(bf16)  # vitok's own bf16 rules: the fp32_modules and the latent statistics stay float32
    kept = {n for n, d in reference.items() if d == torch.float32}
    assert {"latent_mean", "latent_std"} <= kept and any(n.startswith("bottleneck.") for n in kept)
    assert any(n.startswith("decoder_out.") for n in kept) and torch.bfloat16 in reference.values()
    assert dtypes(AutoencoderViTok.from_vitok(bf16).model) == reference  # not everything cast to bf16
    assert dtypes(AutoencoderViTok.from_vitok(bf16).to_vitok()) == reference
    AutoencoderViTok.from_vitok(tiny_vitok()).save_pretrained(tmp_path / "diffusers")
    loaded = AutoencoderViTok.from_pretrained(tmp_path / "diffusers", torch_dtype=torch.bfloat16)
    assert dtypes(loaded.model) == reference  # diffusers alone left it all float32 (the latent stats come first)
    full = AutoencoderViTok.from_pretrained(tmp_path / "diffusers")
    assert set(dtypes(full.model).values()) == {torch.float32}
    with torch.no_grad():
        x = torch.rand(1, 3, 16, 16) * 2 - 1
        assert loaded.encode(x).latent_dist.mode().dtype == torch.float32  # latents in full precision


def test_bf16_saving_keeps_the_latent_statistics_exact(tmp_path) -> None:
    model = ViTok.from_preset("N-N/8", latent_channels=2)
    model.set_latent_stats(torch.tensor([0.1234567, -0.7654321]), torch.tensor([1.2345678, 0.3333333]))
    model.save_pretrained(tmp_path / "m", dtype=torch.bfloat16)
    loaded = ViTok.from_pretrained(tmp_path / "m")
    assert torch.equal(loaded.latent_mean, model.latent_mean) and torch.equal(loaded.latent_std, model.latent_std)
    assert loaded.decoder_out.weight.dtype == torch.float32  # parameters load back as float32


def test_dit_pipeline_runs_with_the_vitok_vae_and_decodes_like_vitok() -> None:
    from diffusers import DDIMScheduler, DiTPipeline, DiTTransformer2DModel

    model = tiny_vitok()
    vae = AutoencoderViTok.from_vitok(model).eval()
    transformer = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
                                        num_layers=1, sample_size=4, patch_size=2, norm_num_groups=4).eval()
    pipe = DiTPipeline(transformer=transformer, vae=vae, scheduler=DDIMScheduler())
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    decode = vae.decode

    def recording_decode(z, *args, **kwargs):
        out = decode(z, *args, **kwargs)
        seen.append((z.clone(), out.sample.clone()))
        return out

    vae.decode = recording_decode
    images = pipe(class_labels=[1, 7], num_inference_steps=2, guidance_scale=1.0,
                  generator=torch.Generator().manual_seed(0), output_type="pt").images
    assert images.shape == (2, 3, 32, 32) and len(seen) == 1
    latents, decoded = seen[0]
    with torch.no_grad():
        assert torch.equal(model.decode(latents), decoded)  # the pipeline's decode is vitok's own
    assert torch.allclose(images, (decoded / 2 + 0.5).clamp(0, 1))


def test_cli_export_to_diffusers_format_and_back(tmp_path, capsys) -> None:
    from vitok.cli import main

    model = tiny_vitok()
    model.save_pretrained(tmp_path / "trained")
    assert main(["export", "--model", str(tmp_path / "trained"), "--out", str(tmp_path / "diffusers"),
                 "--name", "tiny", "--precision", "fp32", "--format", "diffusers"]) == 0
    assert "diffusers format" in capsys.readouterr().out
    vae = AutoencoderViTok.from_pretrained(tmp_path / "diffusers")
    assert (tmp_path / "diffusers" / "README.md").is_file()
    assert all(torch.equal(vae.model.state_dict()[k], v) for k, v in model.state_dict().items())
    assert main(["export", "--model", str(tmp_path / "diffusers"), "--out", str(tmp_path / "vitok"),
                 "--name", "tiny", "--precision", "fp32"]) == 0
    back = ViTok.from_pretrained(tmp_path / "vitok")
    assert all(torch.equal(back.state_dict()[k], v) for k, v in model.state_dict().items())
    assert main(["export", "--model", str(tmp_path / "trained"), "--out", str(tmp_path / "bf16"),
                 "--name", "tiny", "--precision", "bf16", "--format", "diffusers"]) == 0
    stored = AutoencoderViTok.from_pretrained(tmp_path / "bf16")
    assert torch.equal(stored.model.latent_mean, model.latent_mean)  # the statistics are not rounded to bf16
    card = (tmp_path / "bf16" / "README.md").read_text()
    assert "AutoencoderViTok.from_pretrained" in card and "ViTok.from_pretrained(...)`;" not in card


def test_import_vitok_needs_no_optional_dependency() -> None:
    """`import vitok`, building a model, the metrics API and the CLI parser work with every extra
    (diffusers, huggingface_hub, onnx, onnxruntime, onnxscript, av, tensorboard, webdataset,
    matplotlib, scipy) made unimportable."""
    import subprocess
    import sys

    code = """
import importlib.abc, sys
BLOCKED = {"diffusers", "huggingface_hub", "onnx", "onnxruntime", "onnxscript", "av", "tensorboard",
           "webdataset", "matplotlib", "scipy"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
import torch, vitok
from vitok import ViTok
from vitok.metrics import FrechetMetric
from vitok.cli import build_parser
model = ViTok.from_preset("N-N/8")
print(tuple(model(torch.zeros(1, 3, 16, 16)).recon.shape), FrechetMetric.__name__, bool(build_parser()))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "(1, 3, 16, 16) FrechetMetric True" in result.stdout


def test_cli_reads_diffusers_folders_where_it_can(media_dir, tmp_path, capsys) -> None:
    """reconstruct / eval take a diffusers AutoencoderViTok or AutoencoderKL folder (a conv VAE baseline
    measured with the same pipeline); commands that need a vitok tokenizer name the class they got."""
    import json

    from tests.test_train import TINY_AUTOENCODER_KL
    from vitok.cli import main
    from vitok.models.baselines import build_autoencoder_kl

    model = tiny_vitok()
    AutoencoderViTok.from_vitok(model).save_pretrained(tmp_path / "vitok-diffusers")
    build_autoencoder_kl(TINY_AUTOENCODER_KL).save_pretrained(tmp_path / "akl")
    image = str(media_dir / "a.png")

    def reconstruct(model_dir: str, out: str, *extra: str) -> int:
        return main(["reconstruct", image, "--model", model_dir, "--out", str(tmp_path / out), *extra])

    assert reconstruct(str(tmp_path / "vitok-diffusers"), "r1") == 0
    assert reconstruct(str(tmp_path / "vitok"), "r2") == 2  # not saved yet: a clear error
    model.save_pretrained(tmp_path / "vitok")
    assert reconstruct(str(tmp_path / "vitok"), "r2") == 0
    same = [json.loads((tmp_path / r / "scores.json").read_text())["items"][0]["psnr"] for r in ("r1", "r2")]
    assert same[0] == same[1]  # the diffusers folder is the same model
    assert reconstruct(str(tmp_path / "akl"), "r3", "--size", "32") == 0
    scores = json.loads((tmp_path / "r3" / "scores.json").read_text())["items"][0]
    assert scores["grid"] > 0 and "(32, 32)" in capsys.readouterr().out  # grid at the VAE's downsampling period
    assert main(["eval", str(media_dir), "--kind", "image", "--model", str(tmp_path / "akl"), "--size", "32",
                 "--metrics", "psnr,grid", "--out", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "results.json").read_text())["samples"] == 2
    capsys.readouterr()
    for command in (["demo"], ["bench", "--size", "32"], ["export", "--out", str(tmp_path / "x"), "--name", "x"]):
        assert main([*command, "--model", str(tmp_path / "akl")]) == 2
        assert "is a diffusers AutoencoderKL folder" in capsys.readouterr().err
    assert main(["flops", "--model", str(tmp_path / "vitok-diffusers")]) == 0  # the tokenizer's own config
    assert model.config.name in capsys.readouterr().out
    assert reconstruct(str(tmp_path / "akl"), "r5", "--size", "33") == 0  # padded to the factor, cropped back
    assert "(33, 33)" in capsys.readouterr().out
    config = json.loads((tmp_path / "akl" / "config.json").read_text())
    for bad, message in (({**config, "block_out_channels": [16, 32]}, "cannot load this diffusers AutoencoderKL"),
                         ({**config, "_class_name": "UNet2DModel"}, "is a diffusers UNet2DModel folder: this command"),
                         ({**config, "_class_name": None}, "names no diffusers class"),
                         ([1, 2], "names no diffusers class")):
        (tmp_path / "akl" / "config.json").write_text(json.dumps(bad))
        assert reconstruct(str(tmp_path / "akl"), "r4") == 2
        assert message in capsys.readouterr().err.splitlines()[-1]
    (tmp_path / "akl" / "config.json").write_text("{not json")
    assert reconstruct(str(tmp_path / "akl"), "r4") == 2
    assert "names no diffusers class" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert reconstruct(str(tmp_path / "empty"), "r4") == 2
    assert "is a folder without a model" in capsys.readouterr().err
