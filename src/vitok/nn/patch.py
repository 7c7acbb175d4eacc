"""Tubelet patchify / unpatchify and padding to whole tubelets (pure functions)."""

from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor


def pad_to_multiple(x: Tensor, q: int, p: int) -> Tensor:
    """Pad a video (B, C, T, H, W) at the end of T, H and W (edge-replicate) to multiples of q, p, p."""
    t, h, w = x.shape[-3:]
    # padded sizes are ((n + k - 1) // k) * k, so symbolic shapes (torch.export, compile with dynamic
    # sizes) see exact multiples; all-positive because ONNX's integer division truncates. No early
    # return for "already a multiple": it would specialise a traced graph on the size.
    pt, ph, pw = (t + q - 1) // q * q - t, (h + p - 1) // p * p - h, (w + p - 1) // p * p - w
    return F.pad(x, (0, pw, 0, ph, 0, pt), mode="replicate")


def patchify(x: Tensor, q: int, p: int) -> Tensor:
    """(B, C, T, H, W) with T % q == H % p == W % p == 0 -> tokens (B, L, q*p*p*C), L in (t, y, x) order."""
    return rearrange(x, "b c (t q) (h p1) (w p2) -> b (t h w) (q p1 p2 c)", q=q, p1=p, p2=p)


def unpatchify(tokens: Tensor, grid: tuple[int, int, int], q: int, p: int, channels: int) -> Tensor:
    """Inverse of :func:`patchify`: (B, L, q*p*p*C) on a (t, h, w) grid -> (B, C, t*q, h*p, w*p)."""
    t, h, w = grid
    return rearrange(
        tokens, "b (t h w) (q p1 p2 c) -> b c (t q) (h p1) (w p2)",
        t=t, h=h, w=w, q=q, p1=p, p2=p, c=channels,
    )


def to_frames(x: Tensor) -> Tensor:
    """Videos (B, C, T, H, W) -> frames (B*T, C, H, W), frame index fastest; images (B, C, H, W)
    pass through. The inverse is :func:`from_frames`."""
    return x.transpose(1, 2).flatten(0, 1) if x.ndim == 5 else x


def from_frames(x: Tensor, batch: int) -> Tensor:
    """Frames (B*T, C, H, W) -> videos (B, C, T, H, W): the inverse of :func:`to_frames`."""
    return x.unflatten(0, (batch, x.shape[0] // batch)).transpose(1, 2)
