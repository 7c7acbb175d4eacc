"""Reconstruct image and video files with a tokenizer and write comparisons (``vitok reconstruct``)."""

from __future__ import annotations

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


def reconstruct_item(model: torch.nn.Module, path: Path, out: Path, size: tuple[int, int] | None = None,
                     frames: int = 16, stride: int = 1, device: str = "cpu", bf16: bool = False) -> float:
    """Reconstruct one image or video file, write ``<stem>_recon`` and ``<stem>_compare`` (original |
    reconstruction) into ``out`` (PNG for images; MP4 and GIF for videos); print and return PSNR."""
    from vitok import io
    from vitok.metrics.psnr import psnr

    video = io.is_video_file(path)
    x = io.load_video(path, frames, stride=stride) if video else io.load_image(path)
    if size:
        x = io.resize_center_crop(x, size)
    start = time.perf_counter()
    with torch.inference_mode(), torch.autocast(torch.device(device).type, torch.bfloat16, enabled=bf16):
        recon = model(x[None].to(device)).recon[0].float().cpu()
    seconds = time.perf_counter() - start
    score = psnr(recon[None], x[None]).item()
    out.mkdir(parents=True, exist_ok=True)
    if video:
        io.save_video(recon, out / f"{path.stem}_recon.mp4")
        io.save_video(torch.cat([x, recon], dim=-1), out / f"{path.stem}_compare.mp4")
        io.save_video(torch.cat([x, recon], dim=-1), out / f"{path.stem}_compare.gif")
    else:
        io.save_image(recon, out / f"{path.stem}_recon.png")
        io.save_image(torch.cat([x, recon], dim=-1), out / f"{path.stem}_compare.png")
    print(f"{path.name}: {tuple(x.shape[1:])} PSNR {score:.2f} dB ({seconds * 1000:.0f} ms)")
    return score
