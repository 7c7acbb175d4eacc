"""LPIPS (Zhang et al. 2018, v0.1): learned perceptual distance on VGG16 or AlexNet features.

Our own torch modules; the ImageNet backbone weights and the v0.1 linear heads come from the
local cache (``vitok weights fetch``), never from the network at run time.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitok.weights import load_weights

# (out_channels, kernel, stride, padding) per conv; "M" = max-pool; * marks an LPIPS tap (after ReLU)
VGG16_LAYERS = [64, "64*", "M", 128, "128*", "M", 256, 256, "256*", "M", 512, 512, "512*", "M", 512, 512, "512*"]
ALEXNET_LAYERS = [(64, 11, 4, 2), "*", "M", (192, 5, 1, 2), "*", "M", (384, 3, 1, 1), "*",
                  (256, 3, 1, 1), "*", (256, 3, 1, 1), "*"]
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class VGG16Features(nn.Module):
    """torchvision's VGG16 conv stack up to relu5_3; returns the 5 LPIPS taps."""

    channels = (64, 128, 256, 512, 512)
    min_size = 16  # four 2x2 max-pools: the smallest H, W with a non-empty last tap

    def __init__(self) -> None:
        super().__init__()
        self.plan: list[str] = []  # "conv", "tap" or "pool" per step
        convs, c_in = [], 3
        for item in VGG16_LAYERS:
            if item == "M":
                self.plan.append("pool")
                continue
            c_out = int(str(item).rstrip("*"))
            convs.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            self.plan.append("conv_tap" if str(item).endswith("*") else "conv")
            c_in = c_out
        self.convs = nn.ModuleList(convs)

    def forward(self, x: Tensor) -> list[Tensor]:
        taps, i = [], 0
        for step in self.plan:
            if step == "pool":
                x = F.max_pool2d(x, 2, 2)
                continue
            x = F.relu(self.convs[i](x))
            i += 1
            if step == "conv_tap":
                taps.append(x)
        return taps


class AlexNetFeatures(nn.Module):
    """torchvision's AlexNet conv stack; returns the 5 ReLU outputs LPIPS uses."""

    channels = (64, 192, 384, 256, 256)
    min_size = 31  # 11x11 stride-4 conv then two 3x3 stride-2 max-pools: the smallest valid H, W

    def __init__(self) -> None:
        super().__init__()
        specs = [item for item in ALEXNET_LAYERS if isinstance(item, tuple)]
        c_ins = [3] + [s[0] for s in specs[:-1]]
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c, k, s, p) for c_in, (c, k, s, p) in zip(c_ins, specs))

    def forward(self, x: Tensor) -> list[Tensor]:
        taps = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            taps.append(x)
        return taps


def normalize_channels(x: Tensor, eps: float = 1e-10) -> Tensor:
    """Unit-normalise each spatial feature vector over channels: (B, C, H, W)."""
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """Perceptual distance between two batches (B, 3, H, W) in [-1, 1]; returns (B,) float32.

    ``net`` is "vgg" (the training loss of the paper) or "alex" (the common evaluation metric).
    The network is frozen (no parameter requires grad) but gradients flow to the inputs. H and W
    must be at least :attr:`min_size` (16 for VGG, 31 for AlexNet), else ``ValueError``.
    """

    def __init__(self, net: Literal["vgg", "alex"] = "vgg", pretrained: bool = True,
                 cache: str | None = None) -> None:
        super().__init__()
        if net not in ("vgg", "alex"):
            raise ValueError(f"LPIPS net must be 'vgg' or 'alex', got {net!r}")
        self.net = VGG16Features() if net == "vgg" else AlexNetFeatures()
        self.lins = nn.ParameterList(nn.Parameter(torch.zeros(1, c, 1, 1)) for c in self.net.channels)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        if pretrained:
            self.load_state_dict(load_weights(f"lpips-{net}", cache))
        self.requires_grad_(False)
        self.eval()

    @property
    def min_size(self) -> int:
        """The smallest height and width the backbone accepts."""
        return self.net.min_size

    def train(self, mode: bool = True) -> LPIPS:  # always eval: the network is a fixed metric
        return super().train(False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS expects two (B, 3, H, W) batches, got {tuple(x.shape)} and {tuple(y.shape)}")
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(f"LPIPS ({type(self.net).__name__}) needs images of at least "
                             f"{self.min_size}x{self.min_size}, got {tuple(x.shape[-2:])}")
        feats_x = self.net((x - self.shift) / self.scale)
        feats_y = self.net((y - self.shift) / self.scale)
        total = x.new_zeros(x.shape[0], dtype=torch.float32)
        for fx, fy, w in zip(feats_x, feats_y, self.lins):
            d = (normalize_channels(fx.float()) - normalize_channels(fy.float())).pow(2)
            total = total + (d * w.float()).sum(dim=1).mean(dim=(1, 2))
        return total
