"""API cases of :mod:`vitok.metrics`: psnr, ssim, Fréchet distance and feature statistics, grid scores,
streaming metrics, MACs and latent sizes, loading reference statistics."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import vitok
from fuzz.api_env import ApiEnv, Case, api_value, random_tensor
from fuzz.judge import Silent, expect, finite, short

METRIC_CALLS = ["psnr", "ssim", "frechet", "stats", "grid", "build", "build", "canonical", "macs", "load_stats",
                "lattice"]


def case_metrics(rng: random.Random, env: ApiEnv) -> Case:
    name = rng.choice(METRIC_CALLS)
    return METRIC_CASES[name](rng, env)


def pair(rng: random.Random) -> tuple[Any, Any]:
    """Two images: mostly the same shape (equal, or close), sometimes anything."""
    x = random_tensor(rng, rng.choice([2, 3, 4, 4, 4, 5]), 3) if rng.random() < 0.85 else api_value(rng)
    roll = rng.random()
    if roll < 0.3 and isinstance(x, torch.Tensor):
        y = x.clone()
    elif roll < 0.8 and isinstance(x, torch.Tensor):
        y = (x.float() + 0.1 * torch.randn(x.shape)).clamp(-1, 1).to(x.dtype) if x.is_floating_point() else x
    else:
        y = random_tensor(rng, rng.choice([3, 4, 5]), 3) if rng.random() < 0.8 else api_value(rng)
    return x, y


def metric_psnr(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.metrics import psnr

    x, y = pair(rng)

    def check(out: Any) -> None:
        ok = isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape and x.ndim >= 2
        if not ok:
            raise Silent(f"psnr accepted {short(x)}, {short(y)} -> {short(out)}")
        expect(out.shape == (x.shape[0],), "psnr: not one value per sample", tuple(out.shape))
        expect(not (finite(x) and finite(y)) or not bool(torch.isnan(out).any()), "psnr: NaN from finite input")
        expect(bool((out[~torch.isnan(out)] >= 0).all()), "psnr: negative dB")
    return f"psnr({short(x)}, {short(y)})", lambda: psnr(x, y), check


def metric_ssim(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.metrics.ssim import ssim

    x, y = pair(rng)
    kwargs = {k: rng.choice(v) for k, v in (("data_range", [2.0, 255.0, 0.0, -1.0, math.nan]),
                                            ("window", [11, 3, 1, 0, -1, 4, 64]),
                                            ("sigma", [1.5, 0.0, -1.0, math.inf])) if rng.random() < 0.3}

    def check(out: Any) -> None:
        ok = isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape and x.ndim == 4
        if not ok:
            raise Silent(f"ssim accepted {short(x)}, {short(y)} -> {short(out)}")
        expect(out.shape == (x.shape[0],), "ssim: not one value per sample")
        if finite(x) and finite(y):
            expect(finite(out), "ssim: NaN from finite input", short(kwargs))
            expect(bool((out <= 1 + 1e-4).all() & (out >= -1 - 1e-4).all()), "ssim: outside [-1, 1]",
                   f"{out.tolist()} {short(kwargs)}")
    return f"ssim({short(x)}, {short(y)}, {short(kwargs)})", lambda: ssim(x, y, **kwargs), check


def features(rng: random.Random) -> tuple[int, Any]:
    """(dim, features): mostly an (n, dim) float tensor, sometimes with a NaN or of another shape or type."""
    dim = rng.choice([1, 2, 4, 8])
    n = rng.choice([0, 1, 2, 3, 5, 50])
    feats = torch.randn(n, dim, dtype=rng.choice([torch.float32, torch.float64]))
    if rng.random() < 0.1 and n:
        feats[0, 0] = rng.choice([math.nan, math.inf])
    if rng.random() < 0.1:
        feats = rng.choice([torch.randn(dim), torch.randn(2, dim, 2), "features", None])
    return dim, feats


def metric_stats(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.metrics import FeatureStats

    dim, feats = features(rng)

    def run_stats() -> Any:
        stats = FeatureStats()
        stats.update(feats)
        return stats.mean_cov()

    def check_stats(out: Any) -> None:
        mu, sigma = out
        expect(isinstance(feats, torch.Tensor) and feats.ndim == 2 and feats.shape[0] >= 2,
               "FeatureStats accepted", short(feats))
        expect(mu.shape == (dim,) and sigma.shape == (dim, dim), "FeatureStats: shapes")
        expect(not finite(feats) or (finite(mu) and finite(sigma)), "FeatureStats: NaN from finite features")
    return f"FeatureStats.update({short(feats)}).mean_cov()", run_stats, check_stats


def metric_frechet(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.metrics import frechet_distance

    dim, feats = features(rng)
    same = rng.random() < 0.4
    if isinstance(feats, torch.Tensor) and feats.ndim == 2 and feats.shape[0] >= 2 and finite(feats):
        f = feats.double().numpy()
        mu1, s1 = f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))
    else:
        mu1, s1 = rng.choice([(np.zeros(dim), np.eye(dim)), (np.full(dim, np.nan), np.eye(dim)),
                              ([0.0] * dim, None),
                              (np.zeros((dim, 2)), np.eye(dim)), (np.zeros(dim), -np.eye(dim))])
    if same:
        mu2, s2 = (np.array(mu1, copy=True) if isinstance(mu1, np.ndarray) else mu1,
                   np.array(s1, copy=True) if isinstance(s1, np.ndarray) else s1)
    else:
        mu2, s2 = rng.choice([(np.zeros(dim), np.eye(dim)), (np.ones(dim + 1), np.eye(dim + 1)),
                              (np.ones(dim), 2 * np.eye(dim)), (np.zeros(dim), np.zeros((dim, dim)))])

    def check_frechet(out: Any) -> None:
        expect(isinstance(out, float) and math.isfinite(out) and out >= 0, "frechet: not a finite value >= 0",
               out)
        if same:
            expect(out == 0.0, "frechet: identical statistics give a distance other than 0", out)
    return (f"frechet_distance({short(mu1)}, {short(s1)}, {short(mu2)}, {short(s2)})",
            lambda: frechet_distance(mu1, s1, mu2, s2), check_frechet)


def grid_inputs(rng: random.Random) -> tuple[Any, Any, Any]:
    x, y = pair(rng)
    period = rng.choice([8, 16, 2, 1, 0, -8, 8.0, "8", None, 1000])
    return x, y, period


def metric_lattice(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.metrics.grid import grid_ratio, lattice_steps

    x, _y, period = grid_inputs(rng)

    def run_lattice() -> Any:
        return grid_ratio(lattice_steps(x, period))

    def check_lattice(out: Any) -> None:
        expect(isinstance(x, torch.Tensor) and x.ndim == 4, "lattice_steps accepted", short(x))
        expect(isinstance(out, float) and (not finite(x) or (math.isfinite(out) and out >= 0)),
               "grid ratio: not finite >= 0", out)
    return f"grid_ratio(lattice_steps({short(x)}, {period!r}))", run_lattice, check_lattice


def metric_grid(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.metrics import grid_score

    x, y, period = grid_inputs(rng)

    def check_grid(out: Any) -> None:
        ok = isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape and x.ndim == 4
        expect(ok, "grid_score accepted", f"{short(x)}, {short(y)}")
        expect(isinstance(out, float) and (not (finite(x) and finite(y)) or (math.isfinite(out) and out >= 0)),
               "grid_score: not finite >= 0", out)
        if torch.equal(x, y):
            expect(out == 1.0, "grid_score: identical images do not give 1.0", out)
    return f"grid_score({short(x)}, {short(y)}, {period!r})", lambda: grid_score(x, y, period), check_grid


def metric_build(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.metrics import build_metric

    metric = rng.choice(["psnr", "ssim", "grid", "PSNR", "lpips", "lpips_alex", "ssim ", "psnr,ssim", "fid", "",
                         "psnr", "grid", "rfid" if rng.random() < 0.1 else "psnr"])
    period = rng.choice([8, 8, 16, 1, 0, "8"])
    batches = [pair(rng) for _ in range(rng.choice([0, 1, 1, 2]))]

    def run_build() -> Any:
        m = build_metric(metric, torch.device("cpu"), period=period)
        for a, b in batches:
            m.update(a, b)
        return m.compute()

    def check_build(out: Any) -> None:
        valid = all(isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                    and a.ndim in (4, 5) and not a.is_complex() for a, b in batches)  # any channel count
        expect(valid and batches, f"metric {metric.strip().lower()}: accepted", short(batches))
        expect(isinstance(out, float), f"metric {metric}: not a float", out)
        fin = all(finite(a) and finite(b) for a, b in batches)
        expect(not fin or math.isfinite(out), f"metric {metric}: not finite from finite input", out)
        if "psnr" in metric.lower() and fin:
            expect(out <= 100.0, "metric psnr: above its 100 dB cap", out)
        if "ssim" in metric.lower() and fin:
            expect(-1 <= out <= 1, "metric ssim: outside [-1, 1]", out)
    return (f"build_metric({metric!r}, period={period!r}).update x{len(batches)}: {short(batches)}",
            run_build, check_build)


def metric_canonical(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.metrics.streaming import canonical_metric

    metric = rng.choice(["psnr", "LPIPS_VGG", "lpips-alex", "rFID", "x", "", 5, None, "grid "])
    return f"canonical_metric({metric!r})", lambda: canonical_metric(metric), None


def metric_macs(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.metrics import compression_ratio, count_macs, latent_size, measure_macs

    config = rng.choice([env.model.config, vitok.get_config("N-N/2x8"), "N-N/8", None])
    shape = rng.choice([None, (1, 64, 64), (1, 8, 8), (4, 32, 32), (1, 0, 8), (1, -8, 8), (0, 8, 8), (1, 8),
                        "64", (1, 8.5, 8), [1, 16, 16], (1, 10**6, 10**6)])
    fn = rng.choice([count_macs, latent_size, compression_ratio, measure_macs])
    if fn is measure_macs and shape is not None and not isinstance(shape, str) and len(shape) == 3 and \
            isinstance(shape[1], int) and shape[1] > 64:
        fn = count_macs  # the meta-device pass is cheap but not at 10^6 px

    def check_macs(out: Any) -> None:
        ok_shape = shape is None or (isinstance(shape, (tuple, list)) and len(shape) == 3 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape))
        expect(ok_shape and not isinstance(config, (str, type(None))), f"{fn.__name__} accepted",
               f"{config if isinstance(config, str) else 'config'}, {shape!r} -> {out!r}")
        value = out.total if hasattr(out, "total") else out
        expect(value > 0 and math.isfinite(value), f"{fn.__name__}: not positive", value)
    return f"{fn.__name__}({short(config)}, {shape!r})", lambda: fn(config, shape), check_macs


def metric_load_stats(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.metrics.frechet import load_stats

    path = rng.choice([env.root / "stats.npz", env.media["text.jpg"]["path"], env.root / "missing.npz",
                       env.media["folder.png"]["path"], env.root / "bad_stats.npz", env.root / "pickled.npz"])
    return f"load_stats({path.name})", lambda: load_stats(path), None


METRIC_CASES: dict[str, Callable[[random.Random, ApiEnv], Case]] = {
    "psnr": metric_psnr, "ssim": metric_ssim, "frechet": metric_frechet, "stats": metric_stats, "grid": metric_grid,
    "build": metric_build, "canonical": metric_canonical, "macs": metric_macs, "load_stats": metric_load_stats,
    "lattice": metric_lattice,
}
