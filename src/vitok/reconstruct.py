"""Reconstruct image and video files with a tokenizer and write comparisons (``vitok reconstruct``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch


def expand_inputs(paths: Sequence[Path]) -> list[Path]:
    """Files as given; folders expanded (sorted, recursive) to their image and video files."""
    from vitok.io import is_image_file, is_video_file

    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(f for f in path.rglob("*") if is_image_file(f) or is_video_file(f))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return found


def item_scores(x: torch.Tensor, recon: torch.Tensor, lpips: torch.nn.Module | None = None,
                period: int | None = None) -> dict[str, float]:
    """PSNR and SSIM on uint8 values (per frame, averaged), LPIPS if given, and the patch-grid
    measure for a lattice of ``period`` pixels if given (and the image is larger than two
    periods), for one image (3, H, W) or clip (3, T, H, W) in [-1, 1]. A score whose network or
    window needs larger images (SSIM: 11 px, LPIPS: ``lpips.min_size``) is left out."""
    from vitok.metrics.psnr import to_uint8
    from vitok.metrics.streaming import SSIM_WINDOW, frames, psnr_uint8, ssim_uint8

    a, b = frames(x[None]), frames(recon[None])
    side = min(a.shape[-2:])
    scores = {"psnr": psnr_uint8(to_uint8(b), to_uint8(a)).mean().item()}
    if side >= SSIM_WINDOW:
        scores["ssim"] = ssim_uint8(to_uint8(b), to_uint8(a)).mean().item()
    if lpips is not None and side >= getattr(lpips, "min_size", 1):
        with torch.no_grad():
            scores["lpips"] = lpips(to_uint8(b) / 127.5 - 1, to_uint8(a) / 127.5 - 1).mean().item()
    if period is not None and min(a.shape[-2:]) > 2 * period:
        from vitok.metrics.grid import grid_score

        scores["grid"] = grid_score(to_uint8(a), to_uint8(b), period)
    return scores


def reconstruct_item(model: torch.nn.Module, path: Path, out: Path, size: tuple[int, int] | None = None,
                     frames: int | None = None, stride: int = 1, device: str = "cpu", bf16: bool = False,
                     lpips: torch.nn.Module | None = None) -> dict[str, float]:
    """Reconstruct one image or video file, write ``<stem>_recon`` and ``<stem>_compare`` (original |
    reconstruction) into ``out`` (PNG for images; MP4 and GIF for videos, at the source frame rate
    divided by ``stride``); print and return its scores.

    ``frames``: the first N frames of a video (None = the whole video; long videos and large
    images go through the model's automatic tiling, see :meth:`ViTok.enable_tiling`).
    """
    from vitok import io

    bad_frames = frames is not None and (not isinstance(frames, int) or frames < 1)
    if not isinstance(stride, int) or stride < 1 or bad_frames:
        raise ValueError(f"stride and frames must be positive ints (frames may be None), got {stride!r}, {frames!r}")
    video = io.is_video_file(path)
    fps = io.video_info(path)[1] / stride if video else None
    x = io.load_video(path, frames, stride=stride) if video else io.load_image(path)
    if size:
        x = io.resize_center_crop(x, size)
    start = time.perf_counter()
    with torch.inference_mode(), torch.autocast(torch.device(device).type, torch.bfloat16, enabled=bf16):
        recon = model(x[None].to(device)).recon[0].float().cpu().clamp(-1, 1)
    seconds = time.perf_counter() - start
    from vitok.evaluate import lattice_period

    scores = item_scores(x, recon, lpips, lattice_period(model))
    out.mkdir(parents=True, exist_ok=True)
    if video:
        io.save_video(recon, out / f"{path.stem}_recon.mp4", fps=fps)
        io.save_video(torch.cat([x, recon], dim=-1), out / f"{path.stem}_compare.mp4", fps=fps)
        io.save_video(torch.cat([x, recon], dim=-1), out / f"{path.stem}_compare.gif", fps=fps)
    else:
        io.save_image(recon, out / f"{path.stem}_recon.png")
        io.save_image(torch.cat([x, recon], dim=-1), out / f"{path.stem}_compare.png")
    shown = ", ".join(f"{k.upper()} {v:.4f}" if k != "psnr" else f"PSNR {v:.2f} dB" for k, v in scores.items())
    print(f"{path.name}: {tuple(x.shape[1:])} {shown} ({seconds * 1000:.0f} ms)")
    return scores


def reconstruct_all(model: torch.nn.Module, paths: Sequence[Path], out: Path, size: tuple[int, int] | None = None,
                    frames: int | None = None, stride: int = 1, device: str = "cpu", bf16: bool = False,
                    lpips: torch.nn.Module | None = None) -> tuple[list[dict[str, float]], dict[str, str]]:
    """:func:`reconstruct_item` for every file; an unreadable file (``ValueError`` from the
    decoder) is skipped with a warning naming it and the rest are still reconstructed.

    Returns (the scores of the reconstructed files, {skipped file: reason}).
    """
    scores: list[dict[str, float]] = []
    skipped: dict[str, str] = {}
    for path in paths:
        try:
            scores.append(reconstruct_item(model, path, out, size, frames, stride, device, bf16, lpips))
        except ValueError as err:
            print(f"warning: skipping {path}: {err}", file=sys.stderr)
            skipped[str(path)] = str(err)
    return scores, skipped


def summarize(all_scores: list[dict[str, float]]) -> str:
    """Mean of every score present for all items, as one line."""
    keys = [k for k in all_scores[0] if all(k in s for s in all_scores)]
    means = {k: sum(s[k] for s in all_scores) / len(all_scores) for k in keys}
    return ", ".join(f"{k.upper()} {v:.4f}" if k != "psnr" else f"PSNR {v:.2f} dB" for k, v in means.items())
