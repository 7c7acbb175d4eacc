"""The Frechet distance's matrix square root: vitok's eigenvalue form vs scipy's ``sqrtm`` (what
pytorch-fid uses), same covariances, same run. Prints seconds per call, the ratio and the
difference in the result.

    python benchmarks/bench_frechet.py [--dim 2048] [--samples 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def sqrtm_frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """pytorch-fid's formula: scipy.linalg.sqrtm of S1 S2, with its eps retry for singular products."""
    from scipy import linalg

    covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def main() -> None:
    from vitok.metrics.frechet import frechet_distance

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=2048, help="feature dimension (2048: InceptionV3 pool)")
    p.add_argument("--samples", type=int, default=5000, help="samples per covariance")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((args.dim, args.dim)) / np.sqrt(args.dim)
    a = rng.standard_normal((args.samples, args.dim)) @ mix
    b = rng.standard_normal((args.samples, args.dim)) @ mix + 0.1
    stats = [(x.mean(0), np.cov(x, rowvar=False)) for x in (a, b)]
    times, values = {}, {}
    for name, fn in (("eigenvalues (vitok)", frechet_distance), ("scipy sqrtm (pytorch-fid)", sqrtm_frechet)):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            values[name] = fn(stats[0][0], stats[0][1], stats[1][0], stats[1][1])
            best = min(best, time.perf_counter() - start)
        times[name] = best
        print(f"{name:>26}: {best:.2f} s, FD {values[name]:.6f}")
    (ours, theirs) = times.values()
    print(f"dim {args.dim}, {args.samples} samples: eigenvalues are {theirs / ours:.1f}x the speed of sqrtm; "
          f"|difference| {abs(np.subtract(*values.values())):.2e}")


if __name__ == "__main__":
    main()
