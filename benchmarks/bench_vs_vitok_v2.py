"""vitok vs the ViTok-v2 release code at exactly the S-B/16 shape, in one process, every precision.

    python benchmarks/bench_vs_vitok_v2.py --size 256 512 [--compile] [--peers DIR]

The peer is the ViTok-v2 release's model package (``vitok_v2``, imports renamed so it loads beside
``vitok``), found in ``--peers`` (default: ``shared/peers`` beside the repository) and skipped with a
message when absent. Its AE is built at the S-B/16 shape (encoder width 768 / depth 6 / 12 heads,
decoder 768 / 12 / 12, p = 16, MLP ratio 2.67, 16 latent channels), so both models do the same
GMACs. Its forward takes patches and their row / column indices; ours takes pixels and does its
own patchify / unpatchify (a few reshapes), which its time includes. Neither uses an attention
mask. Each precision is prepared the same way for both models (fp32; fp32 weights under bf16
autocast; weights cast to bf16 once; optionally ``torch.compile`` of encode and decode), and
every row prints the ratio of the peer's time to ours (above 1: vitok is faster).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
from torch import nn

from vitok import ViTok
from vitok.bench import bench_model, matmul_peak, median_seconds
from vitok.metrics.flops import count_macs
from vitok.models.inference import autocast, compute_dtype
from vitok.models.precisions import BENCH_PRECISIONS

REPO = Path(__file__).resolve().parents[1]


def load_peer(peers: Path) -> type | None:
    """The peer's AE class and its variant parser, or None when its code is not there."""
    if not (peers / "vitok_v2").is_dir():
        return None
    sys.path.insert(0, str(peers))
    from vitok_v2.models.ae import AE, decode_variant

    return lambda: AE(**decode_variant("w768_d6_h12-w768_d12_h12/1x16x16"), attn_backend="sdpa")


def peer_inputs(size: int, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
    """The peer's patch dict for a batch of size x size images: (B, N, 16*16*3) patches, all valid."""
    n = size // 16
    rows, cols = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    return {"patches": torch.rand(batch, n * n, 768, device=device) * 2 - 1,
            "row_idx": rows.flatten().expand(batch, -1).to(device),
            "col_idx": cols.flatten().expand(batch, -1).to(device),
            "patch_mask": None, "orig_height": None, "orig_width": None}


def time_peer(peer: nn.Module, size: int, batch: int, precision: str, compiled: bool, repeats: int,
              device: torch.device) -> float:
    """Per-image encode + decode ms of the peer prepared like ours for ``precision``."""
    net = copy.deepcopy(peer).to(device).eval()
    if precision == "bf16":
        net = net.to(torch.bfloat16)
    encode, decode = (torch.compile(net.encode), torch.compile(net.decode)) if compiled else (net.encode, net.decode)
    inputs = peer_inputs(size, batch, device)
    if precision == "bf16":
        inputs["patches"] = inputs["patches"].to(torch.bfloat16)
    with torch.inference_mode(), autocast(precision, device):
        latent = encode(inputs)
        enc = median_seconds(lambda: encode(inputs), repeats, device)
        dec = median_seconds(lambda: decode(latent), repeats, device)
    return 1000 * (enc + dec) / batch


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, nargs="+", default=[256, 512])
    p.add_argument("--precision", nargs="+", choices=BENCH_PRECISIONS, default=list(BENCH_PRECISIONS))
    p.add_argument("--compile", action="store_true", help="also compare compiled fp32 and bf16")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--peers", type=Path, default=REPO.parent / "shared" / "peers")
    args = p.parse_args()
    build_peer = load_peer(args.peers)
    if build_peer is None:
        print(f"skipped: the ViTok-v2 release code is not in {args.peers}")
        return 0
    device = torch.device(args.device)
    torch.manual_seed(0)
    ours, peer = ViTok.from_preset("S-B/16"), build_peer()
    print(f"parameters: vitok {sum(t.numel() for t in ours.parameters()) / 1e6:.1f}M, "
          f"ViTok-v2 {sum(t.numel() for t in peer.parameters()) / 1e6:.1f}M")
    peaks = {d: matmul_peak(d, device) for d in {compute_dtype(p) for p in args.precision}}
    print(f"{'size':>5} {'precision':>21} {'vitok ms':>9} {'v2 ms':>9} {'v2 / vitok':>10} {'vitok %peak':>11}")
    for size in args.size:
        gmacs = count_macs(ours.config, (1, size, size)).gmacs
        for precision in args.precision:
            for compiled in [False, True] if args.compile and precision != "bf16-autocast" else [False]:
                r = bench_model(ours, "vitok", gmacs, (1, size, size), args.batch_size, precision, args.repeats,
                                device, peaks[compute_dtype(precision)], compiled)
                theirs = time_peer(peer, size, args.batch_size, precision, compiled, args.repeats, device)
                print(f"{size:>5} {r.mode:>21} {r.total_ms:9.2f} {theirs:9.2f} {theirs / r.total_ms:10.2f} "
                      f"{100 * r.fraction_of_peak:10.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
