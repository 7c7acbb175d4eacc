"""Reconstruct image and video files with a tokenizer and write comparisons (``vitok reconstruct``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from vitok.models.inference import CompileStats

OVERVIEW_ITEMS = 48  # items shown in a run's overview.png

def expand_inputs(paths: Sequence[Path]) -> list[Path]:
    """Files as given; folders expanded (sorted, recursive) to their image and video files.

    Raises:
        ValueError: no paths given, or no image or video file found in them.
        FileNotFoundError: a path that does not exist.
    """
    from vitok.io import is_image_file, is_video_file

    if not paths:
        raise ValueError("no input given: name image / video files or folders")
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(f for f in path.rglob("*") if is_image_file(f) or is_video_file(f))
        elif path.is_file():
            if not (is_image_file(path) or is_video_file(path)):
                raise ValueError(f"{path} is not an image or video file (by its extension)")
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    if not found:
        raise ValueError(f"no image or video files in {', '.join(map(str, paths))}")
    unique: dict[Path, Path] = {}  # one entry per file, however it was spelt (../, a symlink)
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def output_names(paths: Sequence[Path]) -> dict[Path, str]:
    """A distinct output name (without suffix, '/' for sub-folders) per input file: the file's stem
    where that is unique; for files that share a stem (``a/x.jpg`` and ``b/x.jpg``, ``x.jpg`` and
    ``x.png``), the path below their common folder, with the extension when still needed, and a
    number when names still differ only in case (``x.jpg``, ``x.JPG``)."""
    import os

    stems = [p.stem for p in paths]
    names = {}
    clashing = [p for p in paths if stems.count(p.stem) > 1]
    root = Path(os.path.commonpath([str(p.resolve().parent) for p in clashing])) if clashing else None
    for path in paths:
        if path not in clashing:
            names[path] = path.stem
            continue
        relative = path.resolve().relative_to(root)
        names[path] = str(relative.with_suffix("")).replace(os.sep, "/")
    taken = list(names.values())
    for path in clashing:  # the same name with different extensions in one folder
        if taken.count(names[path]) > 1:
            names[path] += "-" + path.suffix.lstrip(".").lower()
    seen: dict[str, int] = {}  # still equal ignoring case (x.jpg and x.JPG): numbered, for any file system
    for path, name in names.items():
        seen[name.lower()] = seen.get(name.lower(), 0) + 1
        if seen[name.lower()] > 1:
            names[path] = f"{name}-{seen[name.lower()]}"
    return names


def item_scores(x: torch.Tensor, recon: torch.Tensor, lpips: torch.nn.Module | None = None,
                period: int | None = None) -> dict[str, float]:
    """PSNR and SSIM on uint8 values (per frame, averaged), LPIPS if given, and the patch-grid
    measure for a lattice of ``period`` pixels if given (and the image is larger than two
    periods), for one image (3, H, W) or clip (3, T, H, W) in [-1, 1]. A score whose network or
    window needs larger images (SSIM: 11 px, LPIPS: ``lpips.min_size``) is left out."""
    from vitok.io import from_uint8, to_uint8
    from vitok.metrics.psnr import psnr_uint8
    from vitok.metrics.ssim import SSIM_WINDOW, ssim_uint8
    from vitok.nn.patch import to_frames

    a, b = to_uint8(to_frames(x[None])), to_uint8(to_frames(recon[None]))  # every score sees these values
    side = min(a.shape[-2:])
    scores = {"psnr": psnr_uint8(b, a).mean().item()}
    if side >= SSIM_WINDOW:
        scores["ssim"] = ssim_uint8(b, a).mean().item()
    if lpips is not None and side >= getattr(lpips, "min_size", 1):
        device = next(lpips.parameters()).device  # the network may sit on the model's device, the pixels not
        with torch.no_grad():
            scores["lpips"] = lpips(from_uint8(b).to(device), from_uint8(a).to(device)).mean().item()
    if period is not None and side > 2 * period:
        from vitok.metrics.grid import grid_score

        scores["grid"] = grid_score(a, b, period)
    return scores


def format_scores(scores: dict[str, float]) -> str:
    """'PSNR 23.41 dB, SSIM 0.6812, ...' for one item or a mean."""
    return ", ".join(f"{k.upper()} {v:.4f}" if k != "psnr" else f"PSNR {v:.2f} dB" for k, v in scores.items())


MAX_CLIP_PIXELS = 16384 ** 2  # frames x height x width: one --size-limit image, 3 GiB of fp32 RGB


def check_clip_pixels(path: Path, frames: int, size: tuple[int, int]) -> None:
    """``ValueError`` (the file is skipped, named) when ``frames`` frames at ``size`` (H, W) exceed
    :data:`MAX_CLIP_PIXELS`: the clip, its reconstruction and their copies would not fit in memory."""
    pixels = frames * size[0] * size[1]
    if pixels > MAX_CLIP_PIXELS:
        raise ValueError(f"{frames} frames at {size[0]}x{size[1]} are {pixels / 1e6:.0f}M pixels "
                         f"({pixels * 12 / 2**30:.1f} GiB as fp32 RGB), above the limit of "
                         f"{MAX_CLIP_PIXELS / 1e6:.0f}M: give --frames N or a smaller --size")


def reconstruct_item(model: torch.nn.Module, path: Path, out: Path, size: tuple[int, int] | None = None,
                     frames: int | None = None, stride: int = 1, device: str = "cpu",
                     lpips: torch.nn.Module | None = None, name: str | None = None,
                     keep: list | None = None, compiling: CompileStats | None = None) -> dict[str, float]:
    """Reconstruct one image or video file, write ``<name>_recon`` and ``<name>_compare`` (original |
    reconstruction, captioned with the scores) into ``out`` (PNG for images; MP4 and GIF for
    videos, at the source frame rate divided by ``stride``); print and return its scores.

    ``frames``: the first N frames of a video (None = the whole video; long videos and large
    images go through the model's automatic tiling, see :meth:`ViTok.enable_tiling`). ``name``:
    the output name (default: the file's stem; see :func:`output_names`). ``keep``: a list that
    receives (name, original, reconstruction, scores text) thumbnails for :func:`vitok.viz.overview`.
    The model runs as given (see :func:`vitok.models.inference.prepare_for_inference` for bf16 and
    compiled inference); ``compiling`` records the calls that compiled, whose time is then
    printed apart from the run time.
    """
    from vitok import io

    bad_frames = frames is not None and (not isinstance(frames, int) or frames < 1)
    if not isinstance(stride, int) or stride < 1 or bad_frames:
        raise ValueError(f"stride and frames must be positive ints (frames may be None), got {stride!r}, {frames!r}")
    video = io.is_video_file(path)
    count, fps = io.video_info(path) if video else (1, None)
    if video and size:  # checked before decoding: the resized clip must fit in memory
        check_clip_pixels(path, min(frames or count, -(-count // stride)), size)
    fps = fps / stride if video else None
    x = io.load_video(path, frames, stride=stride) if video else io.load_image(path)
    if size:
        x = io.resize_center_crop(x, size)
    compiling = compiling or CompileStats()
    start, compiled_before = time.perf_counter(), compiling.seconds
    with torch.inference_mode(), compiling.track():
        recon = model(x[None].to(device)).recon[0].float().cpu().clamp(-1, 1)
    seconds = time.perf_counter() - start
    compile_seconds = compiling.seconds - compiled_before
    from vitok.metrics.grid import lattice_period
    from vitok.viz import labeled_pair, thumbnail

    scores = item_scores(x, recon, lpips, lattice_period(model))
    name = name or path.stem
    target = out / name
    target.parent.mkdir(parents=True, exist_ok=True)
    headline = f"PSNR {scores['psnr']:.2f} dB" + (f", LPIPS {scores['lpips']:.3f}" if "lpips" in scores else "")
    compare = labeled_pair(x, recon, headline)
    if video:
        io.save_video(recon, f"{target}_recon.mp4", fps=fps)
        io.save_video(compare, f"{target}_compare.mp4", fps=fps)
        io.save_video(compare, f"{target}_compare.gif", fps=fps)
    else:
        io.save_image(recon, f"{target}_recon.png")
        io.save_image(compare, f"{target}_compare.png")
    if keep is not None:
        keep.append((name, thumbnail(x, 96), thumbnail(recon, 96), headline))  # small: a run may be long
    timing = f"{seconds * 1000:.0f} ms" if not compile_seconds else f"{seconds:.1f} s, compiling"
    print(f"{path}: {tuple(x.shape[1:])} {format_scores(scores)} ({timing})")
    return scores


def reconstruct_all(model: torch.nn.Module, paths: Sequence[Path], out: Path, size: tuple[int, int] | None = None,
                    frames: int | None = None, stride: int = 1, device: str = "cpu",
                    lpips: torch.nn.Module | None = None,
                    compiling: CompileStats | None = None) -> tuple[list[dict[str, float]], dict[str, str]]:
    """:func:`reconstruct_item` for every file (outputs named by :func:`output_names`, so files
    with the same name in different folders never overwrite each other), then ``overview.png``:
    all items (at most ``OVERVIEW_ITEMS``) in one captioned grid, and ``scores.json``: every
    item's scores (``items``: file, output name and the scores of :func:`item_scores`), their
    means (``mean``, the keys all items have) and the skipped files (``skipped``); file names that
    are not UTF-8 appear there with their odd bytes as ``\\xNN`` (:func:`vitok.files.display_name`). An
    unreadable file (``ValueError`` from the decoder) is skipped with a warning naming it and the
    rest are still reconstructed. When no item was reconstructed, an ``overview.png`` left by an
    earlier run in ``out`` is removed, so that it is never taken for this run's.

    Returns (the scores of the reconstructed files, {skipped file: reason}).
    """
    import json

    from vitok import io
    from vitok.files import atomic_write, display_name
    from vitok.viz import overview

    scores: list[dict[str, float]] = []
    items: list[dict] = []
    skipped: dict[str, str] = {}
    names = output_names(list(paths))
    kept: list = []
    for path in paths:
        try:
            scores.append(reconstruct_item(model, path, out, size, frames, stride, device, lpips, names[path],
                                           kept if len(kept) < OVERVIEW_ITEMS else None, compiling))
            items.append({"file": display_name(path), "output": display_name(names[path]), **scores[-1]})
        except ValueError as err:
            print(f"warning: skipping {path}: {err}", file=sys.stderr)
            skipped[display_name(path)] = display_name(err)
    report = {"items": items, "mean": mean_scores(scores) if scores else {}, "skipped": skipped}
    if scores and partial_counts(scores):  # a mean over fewer items than were reconstructed says so
        report["mean_over"] = partial_counts(scores)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "scores.json", lambda tmp: tmp.write_text(json.dumps(report, indent=1) + "\n"), fsync=False)
    if kept:
        io.save_image(overview(kept), out / "overview.png")
    else:
        (out / "overview.png").unlink(missing_ok=True)
    return scores, skipped


def score_counts(all_scores: list[dict[str, float]]) -> dict[str, int]:
    """How many items have each score (SSIM and LPIPS are left out of items smaller than their
    windows, see :func:`item_scores`), in the order the scores first appear."""
    return {k: sum(k in s for s in all_scores) for k in dict.fromkeys(k for s in all_scores for k in s)}


def mean_scores(all_scores: list[dict[str, float]]) -> dict[str, float]:
    """Mean of every score over the items that have it, in the order the scores first appear."""
    return {k: sum(s[k] for s in all_scores if k in s) / n for k, n in score_counts(all_scores).items()}


def partial_counts(all_scores: list[dict[str, float]]) -> dict[str, int]:
    """For each score that some items lack: how many items it is the mean of."""
    return {k: n for k, n in score_counts(all_scores).items() if n < len(all_scores)}


def summarize(all_scores: list[dict[str, float]]) -> str:
    """The mean scores as one line; a score that some items lack says over how many it is the mean."""
    partial = partial_counts(all_scores)
    note = ", ".join(f"{k.upper()} over {n} of {len(all_scores)} items" for k, n in partial.items())
    return format_scores(mean_scores(all_scores)) + (f" ({note}: the others are smaller than its window)"
                                                     if partial else "")
