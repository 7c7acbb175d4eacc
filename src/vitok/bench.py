"""Speed and memory of encode / decode, side by side in one process (``vitok bench``).

For each model, size and precision: median latency of encode and decode per image (or clip),
throughput (images/s or frames/s), peak memory (CUDA: max allocated; CPU: peak resident memory
above the level before the call, sampled every 2 ms), achieved GFLOP/s (2 x MACs / time) and its
fraction of the same run's measured matmul peak for that precision.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int | None = None, repeats: int = 10,
                budget: float = 0.05) -> float:
    """Achieved GFLOP/s of a square matmul: the practical peak of this device and dtype.

    The size grows from 256 by doubling up to ``n`` (default 8192 on a GPU, which 2048 leaves at
    about half its bf16 peak, and 2048 on a CPU) while one product takes under ``budget`` seconds,
    so a dtype the hardware only emulates (bf16 on a CPU without AVX-512-BF16 / AMX, measured here
    at tens of seconds for n = 2048) is measured at a size that finishes.
    """
    n = n or (8192 if device.type == "cuda" else 2048)
    size = min(256, n)
    while True:
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        product = functools.partial(torch.matmul, a, b)
        seconds = median_seconds(product, 1, device)
        if size >= n or seconds > budget:
            break
        size *= 2
    return 2 * size**3 / median_seconds(product, repeats, device) / 1e9


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after one warm-up call."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _rss() -> int:
    import resource

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _malloc_trim() -> None:
    """glibc's malloc_trim(0); a no-op where it does not exist."""
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


class PeakMemory:
    """Peak memory used inside the ``with`` block, in bytes (see module docstring)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak, self._stop = device, 0, threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        _malloc_trim()  # hand freed heap pages back so that growth in RSS means new allocations
        self._base = _rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss() - self._base)
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._base
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss() - self._base)


@dataclass
class BenchResult:
    model: str
    shape: tuple[int, int, int]
    precision: str  # fp32, bf16-autocast or bf16 (see vitok.models.inference)
    compiled: bool
    gmacs: float
    encode_ms: float
    decode_ms: float
    peak_mb: float
    matmul_peak: float  # GFLOP/s of this run's matmul in the precision's compute dtype
    compile_s: float = 0.0  # seconds of the first (compiling) calls, minus one timed run

    @property
    def mode(self) -> str:
        return self.precision + ("+compile" if self.compiled else "")

    @property
    def total_ms(self) -> float:
        return self.encode_ms + self.decode_ms

    @property
    def frames_per_s(self) -> float:
        return self.shape[0] * 1000 / self.total_ms

    @property
    def gflops_s(self) -> float:
        return 2 * self.gmacs / (self.total_ms / 1000)

    @property
    def fraction_of_peak(self) -> float:
        return self.gflops_s / self.matmul_peak


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """fp32 convolutions and matmuls in full fp32 on a GPU: cuDNN's default TF32 for convolutions
    (on in PyTorch, while matmuls default to full fp32) would time a conv VAE's "fp32" at up to 3x
    the measured fp32 matmul peak. Restores both flags on exit."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def bench_model(model: nn.Module, name: str, gmacs: float, shape: tuple[int, int, int], batch: int,
                precision: str, repeats: int, device: torch.device, peak: float,
                compiled: bool = False) -> BenchResult:
    """Time encode and decode of a (batch, 3, [T,] H, W) input on a copy of ``model`` prepared for
    ``precision`` (and compiled if asked, :mod:`vitok.models.inference`); per-item latencies in ms.
    The first call of each (compiling, when ``compiled``) is timed apart as ``compile_s``."""
    import copy

    from vitok.models.inference import autocast, prepare_for_inference

    net = prepare_for_inference(copy.deepcopy(model), "fp32" if precision == "bf16-autocast" else precision,
                                device, compiled)
    t, h, w = shape
    x = torch.rand(batch, 3, *((t, h, w) if t > 1 else (h, w)), device=device) * 2 - 1
    with torch.inference_mode(), autocast(precision, device), full_fp32(), PeakMemory(device) as memory:
        start = time.perf_counter()
        z = net.encode(x)
        net.decode(z)
        synchronize(device)
        first = time.perf_counter() - start
        enc = median_seconds(lambda: net.encode(x), repeats, device)
        dec = median_seconds(lambda: net.decode(z), repeats, device)
    compile_s = max(0.0, first - enc - dec) if compiled else 0.0
    return BenchResult(name, shape, precision, compiled, gmacs, 1000 * enc / batch, 1000 * dec / batch,
                       memory.peak / 2**20, peak, compile_s)


