"""ViTok vs the Stable Diffusion VAE: encode + decode speed, memory and FLOP efficiency, same run.

Both models are built with random weights (timing does not depend on them): ViTok from a preset,
the SD VAE as ``diffusers.AutoencoderKL`` with the published SD v1 config. For every size and
precision (fp32, bf16 autocast) each model runs in its own fresh subprocess (so peak memory is
its own), one after the other, and the script prints ms per image, peak memory, achieved GFLOP/s
against the same machine's measured matmul peak, and the SD-VAE / ViTok ratio.

    python benchmarks/bench_vs_sdvae.py --sizes 256 512 --batch 1 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

SD_VAE_CONFIG = {  # runwayml/stable-diffusion-v1-5 vae/config.json
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "sample_size": 512, "act_fn": "silu",
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32,
}


def build(model: str, device: str) -> tuple[torch.nn.Module, callable]:
    """The model and its encode+decode function x -> x_hat."""
    if model == "sd-vae":
        from diffusers import AutoencoderKL

        vae = AutoencoderKL(**SD_VAE_CONFIG).to(device).eval()
        return vae, lambda x: vae.decode(vae.encode(x).latent_dist.mode()).sample
    from vitok import ViTok

    vitok = ViTok.from_preset(model).to(device).eval()
    return vitok, lambda x: vitok.decode(vitok.encode(x), size=x.shape[-2:])


def count_macs(model: str, size: int) -> int:
    """MACs of one image's encode+decode, counted by FlopCounterMode on the meta device with the
    math attention backend (no memory, no compute)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        _, fn = build(model, "meta")
        x = torch.zeros(1, 3, size, size)
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn(x)
    return counter.get_total_flops() // 2


def current_rss() -> int:
    """Resident memory of this process now, in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_bytes(device: str) -> int:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def worker(model: str, size: int, batch: int, precision: str, repeats: int, device: str) -> dict:
    """Time one (model, size, precision) in this process; returns a JSON-able dict.

    Peak memory: CUDA max allocated, or on CPU the peak RSS above the resident weights and input.
    """
    torch.manual_seed(0)
    net, fn = build(model, device)
    x = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    macs = count_macs(model, size)
    rss_before = current_rss()  # weights and input already resident; the peak above it is activations
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    autocast = torch.autocast(torch.device(device).type, torch.bfloat16, enabled=precision == "bf16")
    times = []
    with torch.inference_mode(), autocast:
        fn(x)  # warm-up
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2] / batch  # median, per image
    return {"model": model, "size": size, "precision": precision, "ms": seconds * 1e3,
            "gmacs": macs / 1e9, "gflops_s": 2 * macs / seconds / 1e9,
            "peak_mb": (peak_bytes(device) - (0 if device.startswith("cuda") else rss_before)) / 2**20,
            "memory": "max allocated" if device.startswith("cuda") else "peak RSS above weights",
            "params_m": sum(p.numel() for p in net.parameters()) / 1e6}


def matmul_peak(dtype: torch.dtype, device: str, n: int = 2048, repeats: int = 10) -> float:
    """Achieved GFLOP/s of a square matmul: the machine's practical peak for this dtype."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def run_worker(args: argparse.Namespace, model: str, size: int, precision: str) -> dict:
    command = [sys.executable, __file__, "--worker", model, str(size), precision,
               "--batch", str(args.batch), "--repeats", str(args.repeats), "--device", args.device]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="S-B/16", help="vitok preset to compare")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "SIZE", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        model, size, precision = args.worker
        print(json.dumps(worker(model, int(size), args.batch, precision, args.repeats, args.device)))
        return

    peaks = {"fp32": matmul_peak(torch.float32, args.device), "bf16": matmul_peak(torch.bfloat16, args.device)}
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}; matmul peak "
          f"fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    print(f"{'model':>8} {'size':>5} {'prec':>5} {'GMACs':>7} {'ms/img':>9} {'peak MB':>8} "
          f"{'GFLOP/s':>8} {'%peak':>6}")
    for size in args.sizes:
        results = {}
        for precision in args.precisions:
            for model in (args.model, "sd-vae"):
                r = run_worker(args, model, size, precision)
                results[model, precision] = r
                print(f"{model:>8} {size:>5} {precision:>5} {r['gmacs']:7.1f} {r['ms']:9.1f} {r['peak_mb']:8.0f} "
                      f"{r['gflops_s']:8.1f} {100 * r['gflops_s'] / peaks[precision]:5.1f}%")
        for precision in args.precisions:
            ratio = results["sd-vae", precision]["ms"] / results[args.model, precision]["ms"]
            print(f"  {size}px {precision}: {args.model} is {ratio:.1f}x faster than SD-VAE")
        if len(args.precisions) == 2:
            for model in (args.model, "sd-vae"):
                speedup = results[model, "fp32"]["ms"] / results[model, "bf16"]["ms"]
                print(f"  {size}px {model}: bf16 autocast is {speedup:.2f}x the speed of fp32")


if __name__ == "__main__":
    main()
