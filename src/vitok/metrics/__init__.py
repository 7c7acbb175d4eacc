"""Metrics: FLOPs (MACs) of the model; reconstruction metrics arrive with the evaluation work."""

from vitok.metrics.flops import MacCount, compression_ratio, count_macs, latent_size, measure_macs
from vitok.metrics.psnr import psnr

__all__ = ["MacCount", "compression_ratio", "count_macs", "latent_size", "measure_macs", "psnr"]
