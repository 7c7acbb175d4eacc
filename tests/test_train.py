"""Training: learning, stage 2 freezing, exact resume, DDP equivalence, bad data, configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, smooth_image
from vitok import ViTok, io
from vitok.losses import AutoencoderLoss, LossConfig
from vitok.metrics.psnr import psnr
from vitok.models.baselines import build_autoencoder_kl
from vitok.train import NonFiniteLossError, Trainer, load_config, train
from vitok.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from vitok.train.config import TrainConfig
from vitok.train.engine import param_groups
from vitok.train.schedule import cosine_lr, warmup_steps
from vitok.train.schema import apply_override, from_dict


def tiny_config(data: Path, out: Path, *extra: str) -> TrainConfig:
    overrides = [
        f"data.train=[{data}]", "data.image_size=32", "data.workers=0", "model.preset=N-N/8",
        "optim.batch_size=4", "optim.lr=1e-3", "optim.warmup=2", "loss.perceptual=none",
        f"run.out_dir={out}", "run.steps=6", "run.precision=fp32", "run.log_every=1", "run.ckpt_every=3",
        "run.image_every=3", "run.progress=false", "run.tensorboard=false", *extra,
    ]
    return load_config(None, overrides)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(list_checkpoints(run_dir)[-1][1])["model"]


def test_tiny_model_overfits_a_batch_of_real_images(shared_data) -> None:
    files = sorted((shared_data / "images" / "train").glob("*.jpg"))[:4]
    x = torch.stack([io.resize_center_crop(io.load_image(f, min_side=64), 32) for f in files])
    model = ViTok.from_preset("N-N/8", latent_channels=16)
    loss_fn = AutoencoderLoss(LossConfig(perceptual="none"))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95))
    losses = []
    for step in range(150):
        out = model(x, sample=True)
        loss, _ = loss_fn(x, out.recon, out.posterior, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        start_psnr = psnr(ViTok.from_preset("N-N/8")(x).recon, x).mean().item()
        end_psnr = psnr(model(x).recon, x).mean().item()
    assert losses[-1] < losses[0] / 8
    assert end_psnr > start_psnr + 8 and end_psnr > 20


def test_trainer_runs_logs_checkpoints_and_exports(image_folder, tmp_path) -> None:
    scalars = train(tiny_config(image_folder, tmp_path / "run", "run.steps=8", "run.keep_last=2"))
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert rows[-1]["rec"] < rows[0]["rec"]
    assert {"loss", "rec", "kl", "lr", "grad_norm", "steps_per_s", "skipped_files"} <= set(rows[0])
    assert [s for s, _ in list_checkpoints(run)] == [6, 8]  # keep-last 2
    assert (run / "samples" / "step-00000006.png").is_file()
    assert (run / "config.yaml").is_file() and scalars["loss"] > 0
    model = ViTok.from_pretrained(run / "model")
    assert torch.equal(model.state_dict()["decoder_out.weight"], weights(run)["decoder_out.weight"])


def test_gradient_accumulation_matches_full_batch(image_folder, tmp_path) -> None:
    train(tiny_config(image_folder, tmp_path / "a", "run.steps=3"))
    train(tiny_config(image_folder, tmp_path / "b", "run.steps=3", "optim.accum=2"))
    for key, value in weights(tmp_path / "a").items():
        torch.testing.assert_close(value, weights(tmp_path / "b")[key], atol=1e-5, rtol=1e-4)


def test_stage2_freezes_the_encoder(image_folder, tmp_path) -> None:
    stage1 = ViTok.from_preset("N-N/8")
    stage1.save_pretrained(tmp_path / "stage1")
    cfg = tiny_config(image_folder, tmp_path / "s2", f"model.init_from={tmp_path / 'stage1'}",
                      "model.freeze_encoder=true", "loss.gan_weight=0.05", "loss.disc_channels=8",
                      "run.ema=0.9999", "run.steps=4")
    train(cfg)
    before, after = stage1.state_dict(), ViTok.from_pretrained(tmp_path / "s2" / "model").state_dict()
    for key in before:
        same = torch.equal(before[key], after[key])
        if key.startswith(("patch_embed.", "encoder.", "bottleneck.")):
            assert same, f"encoder parameter {key} changed in stage 2"
    assert not torch.equal(before["decoder_out.weight"], after["decoder_out.weight"])
    ema = ViTok.from_pretrained(tmp_path / "s2" / "model-ema").state_dict()
    assert torch.equal(ema["encoder.blocks.0.attn.qkv.weight"], before["encoder.blocks.0.attn.qkv.weight"])
    assert not torch.equal(ema["decoder_out.weight"], after["decoder_out.weight"])


def test_corrupt_files_are_skipped_and_counted(image_folder, tmp_path, caplog) -> None:
    (image_folder / "truncated.jpg").write_bytes(_jpeg_bytes()[:300])
    train(tiny_config(image_folder, tmp_path / "img", "run.steps=4", "optim.batch_size=7"))
    rows = [json.loads(line) for line in (tmp_path / "img" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["skipped_files"] == 1  # the one broken file, counted once however often it is drawn
    skipped = [r.getMessage() for r in caplog.records if "skipping unreadable" in r.getMessage()]
    assert len(skipped) == 1 and "truncated.jpg" in skipped[0]  # the good files were read
    videos = tmp_path / "videos"
    io.save_video(torch.stack([smooth_image(32, 32, i) for i in range(6)], 1), videos / "ok.mp4")
    (videos / "empty.mp4").write_bytes(b"")
    train(tiny_config(videos, tmp_path / "vid", "data.kind=video", "data.num_frames=4", "model.preset=N-N/2x8",
                      "run.steps=2", "optim.batch_size=2"))
    rows = [json.loads(line) for line in (tmp_path / "vid" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["skipped_files"] == 1 and "empty.mp4" in caplog.text


def _jpeg_bytes() -> bytes:
    import io as pyio

    from PIL import Image

    buffer = pyio.BytesIO()
    Image.fromarray(io.tensor_to_uint8(smooth_image(64, 64))).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_non_finite_steps_are_skipped_then_stop_the_run(image_folder, tmp_path, monkeypatch) -> None:
    original = AutoencoderLoss.forward
    calls = {"n": 0}

    def sometimes_nan(self, *args, **kwargs):
        loss, terms = original(self, *args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 2 else loss), terms

    monkeypatch.setattr(AutoencoderLoss, "forward", sometimes_nan)
    train(tiny_config(image_folder, tmp_path / "one", "run.steps=4"))
    rows = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["skipped_steps"] == 1 and all(torch.isfinite(v).all() for v in weights(tmp_path / "one").values())

    def always_nan(self, *args, **kwargs):
        loss, terms = original(self, *args, **kwargs)
        return loss * float("nan"), terms

    monkeypatch.setattr(AutoencoderLoss, "forward", always_nan)
    with pytest.raises(NonFiniteLossError, match="3 consecutive steps"):
        train(tiny_config(image_folder, tmp_path / "many", "run.max_bad_steps=3"))


def torchrun(nproc: int, config: Path, *overrides: str, subcommand: str = "train") -> None:
    """``torchrun --nproc_per_node N -m vitok SUBCOMMAND CONFIG OVERRIDES``, one thread per rank."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_port", str(20000 + (os.getpid() * 7 + nproc) % 20000), "-m", "vitok", subcommand,
               str(config), *overrides]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture
