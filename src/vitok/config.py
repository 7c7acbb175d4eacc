"""Typed configuration for the ViTok autoencoder.

Every option has the paper's value as its default (SPEC section 1). Configs round-trip through
plain dicts (``to_dict`` / ``from_dict``) so they can be written as ``config.json`` beside the
weights, and unknown keys are rejected instead of silently ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

NormType = Literal["layernorm", "rmsnorm"]
BottleneckType = Literal["kl", "deterministic"]
HeadType = Literal["linear", "conv"]


@dataclass(frozen=True)
class TowerConfig:
    """One transformer stack (encoder or decoder): width, depth and number of heads."""

    width: int
    depth: int
    heads: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.depth <= 0 or self.heads <= 0:
            raise ValueError(f"tower sizes must be positive, got {self}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        if (self.width // self.heads) % 2:
            raise ValueError(f"head_dim {self.width // self.heads} must be even for RoPE")

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


@dataclass(frozen=True)
class ViTokConfig:
    """The whole autoencoder.

    Attributes:
        encoder, decoder: sizes of the two towers (independent).
        patch_size: spatial patch p (tokens cover p x p pixels).
        tubelet_size: temporal patch q (1 for image models).
        latent_channels: c, floats per latent token. E = L * c.
        in_channels: image channels (3 = RGB).
        mlp_ratio: SwiGLU hidden size / width (8/3 gives 2048 for width 768).
        norm: normalisation layer in every block.
        qk_norm: RMS-normalise queries and keys per head before RoPE (ViTok-v2 option).
        bottleneck: "kl" (diagonal Gaussian + KL) or "deterministic" (LayerNorm-normalised latent).
        logvar_min, logvar_max: clamp of the posterior log-variance.
        rope_theta: RoPE base frequency.
        image_size: default (H, W) for FLOPs tables and training crops.
        num_frames: default clip length T (1 for image models).
        latent_mean, latent_std: optional per-channel latent statistics used to normalise
            latents for generative models (filled in after training).
        head: the decoder's pixel head: "linear" (the paper's: one linear layer per token to its
            q*p*p*3 pixels) or "conv" (that linear head plus a full-resolution residual conv tail,
            see :mod:`vitok.nn.pixel_head`); the paper's presets use "linear".
        head_channels: C, feature channels per pixel of the conv tail.
        head_blocks: residual 3x3 conv blocks of the tail (0 = one 3x3 conv).
        name: the preset name this config came from, for display.
    """

    encoder: TowerConfig
    decoder: TowerConfig
    patch_size: int = 16
    tubelet_size: int = 1
    latent_channels: int = 16
    in_channels: int = 3
    mlp_ratio: float = 8 / 3
    norm: NormType = "layernorm"
    qk_norm: bool = False
    bottleneck: BottleneckType = "kl"
    logvar_min: float = -30.0
    logvar_max: float = 20.0
    rope_theta: float = 10000.0
    image_size: tuple[int, int] = (256, 256)
    num_frames: int = 1
    latent_mean: tuple[float, ...] | None = None
    latent_std: tuple[float, ...] | None = None
    head: HeadType = "linear"
    head_channels: int = 32
    head_blocks: int = 2
    name: str = "custom"

    def __post_init__(self) -> None:
        for tower in ("encoder", "decoder"):  # a dict (from YAML or JSON) becomes a TowerConfig
            object.__setattr__(self, tower, _tower(getattr(self, tower)))
        if self.head not in ("linear", "conv"):
            raise ValueError(f"head must be 'linear' or 'conv', got {self.head!r}")
        if self.head_channels <= 0 or self.head_blocks < 0:
            raise ValueError(f"head_channels must be positive and head_blocks >= 0, got "
                             f"{self.head_channels} and {self.head_blocks}")
        if self.patch_size <= 0 or self.tubelet_size <= 0 or self.latent_channels <= 0:
            raise ValueError("patch_size, tubelet_size and latent_channels must be positive")
        if self.norm not in ("layernorm", "rmsnorm"):
            raise ValueError(f"norm must be 'layernorm' or 'rmsnorm', got {self.norm!r}")
        if self.bottleneck not in ("kl", "deterministic"):
            raise ValueError(f"bottleneck must be 'kl' or 'deterministic', got {self.bottleneck!r}")
        for stats in (self.latent_mean, self.latent_std):
            if stats is not None and len(stats) != self.latent_channels:
                raise ValueError(
                    f"latent statistics need {self.latent_channels} values, got {len(stats)}"
                )

    @property
    def is_video(self) -> bool:
        return self.tubelet_size > 1 or self.num_frames > 1

    @property
    def default_input_shape(self) -> tuple[int, int, int]:
        """(T, H, W) of the preset's default input."""
        return (self.num_frames, *self.image_size)

    def replace(self, **changes: Any) -> ViTokConfig:
        """A copy with some fields changed (unknown names raise ``TypeError``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ViTokConfig:
        """Inverse of ``to_dict``; raises ``ValueError`` on unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ViTokConfig keys: {sorted(unknown)}")
        data = dict(data)
        data["encoder"] = _tower(data["encoder"])
        data["decoder"] = _tower(data["decoder"])
        if "image_size" in data:
            data["image_size"] = tuple(data["image_size"])
        for key in ("latent_mean", "latent_std"):
            if data.get(key) is not None:
                data[key] = tuple(float(v) for v in data[key])
        return cls(**data)


def _tower(value: TowerConfig | dict[str, Any]) -> TowerConfig:
    return value if isinstance(value, TowerConfig) else TowerConfig(**value)