def format_row(r: BenchResult) -> str:
    t, h, w = r.shape
    shape = f"{t}x{h}x{w}" if t > 1 else f"{h}x{w}"
    compile_s = f"{r.compile_s:8.1f}" if r.compiled else f"{'-':>8}"
    return (f"{r.model:>10} {shape:>11} {r.mode:>21} {r.gmacs:8.1f} {r.encode_ms:9.1f} {r.decode_ms:9.1f} "
            f"{r.total_ms:9.1f} {r.frames_per_s:8.2f} {r.peak_mb:8.0f} {r.gflops_s:8.1f} "
            f"{100 * r.fraction_of_peak:6.1f}% {compile_s}")


HEADER = (f"{'model':>10} {'input':>11} {'precision':>21} {'GMACs':>8} {'enc ms':>9} {'dec ms':>9} "
          f"{'total ms':>9} {'frames/s':>8} {'peak MB':>8} {'GFLOP/s':>8} {'%peak':>7} {'compile s':>8}")


def run_bench(model: nn.Module, name: str, macs_fn: Callable[[tuple[int, int, int]], float],
              shapes: list[tuple[int, int, int]], precisions: list[str], batch: int, repeats: int,
              device: torch.device, baseline: tuple[nn.Module, str, Callable] | None = None,
              log: Callable[[str], None] = print, compile: bool = False) -> list[BenchResult]:
    """Benchmark ``model`` (and ``baseline``) at every shape and precision (fp32 and bf16 weights
    also compiled when ``compile``); prints a table, each mode's speed relative to fp32 and the ratio to the baseline.
    %peak compares with this run's matmul peak in the precision's compute dtype."""
    from vitok.models.inference import compute_dtype

    dtypes = {p: compute_dtype(p) for p in precisions}
    peaks = {dtype: matmul_peak(dtype, device) for dtype in dict.fromkeys(dtypes.values())}
    log(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; matmul peak "
        + ", ".join(f"{str(d).removeprefix('torch.')} {v:.0f} GFLOP/s" for d, v in peaks.items()))
    log(HEADER)
    results = []
    modes = [(p, c) for p in precisions for c in ([False, True] if compile and p != "bf16-autocast" else [False])]
    for shape in shapes:
        for precision, compiled in modes:
            row = {}
            for net, label, fn in [(model, name, macs_fn)] + ([baseline] if baseline else []):
                r = bench_model(net, label, fn(shape), shape, batch, precision, repeats, device,
                                peaks[dtypes[precision]], compiled)
                log(format_row(r))
                results.append(r)
                row[label] = r
            if baseline:
                ratio = row[baseline[1]].total_ms / row[name].total_ms
                log(f"  -> {name} is {ratio:.1f}x faster than {baseline[1]} ({row[name].mode}, {shape[1]}x{shape[2]})")
    for shape in shapes:
        for label in [name] + ([baseline[1]] if baseline else []):
            by = {r.mode: r for r in results if r.model == label and r.shape == shape}
            if "fp32" in by and len(by) > 1:
                log(f"  -> {label} {shape[1]}x{shape[2]} speed vs fp32: " + ", ".join(
                    f"{mode} {by['fp32'].total_ms / r.total_ms:.2f}x" for mode, r in by.items() if mode != "fp32"))
    return results


def train_steps_per_second(preset: str, size: int, batch: int, steps: int, precision: str,
                           perceptual: str = "none", device: str | torch.device = "cpu",
                           compiled: bool = False, warmup: int = 1) -> float:
    """Optimiser steps per second of a stage-1 step on random (batch, 3, size, size) images: forward
    (``torch.compile``d if asked), MSE + KL (+ ``perceptual``) loss under ``precision`` autocast,
    backward, gradient clipping, AdamW; timed after ``warmup`` steps."""
    from vitok.losses import AutoencoderLoss, LossConfig
    from vitok.models.vitok import ViTok

    device = torch.device(device)
    torch.manual_seed(0)
    model = ViTok.from_preset(preset).to(device).train()
    forward = torch.compile(model) if compiled else model
    loss_fn = AutoencoderLoss(LossConfig(perceptual=perceptual)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95))
    x = torch.rand(batch, 3, size, size, device=device) * 2 - 1

    def step() -> None:
        with torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16"):
            out = forward(x, sample=True)
            loss, _ = loss_fn(x, out.recon, out.posterior, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return steps / (time.perf_counter() - start)
