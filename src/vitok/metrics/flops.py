"""Multiply-accumulate (MAC) counts of the autoencoder, as the paper reports them ("GFLOPs").

Two counters that must agree (a test checks it):

- :func:`count_macs` is analytic: every linear layer plus the two attention matmuls
  (``Q K^T`` and ``A V``); norms, RoPE, softmax and activations are not counted (the paper's
  convention, like fvcore's).
- :func:`measure_macs` runs the model under ``torch.utils.flop_counter.FlopCounterMode`` on the
  meta device with the math SDPA backend (the fused CPU kernel reports no FLOPs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vitok.checks import check_shape, describe
from vitok.model_config import TowerConfig, ViTokConfig
from vitok.nn.pixel_head import conv_tail_macs


@dataclass(frozen=True)
class MacCount:
    """MACs of one forward pass for one input (batch size 1)."""

    encoder: int
    decoder: int

    @property
    def total(self) -> int:
        return self.encoder + self.decoder

    @property
    def gmacs(self) -> float:
        return self.total / 1e9


def _checked(config: object, shape: object) -> tuple[int, int, int]:
    """The (T, H, W) to count for (``shape`` or the config's default input); ``TypeError`` /
    ``ValueError`` naming the argument for a config that is not a :class:`ViTokConfig` or a shape
    that is not three ints >= 1."""
    if not isinstance(config, ViTokConfig):
        raise TypeError(f"config must be a ViTokConfig (e.g. vitok.get_config('S-B/16')), got {describe(config)}")
    if shape is None:
        return config.default_input_shape
    return check_shape("shape", shape, 3, what="(T, H, W) of ints (T = 1 for an image)")


def tower_macs(tower: TowerConfig, tokens: int, mlp_ratio: float) -> int:
    """MACs of ``tower.depth`` transformer blocks over ``tokens`` tokens."""
    w, n = tower.width, tokens
    hidden = round(mlp_ratio * w)
    linear = n * (3 * w * w + w * w + w * 2 * hidden + hidden * w)  # qkv, proj, w12, w3
    attention = 2 * n * n * w  # Q K^T and A V over all heads
    return tower.depth * (linear + attention)


def token_count(config: ViTokConfig, shape: tuple[int, int, int]) -> int:
    """Tokens L for an input of (T, H, W) pixels (padded up to whole tubelets)."""
    t, h, w = shape
    q, p = config.tubelet_size, config.patch_size
    return math.ceil(t / q) * math.ceil(h / p) * math.ceil(w / p)


def count_macs(config: ViTokConfig, shape: tuple[int, int, int] | None = None) -> MacCount:
    """Analytic MACs of encoder and decoder for one (T, H, W) input (default: the preset's);
    ``TypeError`` / ``ValueError`` naming the argument for another config or shape."""
    shape = _checked(config, shape)
    n = token_count(config, shape)
    q, p, c = config.tubelet_size, config.patch_size, config.latent_channels
    token_dim = q * p * p * config.in_channels
    enc_w, dec_w = config.encoder.width, config.decoder.width
    bottleneck = n * enc_w * (2 * c if config.bottleneck == "kl" else c)
    encoder = n * token_dim * enc_w + tower_macs(config.encoder, n, config.mlp_ratio) + bottleneck
    decoder = n * c * dec_w + tower_macs(config.decoder, n, config.mlp_ratio) + n * dec_w * token_dim
    if config.decoder_fine_depth:  # split to 4n narrower tokens, fine blocks, head at p/2 (same pixels)
        fine = config.fine_tower
        decoder += n * dec_w * 4 * fine.width + tower_macs(fine, 4 * n, config.mlp_ratio)
        decoder += n * (fine.width - dec_w) * token_dim  # the head reads fine.width instead of dec_w
    if config.head == "conv":
        decoder += head_macs(config, shape)
    return MacCount(encoder=encoder, decoder=decoder)


def head_macs(config: ViTokConfig, shape: tuple[int, int, int]) -> int:
    """MACs of the conv tail's feature projection and convs (``head="conv"``) for one (T, H, W)
    input; T = 1 is an image (one frame), a video runs the tail on every (padded) frame."""
    t, h, w = shape
    q, p, ch = config.tubelet_size, config.patch_size, config.head_channels
    n = token_count(config, shape)
    frames = 1 if t == 1 else math.ceil(t / q) * q  # an image uses only frame 0's features
    pixels = frames * math.ceil(h / p) * p * math.ceil(w / p) * p
    width = config.fine_tower.width if config.decoder_fine_depth else config.decoder.width
    features = n * width * (1 if t == 1 else q) * p * p * ch  # p*p pixels per coarse token either way
    return features + conv_tail_macs(ch, config.head_blocks, pixels)


def measure_macs(config: ViTokConfig, shape: tuple[int, int, int] | None = None) -> MacCount:
    """MACs counted by torch's FlopCounterMode on a meta-device model (no memory, no compute),
    through the untiled path as :func:`count_macs` counts it (a large input would otherwise be
    tiled automatically, see ``ViTok.enable_tiling``); arguments checked like :func:`count_macs`."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from vitok.models.vitok import ViTok

    shape = _checked(config, shape)
    with torch.device("meta"):
        model = ViTok(config)
        t, h, w = shape  # T = 1 is an image (B, 3, H, W), as count_macs treats it
        x = torch.zeros(1, config.in_channels, h, w) if t == 1 else torch.zeros(1, config.in_channels, *shape)
    counts = []
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            z = model.encode(x, tiled=False)
        counts.append(counter.get_total_flops())
        with FlopCounterMode(display=False) as counter:
            model.decode(z, tiled=False)
        counts.append(counter.get_total_flops())
    return MacCount(encoder=counts[0] // 2, decoder=counts[1] // 2)


def compression_ratio(config: ViTokConfig, shape: tuple[int, int, int] | None = None) -> float:
    """Input floats (3 x T x H x W) divided by latent floats E = L x c (arguments checked like
    :func:`count_macs`)."""
    shape = _checked(config, shape)
    t, h, w = shape
    return config.in_channels * t * h * w / latent_size(config, shape)


def latent_size(config: ViTokConfig, shape: tuple[int, int, int] | None = None) -> int:
    """E = L x c, the number of floats in the bottleneck for one (T, H, W) input (arguments checked
    like :func:`count_macs`)."""
    return token_count(config, _checked(config, shape)) * config.latent_channels
