"""ViTok S-B/16 vs the Stable Diffusion VAE (diffusers.AutoencoderKL, SD v1 config, random weights),
encode + decode, fp32 and bf16 autocast, same process, same run. Prints ms per image, peak memory,
achieved GFLOP/s against the measured matmul peak, and the speed ratios.

    python benchmarks/bench_vs_sdvae.py [--size 256 512] [--repeats 3]
"""

from __future__ import annotations

import sys

from vitok.cli import main

if __name__ == "__main__":
    args = sys.argv[1:] or ["--size", "256", "512"]
    raise SystemExit(main(["bench", "--model", "S-B/16", "--baseline", "sd-vae", *args]))
