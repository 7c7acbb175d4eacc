"""One prepared accelerator check, to run in a single call on a GPU machine (it also runs on CPU with
``--smoke`` for a quick test of the script itself).

    PYTHONPATH=src python benchmarks/gpu_check.py --out $OUT/gpu_check.json           # GPU, paper sizes
    python benchmarks/gpu_check.py --smoke --device cpu --out out/gpu_check.json     # CPU, tiny sizes

What it measures, all in one process:

1. the device and its measured fp32 and bf16 matmul peaks (TFLOP/s);
2. flash attention: the model's forward under ``sdpa_kernel(FLASH_ATTENTION)`` alone (bf16), so a
   layout that silently falls back to the math kernel fails loudly;
3. inference: encode / decode ms per image of the preset at each size in the paths of
   ``vitok bench`` (fp32, bf16 autocast, bf16 weights, bf16 weights ``torch.compile``d; see
   ``vitok.models.inference``), with achieved TFLOP/s (2 x MACs / time) and its share of the
   measured peak of the compute dtype, and the same for the SD VAE when ``diffusers`` imports;
4. a stage-1 training step (MSE + KL, AdamW, bf16 autocast), eager and compiled: steps/s, images/s
   and MFU = 6 x MACs x images/s over the measured matmul peak and over ``--peak-tflops``.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from torch import nn

from vitok import ViTok
from vitok.bench import bench_model, matmul_peak, train_steps_per_second
from vitok.metrics.flops import count_macs
from vitok.models.inference import compute_dtype
from vitok.presets import get_config


def device_info(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
    peak_n = 8192 if device.type == "cuda" else 512
    info["matmul_bf16_tflops"] = matmul_peak(torch.bfloat16, device, n=peak_n) / 1e3
    info["matmul_fp32_tflops"] = matmul_peak(torch.float32, device, n=peak_n) / 1e3
    return info


def check_flash(model: ViTok, size: int, device: torch.device) -> dict:
    """Forward with only the flash kernel allowed: ok, or the error that says why it was refused."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    x = torch.rand(2, 3, size, size, device=device) * 2 - 1
    try:
        with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16), \
                sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            model(x)
        return {"flash_only_forward": "ok"}
    except RuntimeError as err:  # no flash kernel for this device / dtype / layout
        return {"flash_only_forward": f"refused: {str(err).splitlines()[0][:300]}"}


MODES = [("fp32", False), ("bf16-autocast", False), ("bf16", False), ("bf16", True)]  # (precision, compiled)


def codec_row(model: nn.Module, name: str, precision: str, compiled: bool, gmacs: float, size: int, batch: int,
              repeats: int, device: torch.device, peaks: dict[torch.dtype, float]) -> dict:
    """Per-image encode / decode ms, images/s, achieved TFLOP/s and its share of the peak of the
    precision's compute dtype (``peaks``: GFLOP/s by torch dtype)."""
    peak = peaks[compute_dtype(precision)]
    r = bench_model(model, name, gmacs, (1, size, size), batch, precision, repeats, device, peak, compiled)
    row = {"model": name, "size": size, "mode": r.mode, "batch": batch, "encode_ms": r.encode_ms,
           "decode_ms": r.decode_ms, "images_per_s": r.frames_per_s, "tflops": r.gflops_s / 1e3,
           "fraction_of_peak": r.fraction_of_peak, "compile_s": r.compile_s, "peak_mb": r.peak_mb}
    print(json.dumps(row), flush=True)  # as it comes: a run cut short by its time limit keeps its rows
    return row


def inference_rows(model: ViTok, name: str, sizes: list[int], batch: int, repeats: int, device: torch.device,
                   compile_too: bool, peaks: dict[torch.dtype, float]) -> list[dict]:
    modes = [m for m in MODES if compile_too or not m[1]]
    return [codec_row(model, name, precision, compiled, count_macs(model.config, (1, size, size)).gmacs, size, batch,
                      repeats, device, peaks) for size in sizes for precision, compiled in modes]


def sd_vae_rows(sizes: list[int], batch: int, repeats: int, device: torch.device, compile_too: bool,
                peaks: dict[torch.dtype, float]) -> list[dict]:
    """The SD VAE (random weights: timing only) at the same sizes and modes, when diffusers is installed."""
    try:
        from vitok.models.baselines import load_sd_vae
        vae = load_sd_vae(None, device)
    except ImportError as err:
        return [{"model": "sd-vae", "skipped": str(err)}]
    modes = [m for m in MODES if compile_too or not m[1]]
    return [codec_row(vae, "sd-vae", precision, compiled, vae.gmacs((1, size, size)), size, batch, repeats, device,
                      peaks) for size in sizes for precision, compiled in modes]


def train_row(preset: str, size: int, batch: int, steps: int, device: torch.device, compiled: bool,
              peak_tflops: float, measured_tflops: float) -> dict:
    """Steps/s and MFU of a stage-1 step (MSE + KL; the perceptual network is not part of MFU)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rate = train_steps_per_second(preset, size, batch, steps, "bf16", "none", device, compiled, warmup=3)
    gmacs = count_macs(get_config(preset), (1, size, size)).gmacs
    achieved = 6 * gmacs * batch * rate / 1e3  # TFLOP/s: forward 2 x MACs, backward twice that
    row = {"preset": preset, "size": size, "batch": batch, "compiled": compiled, "steps_per_s": rate,
           "images_per_s": batch * rate, "model_tflops": achieved,
           "mfu_vs_measured_peak": achieved / measured_tflops, "mfu_vs_spec_peak": achieved / peak_tflops}
    if device.type == "cuda":
        row["max_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--preset", default="S-B/16")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--batch", type=int, default=32, help="inference batch")
    p.add_argument("--train-batch", type=int, default=64)
    p.add_argument("--train-steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--peak-tflops", type=float, default=989.0, help="spec dense bf16 peak (H100/H200 SXM: 989)")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--smoke", action="store_true", help="tiny preset and sizes (a test of the script)")
    p.add_argument("--out", type=Path, default=Path("out/gpu_check.json"))
    args = p.parse_args()
    if args.smoke:
        args.preset, args.sizes, args.batch, args.repeats = "N-N/8", [32], 2, 1
        args.train_batch, args.train_steps = 2, 1
    device = torch.device(args.device)
    compile_too = not args.no_compile

    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    report["device"] = info = device_info(device)
    print(json.dumps(info))
    model = ViTok.from_preset(args.preset).to(device).eval()
    report["flash"] = check_flash(model, args.sizes[0], device)
    print(json.dumps(report["flash"]))
    peaks = {torch.bfloat16: 1e3 * info["matmul_bf16_tflops"], torch.float32: 1e3 * info["matmul_fp32_tflops"]}
    report["inference"] = inference_rows(model, args.preset, args.sizes, args.batch, args.repeats, device,
                                         compile_too, peaks)
    report["inference"] += sd_vae_rows(args.sizes, args.batch, args.repeats, device, compile_too, peaks)
    report["train"] = []
    for compiled in ([False, True] if compile_too else [False]):
        row = train_row(args.preset, args.sizes[0], args.train_batch, args.train_steps, device, compiled,
                        args.peak_tflops, info["matmul_bf16_tflops"])
        report["train"].append(row)
        print(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
