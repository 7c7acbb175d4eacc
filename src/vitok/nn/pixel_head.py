"""Convolutional pixel tail of the decoder: smooths what a per-token linear head cannot.

The paper's decoder (arXiv 2501.09755, Sec. 3.1) ends in one linear layer that turns each token
into its own ``q x p x p x 3`` pixels, so neighbouring patches never see each other's pixels and
their errors jump at every patch border (a visible patch grid). The tail adds a full-resolution
residual branch after unpatchify: a second linear layer emits ``C`` feature channels per pixel,
a 3x3 conv reads them together with the linear head's RGB, ``blocks`` residual 3x3 conv blocks
mix across patch borders, and a zero-initialised 3x3 conv adds an RGB correction::

    rgb  = unpatchify(linear_rgb(tokens))                     # the paper's head, unchanged
    feat = unpatchify(linear_feat(tokens))                    # C channels per pixel
    out  = rgb + conv_out(silu(blocks(conv_in([rgb, feat]))))  # conv_out starts at zero

A fresh tail therefore returns exactly the linear head's output, so it can only help, and a
trained linear-head model can be fine-tuned into a tail model. Videos run through it frame by
frame (2D convs): the tubelet head already models time inside each tubelet, a 2D tail keeps the
cost linear in the number of frames, and image and video share its weights. Normalisation is a
per-pixel LayerNorm over channels (no statistics across the image), so tiled decoding sees the
same function as untiled decoding. Published ViT tokenizers end their decoders similarly
(TA-TiTok and l-DeTok with one conv, GigaTok with a conv upsampler, DC-AE with high-resolution
residual conv blocks).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis of (N, C, H, W), independently at every pixel."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    """x + conv(silu(norm(conv(silu(norm(x)))))), 3x3 convs with ``channels`` channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = ChannelNorm(channels), ChannelNorm(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class ConvTail(nn.Module):
    """The residual conv branch on (N, 3 + C, H, W) = [rgb, features] -> (N, 3, H, W) correction.

    ``blocks = 0`` is the minimal variant: one zero-initialised 3x3 conv from [rgb, features]
    straight to the RGB correction.
    """

    def __init__(self, channels: int, blocks: int, out_channels: int = 3) -> None:
        super().__init__()
        inputs = out_channels + channels
        self.blocks = nn.ModuleList(ResBlock(channels) for _ in range(blocks))
        self.conv_in = nn.Conv2d(inputs, channels, 3, padding=1) if blocks else None
        self.conv_out = nn.Conv2d(channels if blocks else inputs, out_channels, 3, padding=1)

    def initialize_weights(self) -> None:
        """Default conv init everywhere, then zero the last conv (a fresh tail adds nothing)."""
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, rgb: Tensor, features: Tensor) -> Tensor:
        """rgb (N, 3, H, W) and features (N, C, H, W) -> rgb + correction, (N, 3, H, W).

        Runs in the tail's own dtype with autocast off: on CPU, bf16 3x3 convs with few channels
        are about 8x slower than fp32 (measured here), and the tail is a small share of the MACs.
        """
        dtype = self.conv_out.weight.dtype
        device = rgb.device.type
        no_autocast = torch.autocast(device, enabled=False) if torch.amp.is_autocast_available(device) \
            else contextlib.nullcontext()
        with no_autocast:
            h = torch.cat([rgb, features], dim=1).to(dtype)
            if self.conv_in is not None:
                h = self.conv_in(h)
                for block in self.blocks:
                    h = block(h)
                h = F.silu(h)
            return (rgb.to(dtype) + self.conv_out(h)).to(rgb.dtype)


def conv_tail_macs(channels: int, blocks: int, pixels: int, out_channels: int = 3) -> int:
    """MACs of :class:`ConvTail` over ``pixels`` output pixels (all frames): 9 per weight per pixel."""
    inputs = out_channels + channels
    if blocks == 0:
        return 9 * pixels * inputs * out_channels
    return 9 * pixels * (inputs * channels + 2 * blocks * channels * channels + channels * out_channels)
