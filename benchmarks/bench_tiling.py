"""Tiled encode / decode: seams, memory and cost per megapixel, tiled next to untiled, in one run.

    python benchmarks/bench_tiling.py --photos DIR --out docs/tiling            # vitok-tiny
    python benchmarks/bench_tiling.py --photos DIR --model S-B/16 --sizes 512 1024 2048 --seam-sizes 512

1. **Seams.** Each photo (resized, centre-cropped to 512 and 1024 px) is reconstructed whole
   (when that fits, ``tiled=False``) and tiled (``tiled=True``, the default windows: the model's
   training size, 25% overlap). Reported: the PSNR of both and their gap, and the mean absolute
   step of the reconstruction error across the columns / rows where a window starts or ends,
   over the mean step across the other patch-lattice columns / rows (1.0 = the tile borders are
   no more visible than any patch border; both sets lie on the lattice, since windows are cut at
   token boundaries), next to the same ratio for the whole image's error at the same lines (the
   control: a line may be rougher than average by its place in the picture alone). The worst
   border found is saved as ``worst_border.png``: original, whole, tiled and 8x the
   |tiled - whole| difference, cropped around it. With ``--video``, the same for
   chunk borders in time on a real clip (frame-to-frame error jumps, whole clip vs chunked).
2. **Cost.** Encode + decode of one random image at each size: wall time per megapixel and peak
   memory (``vitok.bench.PeakMemory``: RSS above the level before the call), tiled and untiled
   (untiled up to ``--untiled-max``).
3. **Long video.** A random 256x256 clip of 100, 200 and 300 frames, chunked: time per frame and
   peak memory, also without the output clip itself (``working_mb``: what the chunks need, flat in
   the length when chunking works; the input and output clips grow with it by necessity).

Run it on a quiet machine: the times are meaningful only as ratios within the run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vitok.bench import PeakMemory
from vitok.cli.common import load_model
from vitok.io import is_image_file, load_image, resize_center_crop, save_image
from vitok.metrics.psnr import psnr
from vitok.metrics.seams import line_steps, seam_ratio, window_borders
from vitok.viz import with_caption


def worst_border(x: torch.Tensor, recon: torch.Tensor, rows: set[int], cols: set[int]) -> tuple[str, int]:
    """The window border ("row" / "col", position) across which the error of recon steps most."""
    steps = {}
    for axis, dim, lines in (("row", -2, rows), ("col", -1, cols)):
        at, _ = line_steps(recon - x, dim, 1, lines)
        steps.update({(axis, j): v for j, v in zip(sorted(lines), at)})
    return max(steps, key=steps.get)


def worst_border_picture(x: torch.Tensor, whole: torch.Tensor, tiled: torch.Tensor, where: tuple[str, int],
                         half: int = 48) -> torch.Tensor:
    """Original | whole | tiled | 8x |tiled - whole|, cropped to 2*half px around the border."""
    axis, j = where
    h, w = x.shape[-2:]
    if axis == "col":
        c0, r0 = min(max(0, j - half), w - 2 * half), (h - 2 * half) // 2
    else:
        r0, c0 = min(max(0, j - half), h - 2 * half), (w - 2 * half) // 2
    crop = lambda t: t[:, r0:r0 + 2 * half, c0:c0 + 2 * half]  # noqa: E731
    diff = ((tiled - whole).abs() * 8 - 1).clamp(-1, 1)
    panels = [crop(t) for t in (x, whole, tiled, diff)]
    width = panels[0].shape[-1]
    texts = [(i * width, t) for i, t in enumerate(["original", "whole", "tiled", "8x |tiled-whole|"])]
    return with_caption(torch.cat(panels, dim=-1), texts)


@torch.inference_mode()
def seams(model: torch.nn.Module, photos: list[Path], size: int, untiled_max: int) -> dict:
    """PSNR whole vs tiled and the border-step ratio over the photos at ``size`` x ``size``."""
    p = model.config.patch_size
    grid = (1, -(-size // p), -(-size // p))
    rows, cols = (window_borders(w, p) for w in model.tile_windows(grid, video=False))
    whole_psnr, tiled_psnr, ratios, whole_ratios, worst = [], [], [], [], (0.0, None)
    for path in photos:
        x = resize_center_crop(load_image(path), size)[None]
        tiled = model(x, tiled=True).recon.float().clamp(-1, 1)
        tiled_psnr.append(psnr(tiled, x).item())
        whole = model(x, tiled=False).recon.float().clamp(-1, 1) if size <= untiled_max else None
        if whole is not None:
            whole_psnr.append(psnr(whole, x).item())
            whole_ratios.append(seam_ratio(x[0] * 127.5, whole[0] * 127.5, {-2: rows, -1: cols}, {-2: p, -1: p}))
        ratio = seam_ratio(x[0] * 127.5, tiled[0] * 127.5, {-2: rows, -1: cols}, {-2: p, -1: p})
        ratios.append(ratio)
        if whole is not None and ratio > worst[0]:
            where = worst_border(x[0], tiled[0], rows, cols)
            worst = (ratio, worst_border_picture(x[0], whole[0], tiled[0], where), path.name, where)
    result = {"size": size, "photos": len(photos), "windows": [len(w) for w in model.tile_windows(grid, False)],
              "psnr_tiled": sum(tiled_psnr) / len(tiled_psnr), "border_step_ratio_mean": sum(ratios) / len(ratios),
              "border_step_ratio_max": max(ratios)}
    if whole_psnr:
        result["psnr_whole"] = sum(whole_psnr) / len(whole_psnr)
        result["psnr_gap"] = result["psnr_whole"] - result["psnr_tiled"]
        # the control: the whole image's error at the same lines (a line may be rougher by its place alone)
        result["border_step_ratio_whole_same_lines"] = sum(whole_ratios) / len(whole_ratios)
        result["worst"] = {"ratio": worst[0], "photo": worst[2], "at": list(worst[3])}
        result["_picture"] = worst[1]
    return result


@torch.inference_mode()
def chunk_seams(model: torch.nn.Module, path: Path, size: int = 128) -> dict:
    """The whole clip (centre-cropped to ``size``) chunked in time (``tiled=True``) and whole:
    PSNR of both and the frame-to-frame error jump at chunk borders over that at the other
    tubelet borders (:func:`vitok.metrics.seams.seam_ratio` along time)."""
    from vitok.io import load_video

    q = model.config.tubelet_size
    x = resize_center_crop(load_video(path), size)[None]
    grid = model.latent_grid(tuple(x.shape[2:]))
    borders = window_borders(model.tile_windows(grid, video=True)[0], q)
    chunked = model(x, tiled=True).recon.float().clamp(-1, 1)
    whole = model(x, tiled=False).recon.float().clamp(-1, 1)
    frames = x.shape[2]
    borders = {b for b in borders if b < frames}
    return {"video": path.name, "frames": frames, "chunk_borders": sorted(borders),
            "psnr_chunked": psnr(chunked, x).item(), "psnr_whole": psnr(whole, x).item(),
            "jump_ratio_chunked": seam_ratio(x[0], chunked[0], {1: borders}, {1: q}),
            "jump_ratio_whole_same_frames": seam_ratio(x[0], whole[0], {1: borders}, {1: q})}


@torch.inference_mode()
def cost(model: torch.nn.Module, shape: tuple[int, ...], tiled: bool, short: float = 20.0, runs: int = 3) -> dict:
    """Wall seconds and peak memory (MB) of encode + decode of one random (1, 3, *shape) input.
    A call shorter than ``short`` seconds is timed ``runs`` times and the median kept (one run of
    a few seconds on a shared 2-core machine varies by 10-20%); memory is the largest peak."""
    x = torch.rand(1, 3, *shape) * 2 - 1
    times, peaks = [], []
    while not times or (len(times) < runs and times[0] < short):
        with PeakMemory(torch.device("cpu")) as memory:
            start = time.perf_counter()
            model.decode(model.encode(x, tiled=tiled), tiled=tiled)
            times.append(time.perf_counter() - start)
        peaks.append(memory.peak / 2**20)
    output_mb = x.numel() * 4 / 2**20
    return {"shape": list(shape), "tiled": tiled, "seconds": sorted(times)[len(times) // 2], "runs": len(times),
            "peak_mb": max(peaks), "working_mb": max(peaks) - output_mb}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vitok-tiny")
    p.add_argument("--photos", type=Path, required=True, help="folder of photos for the seam measurement")
    p.add_argument("--max-photos", type=int, default=8)
    p.add_argument("--seam-sizes", type=int, nargs="*", default=[512, 1024])
    p.add_argument("--sizes", type=int, nargs="*", default=[512, 1024, 2048, 4096])
    p.add_argument("--untiled-max", type=int, default=1024, help="largest size also run untiled")
    p.add_argument("--frames", type=int, nargs="*", default=[100, 200, 300], help="clip lengths (none: skip)")
    p.add_argument("--video", type=Path, default=None, help="a real clip for the chunk-border measurement")
    p.add_argument("--out", type=Path, default=Path("out/bench_tiling"))
    args = p.parse_args()
    torch.manual_seed(0)
    model = load_model(args.model, "cpu").eval()
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"model": args.model, "torch": torch.__version__, "threads": torch.get_num_threads()}
    photos = sorted(f for f in args.photos.iterdir() if is_image_file(f))[:args.max_photos]
    report["seams"] = []
    for size in args.seam_sizes:
        r = seams(model, photos, size, args.untiled_max)
        picture = r.pop("_picture", None)
        if picture is not None and r["worst"]["ratio"] >= max((s.get("worst", {}).get("ratio", 0)
                                                                for s in report["seams"]), default=0):
            save_image(picture, args.out / "worst_border.png")
        report["seams"].append(r)
        print(json.dumps(r), flush=True)
    report["cost"] = []
    for size in args.sizes:
        for tiled in [True] + ([False] if size <= args.untiled_max else []):
            r = cost(model, (size, size), tiled)
            r["ms_per_megapixel"] = 1000 * r["seconds"] / (size * size / 1e6)
            report["cost"].append(r)
            print(json.dumps(r), flush=True)
    if args.video is not None:
        report["chunk_borders"] = chunk_seams(model, args.video)
        print(json.dumps(report["chunk_borders"]), flush=True)
    report["video"] = []
    for frames in args.frames:
        r = cost(model, (frames, 256, 256), None)
        r["ms_per_frame"] = 1000 * r["seconds"] / frames
        report["video"].append(r)
        print(json.dumps(r), flush=True)
    tiled = [r["ms_per_megapixel"] for r in report["cost"] if r["tiled"]]
    if tiled:
        report["tiled_ms_per_megapixel_max_over_min"] = max(tiled) / min(tiled)
        print(f"tiled time per megapixel, max / min over {args.sizes}: "
              f"{report['tiled_ms_per_megapixel_max_over_min']:.2f}")
    (args.out / "results.json").write_text(json.dumps(report, indent=1))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
