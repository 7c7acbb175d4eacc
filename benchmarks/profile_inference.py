"""Where encode + decode spend their time: the top operators of a torch.profiler run.

    python benchmarks/profile_inference.py --model S-B/16 --size 256 --precision fp32 bf16

For each precision (prepared as ``vitok bench`` does, :mod:`vitok.models.inference`), one warm-up
call and then ``--repeats`` profiled encode + decode calls of one random image. Prints the
operators by self CPU time and the share of the matmuls (``aten::addmm`` / ``mm`` / ``bmm`` /
``linear`` and the attention kernel) against everything else (RoPE, norms, SwiGLU gating, copies).
"""

from __future__ import annotations

import argparse
import copy

import torch
from torch.profiler import ProfilerActivity, profile

from vitok.cli.common import load_model
from vitok.models.inference import autocast, prepare_for_inference
from vitok.models.precisions import BENCH_PRECISIONS

MATMUL_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear",
              "aten::_scaled_dot_product_flash_attention_for_cpu", "aten::convolution", "aten::mkldnn_convolution")


def profile_once(model: torch.nn.Module, size: int, precision: str, repeats: int, top: int) -> None:
    net = prepare_for_inference(copy.deepcopy(model), "fp32" if precision == "bf16-autocast" else precision)
    x = torch.rand(1, 3, size, size) * 2 - 1
    with torch.inference_mode(), autocast(precision, "cpu"):
        net.decode(net.encode(x))
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                net.decode(net.encode(x))
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS)
    print(f"\n== {precision}: {total / 1e3 / repeats:.1f} ms per encode + decode; matmuls / attention "
          f"{100 * matmul / total:.1f}%, everything else {100 * (total - matmul) / total:.1f}%")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]:
        print(f"  {e.key:<55} {100 * e.self_cpu_time_total / total:5.1f}%  {e.count // repeats:5d} calls")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="S-B/16")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--precision", nargs="+", choices=BENCH_PRECISIONS, default=["fp32", "bf16"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args()
    model = load_model(args.model, "cpu")
    for precision in args.precision:
        profile_once(model, args.size, precision, args.repeats, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
