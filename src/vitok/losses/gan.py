"""StyleGAN-style discriminator and the hinge GAN losses (ViTok, arXiv 2501.09755: the stage-2 recipe).

The discriminator: a 1x1 "from RGB" conv, residual blocks that halve the resolution with a
[1, 3, 3, 1] blur before the strided conv (the skip path blurs and downsamples too, and the sum
is scaled by 1/sqrt(2)), LeakyReLU(0.2), then a conv, a 4x4 adaptive pool and a two-layer head
giving one logit per image. Any input size works.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Blur(nn.Module):
    """Depthwise [1, 3, 3, 1] x [1, 3, 3, 1] / 64 low-pass filter, then stride-2 subsampling."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        kernel = (taps[:, None] * taps[None, :]) / 64
        self.register_buffer("kernel", kernel.expand(channels, 1, 4, 4).clone(), persistent=False)
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(x, self.kernel.to(x.dtype), stride=2, groups=self.channels)


class ResBlock(nn.Module):
    """conv3x3 -> lrelu -> blur-downsample conv -> lrelu, plus a blurred 1x1 skip; halves H, W."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_in, 3, padding=1)
        self.down = Blur(c_in)
        self.conv2 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.conv2(self.down(h)), 0.2)
        return (h + self.skip(self.down(x))) / math.sqrt(2)


class Discriminator(nn.Module):
    """Images (B, 3, H, W) in [-1, 1] -> logits (B,).

    Args:
        image_size: training resolution; sets the number of blocks (down to about 8x8).
        channels: width of the first block; doubles per block up to ``max_channels``.
    """

    def __init__(self, image_size: int = 256, channels: int = 64, max_channels: int = 512) -> None:
        super().__init__()
        n_blocks = max(1, int(math.log2(max(image_size, 16) // 8)))
        widths = [min(channels * 2**i, max_channels) for i in range(n_blocks + 1)]
        self.from_rgb = nn.Conv2d(3, widths[0], 1)
        self.blocks = nn.ModuleList(ResBlock(widths[i], widths[i + 1]) for i in range(n_blocks))
        self.conv = nn.Conv2d(widths[-1], widths[-1], 3, padding=1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * 16, widths[-1]), nn.LeakyReLU(0.2),
                                  nn.Linear(widths[-1], 1))

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.from_rgb(x), 0.2)
        for block in self.blocks:
            h = block(h)
        h = F.leaky_relu(self.conv(h), 0.2)
        return self.head(F.adaptive_avg_pool2d(h, 4)).squeeze(1)


def d_hinge_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator hinge loss: E[relu(1 - D(x))] + E[relu(1 + D(x_hat))]."""
    return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()


def g_loss(fake_logits: Tensor) -> Tensor:
    """Generator (decoder) adversarial loss: -E[D(x_hat)]."""
    return -fake_logits.float().mean()


def ramp(step: int, start: int, length: int) -> float:
    """0 before ``start``, rising linearly to 1 over ``length`` steps after it."""
    if step < start:
        return 0.0
    return 1.0 if length <= 0 else min(1.0, (step - start + 1) / length)
