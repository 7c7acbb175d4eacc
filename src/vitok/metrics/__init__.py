"""Metrics: the model's MACs, reconstruction metrics (PSNR, SSIM, LPIPS, the patch-grid measure)
and Frechet distances (rFID, rFVD, gFID), streamed over batches and reduced across processes.

>>> from vitok.metrics import FrechetMetric, build_metric, frechet_distance
>>> psnr_metric = build_metric("psnr", torch.device("cpu"))
>>> psnr_metric.update(x, recon); psnr_metric.compute()
"""
from typing import TYPE_CHECKING

from vitok.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "vitok.metrics.flops": ["MacCount", "compression_ratio", "count_macs", "latent_size", "measure_macs"],
    "vitok.metrics.frechet": ["FeatureStats", "frechet_distance"],
    "vitok.metrics.grid": ["grid_score"],
    "vitok.metrics.lpips": ["LPIPS"],
    "vitok.metrics.psnr": ["psnr"],
    "vitok.metrics.streaming": ["FrechetMetric", "GridMetric", "MeanMetric", "build_metric"],
})

if TYPE_CHECKING:  # for type checkers; at run time each name is imported on first use
    from vitok.metrics.flops import MacCount, compression_ratio, count_macs, latent_size, measure_macs
    from vitok.metrics.frechet import FeatureStats, frechet_distance
    from vitok.metrics.grid import grid_score
    from vitok.metrics.lpips import LPIPS
    from vitok.metrics.psnr import psnr
    from vitok.metrics.streaming import FrechetMetric, GridMetric, MeanMetric, build_metric
