"""Comparison pictures: original | reconstruction with a caption bar, and an overview grid of a run.

All tensors are (3, H, W) images or (3, T, H, W) clips in [-1, 1]; captions are drawn with PIL's
built-in bitmap font on a black bar above the pictures, so they never cover the pixels compared.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from vitok.io import uint8_to_tensor

BAR = 14  # caption bar height in pixels


def caption(width: int, texts: list[tuple[int, str]]) -> Tensor:
    """A black bar (3, BAR, width) in [-1, 1] with each text drawn at its x offset (pixels)."""
    from PIL import Image, ImageDraw

    bar = Image.new("RGB", (width, BAR))
    draw = ImageDraw.Draw(bar)
    ends = [x for x, _ in texts[1:]] + [width]
    for (x, text), end in zip(texts, ends):  # each text cut to end before the next one starts
        while text and draw.textlength(text) > end - x - 5:
            text = text[:-1]
        draw.text((x + 3, 1), text, fill=(255, 255, 0))
    return uint8_to_tensor(np.array(bar))


def with_caption(pictures: Tensor, texts: list[tuple[int, str]]) -> Tensor:
    """``pictures`` (3, [T,] H, W) with a caption bar on top (on every frame of a clip)."""
    bar = caption(pictures.shape[-1], texts).to(pictures)
    if pictures.ndim == 4:
        bar = bar[:, None].expand(-1, pictures.shape[1], -1, -1)
    return torch.cat([bar, pictures], dim=-2)


def labeled_pair(x: Tensor, recon: Tensor, scores: str) -> Tensor:
    """Original | reconstruction side by side, captioned "original" and "reconstruction <scores>"."""
    return with_caption(torch.cat([x, recon], dim=-1), [(0, "original"), (x.shape[-1], f"reconstruction {scores}")])


def thumbnail(x: Tensor, height: int) -> Tensor:
    """An image (or a clip's first frame) resized to ``height`` pixels, aspect kept (bilinear, antialiased)."""
    x = x[:, 0] if x.ndim == 4 else x
    width = max(1, round(x.shape[-1] * height / x.shape[-2]))
    return F.interpolate(x[None].float(), size=(height, width), mode="bilinear", antialias=True,
                         align_corners=False)[0].clamp(-1, 1)


def overview(items: list[tuple[str, Tensor, Tensor, str]], height: int = 96, columns: int = 2) -> Tensor:
    """One picture for a whole run: a grid of captioned original | reconstruction thumbnails.

    Args:
        items: (name, original, reconstruction, scores text) per item.
        height: thumbnail height in pixels.
        columns: pairs per row.
    Returns:
        (3, rows * (BAR + height), columns * cell width) in [-1, 1]; cells are padded black to the
        widest pair.
    """
    if not items:
        raise ValueError("overview needs at least one item")
    cells = []
    for name, x, recon, scores in items:
        pair = torch.cat([thumbnail(x, height), thumbnail(recon, height)], dim=-1)
        cells.append(with_caption(pair, [(0, f"{name}  {scores}")]))
    width = max(c.shape[-1] for c in cells)
    cells = [F.pad(c, (0, width - c.shape[-1]), value=-1) for c in cells]
    cells += [torch.full_like(cells[0], -1)] * (-len(cells) % columns)
    rows = [torch.cat(cells[i:i + columns], dim=-1) for i in range(0, len(cells), columns)]
    return torch.cat(rows, dim=-2)
