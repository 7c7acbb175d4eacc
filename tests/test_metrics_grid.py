"""The patch-grid measure: synthetic blocky and smooth reconstructions, the floor, pooling."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import smooth_image
from vitok.metrics.grid import grid_ratio, grid_score, lattice_steps
from vitok.metrics.streaming import build_metric


def blocky(x: torch.Tensor, p: int, seed: int = 0) -> torch.Tensor:
    """x plus a constant random offset per p x p patch (an error with jumps only at borders)."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = x.shape
    offsets = torch.randn(n, c, h // p, w // p, generator=g) * 10
    return x + offsets.repeat_interleave(p, -2).repeat_interleave(p, -1)


def test_identical_images_give_the_floor() -> None:
    x = smooth_image(64, 64)[None] * 127.5 + 127.5
    assert grid_score(x, x, 8) == 1.0


def test_blocky_scores_high_smooth_scores_near_one() -> None:
    x = smooth_image(64, 64)[None] * 127.5 + 127.5
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(x.shape, generator=g) * 5
    assert grid_score(x, x + noise, 8) == pytest.approx(1.0, abs=0.05)  # white noise: no lattice
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    smooth_error = 5 * torch.sin(xx / 5.3 + 1) * torch.cos(yy / 7.1 + 2)  # smooth, not lattice-aligned
    assert grid_score(x, x + smooth_error, 8) == pytest.approx(1.0, abs=0.1)
    assert grid_score(x, blocky(x, 8) + noise, 8) > 1.8  # offsets of std 10 over noise of std 5
    assert grid_score(x, blocky(x, 8), 8) > 100  # a pure blocky error steps only at borders


def test_lattice_counts_and_period_checks() -> None:
    stats = lattice_steps(torch.ones(1, 1, 16, 16), 8)
    # per row: 15 x-steps, one (between columns 7 and 8) crosses a border; same for y
    assert stats.tolist() == [0.0, 2 * 16.0, 0.0, 2 * 16 * 14.0]
    with pytest.raises(ValueError, match="at least 2"):
        lattice_steps(torch.ones(1, 1, 16, 16), 1)
    with pytest.raises(ValueError, match="no patch border"):
        grid_ratio(lattice_steps(torch.ones(1, 1, 8, 8), 8))


def test_streaming_grid_metric_pools_images_and_video_frames() -> None:
    x = torch.stack([smooth_image(32, 32, i) for i in range(2)])
    recon = (blocky(x * 127.5, 8) / 127.5).clamp(-1, 1)
    metric = build_metric("grid", torch.device("cpu"), period=8)
    metric.update(x, recon)
    score = metric.compute()
    video = build_metric("grid", torch.device("cpu"), period=8)
    video.update(x.unsqueeze(2), recon.unsqueeze(2))  # (B, 3, T=1, H, W)
    assert score > 2 and video.compute() == pytest.approx(score)


def test_metrics_package_exports() -> None:
    from vitok.metrics import FrechetMetric, GridMetric, build_metric, frechet_distance

    assert isinstance(build_metric("grid", torch.device("cpu"), period=4), GridMetric)
    assert callable(frechet_distance) and FrechetMetric.__name__ == "FrechetMetric"


def test_grid_arguments_are_checked_and_thin_or_empty_images_give_no_nan() -> None:
    """Fuzz campaign kinds: a string period, mismatched or non-tensor images raised raw errors; a
    one-pixel-wide or empty error divided 0 by 0 and returned NaN."""
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(TypeError, match="period must be an int"):
        grid_score(x, x, "8")
    with pytest.raises(ValueError, match="same shape"):
        grid_score(x, torch.zeros(1, 3, 16, 8), 8)
    with pytest.raises(TypeError, match="recon must be"):
        grid_score(x, (8, 8), 8)
    thin = lattice_steps(torch.rand(3, 3, 7, 1), 8)
    assert torch.isfinite(thin).all() and thin.tolist()[1] == 0
    assert torch.equal(lattice_steps(torch.zeros(0, 3, 9, 1), 8), torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="no patch border"):
        grid_ratio(thin)
    metric = build_metric("grid", torch.device("cpu"), period=8)
    with pytest.raises(ValueError, match="same shape"):
        metric.update(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 8))