def dist_config(image_folder, tmp_path) -> Path:
    base = tiny_config(image_folder, tmp_path / "x", "run.steps=3", "run.ckpt_every=3", "run.ema=0.9")
    path = tmp_path / "cfg.yaml"
    path.write_text(__import__("yaml").safe_dump(_plain(base.to_dict())))
    return path


def test_ddp_two_processes_match_one(dist_config, tmp_path) -> None:
    torchrun(1, dist_config, f"run.out_dir={tmp_path / 'one'}")
    torchrun(2, dist_config, f"run.out_dir={tmp_path / 'two'}")
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    for key, value in one.items():
        torch.testing.assert_close(value, two[key], atol=1e-5, rtol=1e-4)


def test_fsdp_matches_single_process_and_resumes(dist_config, tmp_path) -> None:
    train(load_config(dist_config, [f"run.out_dir={tmp_path / 'one'}"]))
    torchrun(2, dist_config, f"run.out_dir={tmp_path / 'fsdp'}", "run.distributed=fsdp", "run.stop_at=2",
             "run.ckpt_every=1")
    torchrun(2, dist_config, f"run.out_dir={tmp_path / 'fsdp'}", "run.distributed=fsdp")  # resumes at 2
    one = load_checkpoint(list_checkpoints(tmp_path / "one")[-1][1])
    sharded = load_checkpoint(list_checkpoints(tmp_path / "fsdp")[-1][1])
    for part in ("model", "ema"):
        for key, value in one[part].items():
            torch.testing.assert_close(value, sharded[part][key], atol=1e-5, rtol=1e-4)
    assert (tmp_path / "fsdp" / "model-ema" / "model.safetensors").is_file()


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# a two-level AutoencoderKL standing in for the baselines' configured one
TINY_AUTOENCODER_KL = {"block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4, "latent_channels": 4,
                       "down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2}
TOKENIZER_CONFIGS = sorted(p for p in (REPO / "configs").rglob("*.yaml") if p.parent.name not in ("dit", "sweeps"))


@pytest.mark.parametrize("path", TOKENIZER_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_config_parses_and_its_first_steps_run(path: Path, image_folder, tmp_path) -> None:
    cfg = load_config(path)
    video = cfg.data.kind == "video"
    data = tmp_path / "videos"
    if video:
        io.save_video(torch.stack([smooth_image(40, 40, i) for i in range(10)], 1), data / "a.mp4")
    stand_in = "N-N/2x8" if video or cfg.video is not None else "N-N/8"
    extra = [f"data.train=[{data if video else image_folder}]", "data.image_size=32", "data.num_frames=4",
             "data.workers=0", f"model.preset={stand_in}", "optim.batch_size=2", "run.steps=2", "run.ckpt_every=2",
             f"run.out_dir={tmp_path / 'run'}", "run.progress=false", "run.tensorboard=false",
             "loss.disc_channels=8"]
    if cfg.data.short_side:
        extra.append("data.short_side=[32,48]")
    if cfg.model.init_from:  # a stage-2 config: a stand-in stage-1 model to start from
        if cfg.model.kind == "autoencoder-kl":
            build_autoencoder_kl(TINY_AUTOENCODER_KL).save_pretrained(tmp_path / "init")
        else:
            ViTok.from_preset(stand_in).save_pretrained(tmp_path / "init")
        extra.append(f"model.init_from={tmp_path / 'init'}")
    if cfg.model.kind == "autoencoder-kl":
        extra.append(f"model.autoencoder_kl={json.dumps(TINY_AUTOENCODER_KL)}")
    if cfg.video is not None:
        io.save_video(torch.stack([smooth_image(40, 40, i) for i in range(10)], 1), tmp_path / "clips" / "a.mp4")
        extra += ["model.preset=N-N/2x8", f"video.data.train=[{tmp_path / 'clips'}]", "video.data.image_size=32",
                  f"video.data.motion=[{image_folder}]", "video.data.num_frames=4", "video.batch_size=2",
                  "video.data.workers=0", "run.steps=4"]
    train(load_config(path, extra))
    assert (tmp_path / "run" / "model").is_dir()


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValueError, match=r"unknown config keys \['run.stepz'\]"):
        load_config(None, ["run.stepz=3"])
    with pytest.raises(ValueError, match="run.steps: expected an int"):
        load_config(None, ["run.steps=abc"])
    with pytest.raises(ValueError, match="loss.perceptual"):
        load_config(None, ["loss.perceptual=dists"])
    with pytest.raises(ValueError, match="section.key=value"):
        apply_override({}, "nonsense")
    cfg = from_dict(TrainConfig, {"optim": {"betas": [0.8, 0.9], "lr": 1}})
    assert cfg.optim.betas == (0.8, 0.9) and cfg.optim.lr == 1.0


def test_lr_schedule() -> None:
    assert warmup_steps(0.03, 1000) == 30 and warmup_steps(50, 1000) == 50
    lrs = [cosine_lr(s, 1e-3, 100, 10, 1e-5) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert cosine_lr(100, 1e-3, 100, 10, 1e-5) == pytest.approx(1e-5)
    assert cosine_lr(500, 1e-6, 100, 10, 1e-5) == pytest.approx(1e-6)  # min capped at peak
    assert OptimPeak.peak() == pytest.approx(4e-4)


class OptimPeak:
    @staticmethod
    def peak() -> float:
        return load_config(None, ["optim.batch_size=1024"]).optim.peak_lr


def test_no_weight_decay_on_norms_and_biases() -> None:
    model = ViTok.from_preset("N-N/8")
    decay, no_decay = param_groups(model, 1e-4)
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == sum(p.numel() for p in model.parameters())


def test_checkpoints_are_atomic_and_safe(tmp_path, monkeypatch) -> None:
    save_checkpoint(tmp_path, 1, {"step": 1, "w": torch.ones(2)})

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, 2, {"step": 2})
    assert [s for s, _ in list_checkpoints(tmp_path)] == [1]
    assert not list(tmp_path.glob(".ckpt-*"))
    monkeypatch.undo()
    evil = tmp_path / "ckpt-00000009.pt"
    torch.save({"f": os.system}, evil)  # a pickle that references a function
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        load_checkpoint(evil)


def test_trainer_rejects_bad_batch_split(image_folder, tmp_path) -> None:
    with pytest.raises(ValueError, match="divisible"):
        Trainer(tiny_config(image_folder, tmp_path, "optim.batch_size=5", "optim.accum=2")).fit()


def test_image_and_video_steps_interleave_and_resume_exactly(image_folder, tmp_path) -> None:
    videos = tmp_path / "videos"
    io.save_video(torch.stack([smooth_image(40, 40, i) for i in range(8)], 1), videos / "a.mp4")
    extra = ("model.preset=N-N/2x8", f"video.data.train=[{videos}]", f"video.data.motion=[{image_folder}]",
             "video.data.kind=video", "video.data.image_size=32", "video.data.num_frames=4", "video.every=2",
             "video.batch_size=2")
    train(tiny_config(image_folder, tmp_path / "full", *extra))
    train(tiny_config(image_folder, tmp_path / "split", *extra, "run.stop_at=3"))
    train(tiny_config(image_folder, tmp_path / "split", *extra))
    for key, value in weights(tmp_path / "full").items():
        assert torch.equal(value, weights(tmp_path / "split")[key]), key
    from PIL import Image

    grids = {p.name: Image.open(p).size for p in (tmp_path / "full" / "samples").glob("*.png")}
    # step 3 an image step (4 crops of 32 px side by side), step 6 a video step (2 clips x 4 frames)
    assert grids == {"step-00000003.png": (4 * 32, 64), "step-00000006.png": (2 * 4 * 32, 64)}


def test_autoencoder_kl_baseline_trains_resumes_and_evaluates(image_folder, tmp_path) -> None:
    from vitok.cli import main

    tiny = ("model.kind=autoencoder-kl",
            "model.autoencoder_kl={block_out_channels: [8, 16], down_block_types: [DownEncoderBlock2D, "
            "DownEncoderBlock2D], up_block_types: [UpDecoderBlock2D, UpDecoderBlock2D], layers_per_block: 1, "
            "norm_num_groups: 4, latent_channels: 4}")
    train(tiny_config(image_folder, tmp_path / "full", *tiny))
    train(tiny_config(image_folder, tmp_path / "split", *tiny, "run.stop_at=3"))
    train(tiny_config(image_folder, tmp_path / "split", *tiny))
    for key, value in weights(tmp_path / "full").items():
        assert torch.equal(value, weights(tmp_path / "split")[key]), key
    assert (tmp_path / "full" / "model" / "diffusion_pytorch_model.safetensors").is_file()
    frozen = tiny_config(image_folder, tmp_path / "s2", *tiny, f"model.init_from={tmp_path / 'full' / 'model'}",
                         "model.freeze_encoder=true", "run.steps=2")
    trainer = Trainer(frozen)
    assert all(not p.requires_grad for n, p in trainer.model.named_parameters() if n.startswith("vae.encoder."))
    assert main(["eval", "--model", "none", "--baseline", "sd-vae",
                 "--baseline-weights", str(tmp_path / "full" / "model"),
                 str(image_folder), "--size", "32", "--metrics", "psnr", "--out", str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "results.json").read_text())["samples"] == 6


def test_unreadable_files_are_counted_once_each_and_named(tmp_path, capsys) -> None:
    import struct
    import zlib

    from PIL import Image

    folder = tmp_path / "data"
    for i in range(3):
        io.save_image(smooth_image(48, 56, seed=i), folder / f"{i}.png")
    Image.new("RGB", (1, 1), (200, 30, 30)).save(folder / "pixel.png")  # valid, smaller than any crop
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    (folder / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 10**5, 10**5, 8, 2,
                                                                                        0, 0, 0))
                                      + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b""))
    train(tiny_config(folder, tmp_path / "run", "run.steps=4", "run.ckpt_every=4", "run.image_every=0",
                      "data.short_side=[32,96]"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    named = [Path(p).name for row in rows for p in row.get("skipped_new", [])]
    assert sorted(named) == ["bomb.png", "broken.jpg"]  # each named once, in the row where it first appeared
    assert rows[-1]["skipped_files"] == 2  # distinct files, not skip events
    out = capsys.readouterr().out
    assert "skipped 2 unreadable files: " in out and "bomb.png" in out
    assert sorted(Path(p).name for p in load_checkpoint(list_checkpoints(tmp_path / "run")[-1][1])["skipped_paths"]) \
        == ["bomb.png", "broken.jpg"]


def test_a_warmup_as_long_as_the_run_is_warned_about(image_folder, tmp_path, capsys) -> None:
    train(tiny_config(image_folder, tmp_path / "run", "run.steps=2", "optim.warmup=5"))
    assert "optim.warmup is 5 steps, not below run.steps 2" in capsys.readouterr().err
    train(tiny_config(image_folder, tmp_path / "ok", "run.steps=2", "optim.warmup=1"))
    assert "optim.warmup" not in capsys.readouterr().err


def test_posterior_noise_is_its_own_stream_not_the_crops() -> None:
    """Review find: the noise generator was seeded with the sample's seed, the same seed the crop
    and flip are drawn from, so both started with the same random numbers (correlation 0.21
    between a crop's offset and its noise). Now each sample's noise comes from its own stream:
    still a function of the seed alone, unrelated to the crop stream's numbers."""
    from vitok.train.trainer import noise_seed, posterior_noise

    seeds = torch.arange(512)
    noise = posterior_noise((512, 4), seeds, torch.device("cpu"))
    again = posterior_noise((2, 4), seeds[[7, 300]], torch.device("cpu"))
    assert torch.equal(again, noise[[7, 300]])  # per sample, whatever the batch
    crop_stream = torch.stack([torch.randn(4, generator=torch.Generator().manual_seed(int(s))) for s in seeds])
    assert not torch.equal(noise, crop_stream)
    uniform = torch.stack([torch.rand(1, generator=torch.Generator().manual_seed(int(s))) for s in seeds])[:, 0]
    r = torch.corrcoef(torch.stack([uniform, noise[:, 0]]))[0, 1].abs().item()
    assert r < 0.1, r  # 512 independent pairs: |r| ~ 0.04
    assert len({noise_seed(s) for s in range(10_000)}) == 10_000 and 0 <= noise_seed(2**62) < 2**63
