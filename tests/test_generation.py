"""Generation: DiT, diffusion objectives and samplers, latent caching, train-dit, sample, eval-gen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import REPO, smooth_image
from vitok import ViTok, io
from vitok.cli import main
from vitok.diffusion import (
    alphas_cumprod,
    ddim_sample,
    ddpm_loss,
    euler_sample,
    flow_interpolate,
    guided,
    heun_sample,
    linear_betas,
    q_sample,
)
from vitok.models.dit import DiT
from vitok.presets import DIT_SIZES, dit_config


def tiny_dit(**overrides) -> DiT:
    return DiT(dit_config("DiT-T", latent_channels=4, num_classes=3, **overrides))


@pytest.mark.parametrize("shape", [(2, 4, 6, 5), (2, 4, 3, 4, 4)])
def test_dit_shapes_for_image_and_video_latents(shape) -> None:
    model = tiny_dit()
    for block in model.blocks:  # leave adaLN-Zero so the output depends on the input
        torch.nn.init.normal_(block.ada[-1].weight, std=0.02)
    torch.nn.init.normal_(model.final.linear.weight, std=0.02)
    x = torch.randn(shape)
    out = model(x, torch.tensor([10.0, 500.0]), torch.tensor([0, 3]))
    assert out.shape == x.shape and torch.isfinite(out).all()
    with pytest.raises(ValueError, match=r"\(B, 4, \[t,\] h, w\)"):
        model(torch.randn(2, 3, 4, 4), torch.zeros(2), torch.zeros(2, dtype=torch.long))


def test_presets_match_the_paper_sizes() -> None:
    assert DIT_SIZES["DiT-XL"] == (1152, 28, 16) and DIT_SIZES["DiT-L"] == (1024, 24, 16)
    assert DIT_SIZES["DiT-B"] == (768, 12, 12) and DIT_SIZES["DiT-S"] == (384, 12, 6)
    with torch.device("meta"):
        params = sum(p.numel() for p in DiT(dit_config("DiT-XL", latent_channels=16)).parameters())
    assert 650e6 < params < 690e6  # DiT-XL/2 has 675M


def test_adaln_zero_makes_fresh_blocks_the_identity() -> None:
    model = tiny_dit()
    h = torch.randn(2, 20, 128)
    c = torch.randn(2, 128)
    from vitok.nn.rope import rope_cos_sin, token_grid

    rope = rope_cos_sin(token_grid(1, 4, 5), 32)
    for block in model.blocks:
        assert torch.equal(block(h, c, rope), h)
    assert torch.equal(model(torch.randn(2, 4, 4, 5), torch.ones(2), torch.zeros(2, dtype=torch.long)),
                       torch.zeros(2, 4, 4, 5))


def test_ddpm_forward_and_flow_interpolation_formulas() -> None:
    betas = linear_betas()
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02) and len(betas) == 1000
    abar = alphas_cumprod(betas)
    x0, noise, t = torch.randn(3, 2, 2), torch.randn(3, 2, 2), torch.tensor([0, 500, 999])
    expected = torch.stack([abar[i].sqrt() * x0[k] + (1 - abar[i]).sqrt() * noise[k] for k, i in enumerate(t)])
    torch.testing.assert_close(q_sample(x0, t, noise, abar), expected.float())
    tt = torch.tensor([0.0, 0.3, 1.0])
    out = flow_interpolate(x0, noise, tt)
    torch.testing.assert_close(out[0], x0[0])
    torch.testing.assert_close(out[1], 0.7 * x0[1] + 0.3 * noise[1])
    torch.testing.assert_close(out[2], noise[2])


MU, SD = 1.5, 0.5  # the data distribution N(MU, SD^2) per dimension


def exact_eps(abar: torch.Tensor):
    def fn(x, t):
        a = abar[t.long()].float().view(-1, 1)
        return (1 - a).sqrt() * (x - a.sqrt() * MU) / (a * SD**2 + 1 - a)
    return fn


def exact_velocity(x, t):
    t = t.view(-1, 1)
    var = (1 - t) ** 2 * SD**2 + t**2
    x0 = MU + (1 - t) * SD**2 / var * (x - (1 - t) * MU)
    eps = t / var * (x - (1 - t) * MU)
    return eps - x0


@pytest.mark.parametrize("sampler", ["ddim", "euler", "heun"])
def test_samplers_recover_a_gaussian_with_the_exact_denoiser(sampler: str) -> None:
    noise = torch.randn(20000, 1, generator=torch.Generator().manual_seed(0))
    abar = alphas_cumprod(linear_betas())
    if sampler == "ddim":
        x = ddim_sample(exact_eps(abar), noise, abar, steps=100)
    elif sampler == "euler":
        x = euler_sample(exact_velocity, noise, steps=200)
    else:
        x = heun_sample(exact_velocity, noise, steps=50)
    assert x.mean().item() == pytest.approx(MU, abs=0.03)
    assert x.std().item() == pytest.approx(SD, abs=0.03)


def test_cfg_with_scale_one_is_the_conditional_prediction() -> None:
    model = tiny_dit(class_dropout=0.0)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x, t, y = torch.randn(2, 4, 3, 3), torch.tensor([5.0, 50.0]), torch.tensor([1, 2])
    torch.testing.assert_close(guided(model, y, model.null_label, 1.0)(x, t), model(x, t, y))
    g = guided(model, y, model.null_label, 3.0)(x, t)
    cond, uncond = model(x, t, y), model(x, t, torch.full_like(y, 3))
    torch.testing.assert_close(g, uncond + 3.0 * (cond - uncond))
    outside = guided(model, y, model.null_label, 3.0, interval=(0.5, 1.0), time_max=1000)(x, t)
    torch.testing.assert_close(outside, cond)


def test_tiny_dit_overfits_latents_then_samples() -> None:
    torch.manual_seed(0)
    model = tiny_dit(class_dropout=0.0)
    x0 = torch.randn(4, 4, 4, 4)
    y = torch.tensor([0, 1, 2, 0])
    abar = alphas_cumprod(linear_betas())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(200):
        loss = ddpm_loss(lambda xt, t: model(xt, t, y), x0, abar, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    out = ddim_sample(guided(model, y, model.null_label, 1.0), torch.randn(4, 4, 4, 4), abar, steps=20)
    assert out.shape == x0.shape and torch.isfinite(out).all()


@pytest.fixture
def class_folder(tmp_path) -> Path:
    for label in ("cats", "dogs"):
        for i in range(3):
            image = smooth_image(40, 40, seed=i + (10 if label == "dogs" else 0))
            io.save_image(image, tmp_path / "data" / label / f"{i}.png")
    return tmp_path / "data"


def test_generation_pipeline_end_to_end(class_folder, tmp_path, capsys) -> None:
    ViTok.from_preset("N-N/8", latent_channels=4).save_pretrained(tmp_path / "tok")
    latents = tmp_path / "latents"
    assert main(["cache-latents", "--model", str(tmp_path / "tok"), str(class_folder), "--out", str(latents),
                 "--size", "32", "--shard-size", "4", "--flip"]) == 0
    stats = json.loads((latents / "stats.json").read_text())
    assert stats["classes"] == ["cats", "dogs"] and stats["samples"] == 12 and len(stats["mean"]) == 4
    assert len(list(latents.glob("shard-*.safetensors"))) == 2
    assert main(["cache-latents", "--model", str(tmp_path / "tok"), str(class_folder), "--out", str(latents),
                 "--size", "32", "--shard-size", "4", "--flip"]) == 0  # finished shards are kept
    tokenizer = ViTok.from_pretrained(latents / "tokenizer")
    assert torch.allclose(tokenizer.latent_std, torch.tensor(stats["std"]))
    # the statistics are those of the posterior means of every 32 px crop and its mirror, per channel
    from vitok.data import EvalTransform

    crops = torch.stack([EvalTransform((32, 32))(io.load_image(f)) for f in sorted(class_folder.rglob("*.png"))])
    with torch.no_grad():
        z = torch.cat([tokenizer.encode(crops), tokenizer.encode(crops.flip(-1))]).double()
    torch.testing.assert_close(torch.tensor(stats["mean"], dtype=torch.float64), z.mean((0, 2, 3)), rtol=1e-4,
                               atol=1e-5)
    torch.testing.assert_close(torch.tensor(stats["std"], dtype=torch.float64), z.std((0, 2, 3), correction=0),
                               rtol=1e-4, atol=1e-5)

    overrides = [f"latents={latents}", f"run.out_dir={tmp_path / 'dit'}", "run.steps=6", "run.ckpt_every=3",
                 "run.progress=false", "run.tensorboard=false", "optim.batch_size=4", "run.precision=fp32"]
    config = REPO / "configs" / "dit" / "cpu_tiny.yaml"
    assert main(["train-dit", str(config), *overrides, "run.stop_at=3"]) == 0
    assert not (tmp_path / "dit" / "model").exists()
    assert main(["train-dit", str(config), *overrides]) == 0  # resumes at 3
    rows = [json.loads(r) for r in (tmp_path / "dit" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 6
    assert main(["train-dit", str(config), *overrides[:1], f"run.out_dir={tmp_path / 'dit2'}", *overrides[2:]]) == 0
    a = DiT.from_pretrained(tmp_path / "dit" / "model").state_dict()
    b = DiT.from_pretrained(tmp_path / "dit2" / "model").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # resumed == uninterrupted

    for bad in ("5", "-1"):  # class indices outside the DiT's classes: one-line error before sampling
        assert main(["sample", "--dit", str(tmp_path / "dit" / "model-ema"), "--classes", bad,
                     "--out", str(tmp_path / "bad")]) == 2
        assert "--classes must be in 0.." in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main(["eval-gen", "--dit", str(tmp_path / "dit" / "model-ema"), "--ref-stats",
                 str(tmp_path / "missing.npz"), "--n", "2"]) == 2
    assert "no feature statistics at" in capsys.readouterr().err
    sample = ["sample", "--dit", str(tmp_path / "dit" / "model-ema"), "--model", str(latents / "tokenizer"),
              "--classes", "0,1", "--n", "4", "--cfg", "2.0", "--steps", "5", "--seed", "7"]
    assert main([*sample, "--out", str(tmp_path / "s1")]) == 0
    assert main([*sample, "--out", str(tmp_path / "s2"), "--batch-size", "3"]) == 0
    assert (tmp_path / "s1" / "grid.png").is_file()
    first, second = (tmp_path / d / "sample-0001-class1.png" for d in ("s1", "s2"))
    assert first.read_bytes() == second.read_bytes()

    assert main(["eval", "--model", str(tmp_path / "tok"), str(class_folder), "--size", "32",
                 "--metrics", "rfid", "--out", str(tmp_path / "ref")]) == 0
    assert main(["eval-gen", "--dit", str(tmp_path / "dit" / "model-ema"), "--model", str(latents / "tokenizer"),
                 "--n", "6", "--steps", "5", "--ref-stats", str(tmp_path / "ref" / "rfid_real_stats.npz"),
                 "--out", str(tmp_path / "gen")]) == 0
    result = json.loads((tmp_path / "gen" / "results.json").read_text())
    assert result["samples"] == 6 and result["gfid"] > 0 and result["seed"] == 0 and result["sampler"] == "ddim"
    assert "gfid" in capsys.readouterr().out
    assert len(list((tmp_path / "gen" / "samples").glob("sample-*.png"))) == 6
    # made, decoded and measured in batches of 4 (2 + 4 ...): the same samples, so the same score
    assert main(["eval-gen", "--dit", str(tmp_path / "dit" / "model-ema"), "--model", str(latents / "tokenizer"),
                 "--n", "6", "--steps", "5", "--ref-stats", str(tmp_path / "ref" / "rfid_real_stats.npz"),
                 "--out", str(tmp_path / "gen4"), "--batch-size", "4"]) == 0
    assert json.loads((tmp_path / "gen4" / "results.json").read_text())["gfid"] == pytest.approx(result["gfid"])
    # the tokenizer without latent statistics cannot undo the normalisation: refused before sampling
    assert main([*sample, "--model", str(tmp_path / "tok"), "--out", str(tmp_path / "s3")]) == 2
    assert "has no latent statistics" in capsys.readouterr().err
    from vitok.metrics.frechet import FeatureStats

    video_like = FeatureStats()
    video_like.update(torch.randn(8, 400, dtype=torch.float64))
    video_like.save(tmp_path / "rfvd.npz")
    assert main(["eval-gen", "--dit", str(tmp_path / "dit" / "model-ema"), "--n", "2",
                 "--ref-stats", str(tmp_path / "rfvd.npz"), "--out", str(tmp_path / "gen5")]) == 2
    assert "holds 400-d features; this DiT makes images, whose Inception features are 2048-d" in \
        capsys.readouterr().err


def test_two_seeds_share_no_sample_and_chunks_do_not_change_one() -> None:
    from vitok.generate.sample import initial_noise

    zero, one = initial_noise(6, (2, 3), 0), initial_noise(6, (2, 3), 1)
    assert not any(torch.equal(one[i], zero[j]) for i in range(6) for j in range(6))  # seed + i made them shift
    assert torch.equal(initial_noise(3, (2, 3), 5, first=3), initial_noise(6, (2, 3), 5)[3:])


def test_video_latents_sample_as_videos(tmp_path) -> None:
    from vitok.generate.sample import decode, save_samples

    tok = ViTok.from_preset("N-N/2x8", latent_channels=4)
    z = torch.randn(2, 4, 2, 2, 2)
    x = decode(tok, z)
    assert x.shape == (2, 3, 4, 16, 16)
    save_samples(x, torch.tensor([0, 1]), tmp_path)
    assert (tmp_path / "sample-0000-class0.mp4").is_file() and (tmp_path / "sample-0001-class1.gif").is_file()


def test_cache_latents_skips_unreadable_files_and_keeps_labels_aligned(class_folder, tmp_path) -> None:
    from vitok.generate.latents import cache_latents, iter_shards

    (class_folder / "cats" / "0_broken.png").write_text("not an image")  # sorts first among the cats
    tokenizer = ViTok.from_preset("N-N/8", latent_channels=4)
    stats = cache_latents(tokenizer, class_folder, tmp_path / "latents", size=16, shard_size=4, progress=False)
    assert stats["samples"] == 6  # the 6 readable images, each once (no substitute for the broken one)
    labels = [int(label) for _, label in iter_shards(tmp_path / "latents")]
    assert labels == [0, 0, 0, 1, 1, 1]  # labels follow their own images, not shifted by the skip


def test_a_cache_resumes_only_what_it_was_made_of(class_folder, tmp_path) -> None:
    from vitok.generate.latents import LatentDataset, cache_latents

    tokenizer = ViTok.from_preset("N-N/8", latent_channels=4)
    out = tmp_path / "latents"
    cache_latents(tokenizer, class_folder, out, size=16, shard_size=4, progress=False)
    (out / "shard-00001.safetensors").unlink()  # as if interrupted after the first shard
    again = cache_latents(tokenizer, class_folder, out, size=16, shard_size=4, progress=False)  # resumes
    assert again["samples"] == 6 and sorted(p.name for p in out.glob("shard-*")) == [
        "shard-00000.safetensors", "shard-00001.safetensors"]
    other = ViTok.from_preset("N-N/8", latent_channels=4)  # other weights
    with pytest.raises(ValueError, match=r"cached differently \(other tokenizer weights\)"):
        cache_latents(other, class_folder, out, size=16, shard_size=4, progress=False)
    with pytest.raises(ValueError, match=r"\(other crop size\)"):
        cache_latents(tokenizer, class_folder, out, size=32, shard_size=4, progress=False)
    (class_folder / "birds").mkdir()
    io.save_image(torch.zeros(3, 20, 20), class_folder / "birds" / "a.png")
    with pytest.raises(ValueError, match=r"\(other files, labels, classes\)"):
        cache_latents(tokenizer, class_folder, out, size=16, shard_size=4, progress=False)
    # the dataset: shards that do not fit together, labels outside the classes
    from safetensors.torch import save_file

    save_file({"latents": torch.zeros(2, 4, 4, 4), "labels": torch.zeros(2, dtype=torch.long)},
              str(out / "shard-00002.safetensors"))
    with pytest.raises(ValueError, match=r"shard-00002.safetensors does not fit shard-00000.safetensors"):
        LatentDataset(out)
    save_file({"latents": torch.zeros(2, 4, 2, 2), "labels": torch.tensor([0, 7])},
              str(out / "shard-00002.safetensors"))
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.1 \(stats.json num_classes 2\), found 0\.\.7"):
        LatentDataset(out)
    for shard in out.glob("shard-*"):
        shard.unlink()
    with pytest.raises(ValueError, match="no shard-"):
        LatentDataset(out)


def _dit_run(latents: Path, out: Path, *overrides: str) -> None:
    from vitok.generate.trainer import DiTTrainConfig, train_dit
    from vitok.train.config import load_config

    train_dit(load_config(None, [f"latents={latents}", f"run.out_dir={out}", "model.preset=DiT-T", "optim.batch_size=4",
                                 "run.steps=6", "run.ckpt_every=3", "run.log_every=1", "run.ema=0.9", "run.device=cpu",
                                 "run.precision=fp32", *overrides], DiTTrainConfig))


@pytest.fixture
def latents(class_folder: Path, tmp_path: Path) -> Path:
    """The class folder encoded by a nano tokenizer (``vitok cache-latents``)."""
    ViTok.from_preset("N-N/8", latent_channels=4).save_pretrained(tmp_path / "tok")
    latents = tmp_path / "latents"
    assert main(["cache-latents", "--model", str(tmp_path / "tok"), str(class_folder), "--out", str(latents),
                 "--size", "32"]) == 0
    return latents


def test_dit_trainer_resumes_exactly_through_the_shared_engine(latents, tmp_path) -> None:
    """The DiT runs on vitok.train.engine like the tokenizer: a run stopped at step 3 and resumed
    ends with the same weights, optimiser, EMA and RNG state as an uninterrupted one, exports both
    models with generation.json, and its run folder is locked while it trains."""
    from vitok.train.checkpoint import list_checkpoints, load_checkpoint

    _dit_run(latents, tmp_path / "full")
    _dit_run(latents, tmp_path / "split", "run.stop_at=3")
    assert [s for s, _ in list_checkpoints(tmp_path / "split")] == [3]
    _dit_run(latents, tmp_path / "split")
    full = load_checkpoint(list_checkpoints(tmp_path / "full")[-1][1])
    split = load_checkpoint(list_checkpoints(tmp_path / "split")[-1][1])
    assert full["step"] == split["step"] == 6 and torch.equal(full["rng"], split["rng"])
    for part in ("model", "ema"):
        for key, value in full[part].items():
            assert torch.equal(value, split[part][key]), f"{part}.{key} differs after resume"
    assert full["opt"]["state"].keys() == split["opt"]["state"].keys()
    for index, moments in full["opt"]["state"].items():
        assert torch.equal(moments["exp_avg"], split["opt"]["state"][index]["exp_avg"])
    for name in ("model", "model-ema"):
        info = json.loads((tmp_path / "split" / name / "generation.json").read_text())
        assert info["classes"] == ["cats", "dogs"] and DiT.from_pretrained(tmp_path / "split" / name)
    ema = DiT.from_pretrained(tmp_path / "split" / "model-ema").state_dict()
    assert all(torch.equal(ema[k], v) for k, v in full["ema"].items())


def test_dit_trainer_skips_non_finite_steps_and_stops_after_too_many(latents, tmp_path) -> None:
    from vitok.train import NonFiniteLossError

    with pytest.raises(NonFiniteLossError, match="3 consecutive steps"):
        _dit_run(latents, tmp_path / "nan", "optim.lr=1e30", "optim.min_lr=1e30", "optim.grad_clip=1e30",
                 "run.max_bad_steps=3", "run.steps=40")
    with pytest.raises(ValueError, match=r"model.overrides.num_classes 1 is below the 2 classes of"):
        _dit_run(latents, tmp_path / "few", "model.overrides={num_classes: 1}")


def _dit_torchrun(nproc: int, latents: Path, out: Path, *overrides: str) -> None:
    from tests.test_train import torchrun

    config = out.parent / f"{out.name}.yaml"
    config.write_text(f"latents: {latents}\nmodel: {{preset: DiT-T}}\noptim: {{batch_size: 4}}\n"
                      "run: {steps: 4, ckpt_every: 2, log_every: 1, ema: 0.9, device: cpu, precision: fp32}\n")
    torchrun(nproc, config, f"run.out_dir={out}", *overrides, subcommand="train-dit")


def test_dit_trainer_ddp_and_fsdp_match_one_process(latents, tmp_path) -> None:
    """The DiT scales out through the shared engine like the tokenizer: two DDP ranks, and two FSDP
    ranks stopped at step 2 and resumed, end with the single process's weights and EMA."""
    from vitok.train.checkpoint import list_checkpoints, load_checkpoint

    _dit_run(latents, tmp_path / "one", "run.steps=4", "run.ckpt_every=2")
    _dit_torchrun(2, latents, tmp_path / "ddp")
    _dit_torchrun(2, latents, tmp_path / "fsdp", "run.distributed=fsdp", "run.stop_at=2")
    _dit_torchrun(2, latents, tmp_path / "fsdp", "run.distributed=fsdp")  # resumes at 2
    one = load_checkpoint(list_checkpoints(tmp_path / "one")[-1][1])
    for name in ("ddp", "fsdp"):
        other = load_checkpoint(list_checkpoints(tmp_path / name)[-1][1])
        assert other["step"] == one["step"] == 4
        for part in ("model", "ema"):
            for key, value in one[part].items():
                torch.testing.assert_close(value, other[part][key], atol=1e-5, rtol=1e-4, msg=f"{name} {part}.{key}")
    assert DiT.from_pretrained(tmp_path / "fsdp" / "model-ema")
