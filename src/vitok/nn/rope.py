"""Axial rotary position embedding (RoPE) over (t, y, x) token coordinates.

Each attention head's ``head_dim / 2`` rotary frequency pairs are split across the three axes as
evenly as possible (the spare pairs go to y and x, since images use t = 0), so any even head_dim
works. Positions come from coordinates, not a learned table, so any grid size or aspect ratio works.
"""

from __future__ import annotations

import torch
from torch import Tensor


def axial_split(num_pairs: int, num_axes: int = 3) -> tuple[int, ...]:
    """Split ``num_pairs`` rotary pairs over ``num_axes`` axes; later axes get the remainder.

    >>> axial_split(32)
    (10, 11, 11)
    """
    base, rem = divmod(num_pairs, num_axes)
    return tuple(base + (1 if i >= num_axes - rem else 0) for i in range(num_axes))


def token_grid(t: int, h: int, w: int, device: torch.device | None = None) -> Tensor:
    """Integer coordinates of a (t, h, w) token grid in row-major order: (t*h*w, 3) float32."""
    axes = [torch.arange(n, device=device, dtype=torch.float32) for n in (t, h, w)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)


def rope_angles(coords: Tensor, head_dim: int, theta: float = 10000.0) -> Tensor:
    """Rotation angles for each token and frequency pair.

    Args:
        coords: (L, A) float token coordinates, one column per axis.
        head_dim: even attention head size.
        theta: base of the geometric frequency ladder.
    Returns:
        (L, head_dim // 2) float32 angles; pairs of axis a use only ``coords[:, a]``.
    """
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head_dim, got {head_dim}")
    parts = []
    for axis, n in enumerate(axial_split(head_dim // 2, coords.shape[-1])):
        if n == 0:
            continue
        freqs = theta ** (-torch.arange(n, device=coords.device, dtype=torch.float32) / n)
        parts.append(coords[:, axis, None].float() * freqs)  # (L, n)
    return torch.cat(parts, dim=-1)


def rope_cos_sin(coords: Tensor, head_dim: int, theta: float = 10000.0) -> tuple[Tensor, Tensor]:
    """(cos, sin), each (L, head_dim // 2) float32, ready for :func:`apply_rope`."""
    angles = rope_angles(coords, head_dim, theta)
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs ``(x[..., i], x[..., i + D/2])`` of x: (..., L, D) by the given angles (L, D/2).

    Each half is one multiply and one fused multiply-add (``addcmul``). RoPE is ~3% of an fp32
    forward (``benchmarks/profile_inference.py``), so there is one form for training, inference
    and ``torch.compile``.
    """
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((torch.addcmul(x1 * cos, x2, sin, value=-1), torch.addcmul(x1 * sin, x2, cos)), dim=-1)
