"""Metrics: the model's MACs, reconstruction metrics (PSNR, SSIM, LPIPS, the patch-grid measure)
and Frechet distances (rFID, rFVD, gFID), streamed over batches and reduced across processes.

>>> from vitok.metrics import FrechetMetric, build_metric, frechet_distance
>>> psnr_metric = build_metric("psnr", torch.device("cpu"))
>>> psnr_metric.update(x, recon); psnr_metric.compute()
"""

from vitok.metrics.flops import MacCount, compression_ratio, count_macs, latent_size, measure_macs
from vitok.metrics.frechet import FeatureStats, frechet_distance
from vitok.metrics.grid import grid_score
from vitok.metrics.lpips import LPIPS
from vitok.metrics.psnr import psnr
from vitok.metrics.streaming import FrechetMetric, GridMetric, MeanMetric, build_metric

__all__ = [
    "LPIPS", "FeatureStats", "FrechetMetric", "GridMetric", "MacCount", "MeanMetric", "build_metric",
    "compression_ratio", "count_macs", "frechet_distance", "grid_score", "latent_size", "measure_macs", "psnr",
]
