"""Typed configuration of the models: the ViTok autoencoder (TowerConfig, ViTokConfig) and the DiT
(DiTConfig). They sit at the bottom layer because the one preset registry (vitok.presets) builds
them.

Every option has the paper's value as its default (arXiv 2501.09755, section 3). Configs round-trip
through plain dicts (``to_dict`` / ``from_dict``) so they can be written as ``config.json`` beside
the weights. Every field is checked on construction against its type and the range its class
declares (``ranges``; :func:`vitok.checks.check_fields`): a wrong value raises ``ValueError``
naming the key, what is allowed and the value, and unknown or missing keys are rejected instead of
silently ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from vitok.checks import Rule, check_fields, known_keys

NormType = Literal["layernorm", "rmsnorm"]
BottleneckType = Literal["kl", "deterministic"]
HeadType = Literal["linear", "conv"]


@dataclass(frozen=True)
class TowerConfig:
    """One transformer stack (encoder or decoder): width, depth and number of heads."""

    width: int
    depth: int
    heads: int

    # upper bounds far above any real model, so that a corrupt config.json (depth 10^9) is an error
    # naming the key instead of an overflow while the model is laid out
    ranges: ClassVar[dict[str, Rule]] = {
        "width": (lambda v: 1 <= v <= 2**16, "in [1, 65536]"),
        "depth": (lambda v: 1 <= v <= 1024, "in [1, 1024]"),
        "heads": (lambda v: 1 <= v <= 1024, "in [1, 1024]"),
    }

    def __post_init__(self) -> None:
        check_fields(self)
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
        decoder_fine_depth: an "hourglass" decoder end: after the decoder's blocks, each token is
            split into 2x2 narrower tokens (a linear layer) and this many more blocks run on the
            finer grid before a pixel head with patch p/2 (0 = off, the paper's decoder).
        decoder_fine_width: width of the fine blocks (default: decoder width / 2; a multiple of the
            decoder's head size, which the fine blocks keep).
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
    decoder_fine_depth: int = 0
    decoder_fine_width: int | None = None
    name: str = "custom"

    ranges: ClassVar[dict[str, Rule]] = {
        "patch_size": (lambda v: 1 <= v <= 1024, "in [1, 1024]"),
        "tubelet_size": (lambda v: 1 <= v <= 256, "in [1, 256]"),
        "latent_channels": (lambda v: 1 <= v <= 2**16, "in [1, 65536]"),
        "in_channels": (lambda v: 1 <= v <= 1024, "in [1, 1024]"),
        "mlp_ratio": (lambda v: 0 < v <= 64, "in (0, 64]"),
        "rope_theta": (lambda v: v > 0, "> 0"),
        "image_size": (lambda v: min(v) >= 1 and max(v) <= 2**20, "two ints >= 1 (H, W), each at most 2^20"),
        "num_frames": (lambda v: 1 <= v <= 2**20, "in [1, 2^20]"),
        "latent_std": (lambda v: v is None or min(v, default=1.0) > 0, "null or all > 0"),
        "head_channels": (lambda v: 1 <= v <= 2**16, "in [1, 65536]"),
        "head_blocks": (lambda v: 0 <= v <= 1024, "in [0, 1024]"),
        "decoder_fine_depth": (lambda v: 0 <= v <= 1024, "in [0, 1024]"),
        "decoder_fine_width": (lambda v: v is None or 2 <= v <= 2**16, "null or in [2, 65536]"),
    }

    def __post_init__(self) -> None:
        for tower in ("encoder", "decoder"):
            if not isinstance(getattr(self, tower), TowerConfig):
                raise TypeError(f"{tower} must be a TowerConfig(width=..., depth=..., heads=...), got "
                                f"{getattr(self, tower)!r} (dicts from YAML / JSON go through from_dict or "
                                "tower_overrides)")
        check_fields(self)
        if self.decoder_fine_depth and self.patch_size % 2:
            raise ValueError(f"an hourglass decoder (decoder_fine_depth > 0) needs an even patch_size, "
                             f"got {self.patch_size}")
        if self.decoder_fine_depth and self.fine_tower.width % self.decoder.head_dim:
            raise ValueError(f"decoder_fine_width {self.fine_tower.width} must be a multiple of the decoder's "
                             f"head size {self.decoder.head_dim}")
        if self.logvar_min >= self.logvar_max:
            raise ValueError(f"logvar_min must be < logvar_max, got {self.logvar_min} and {self.logvar_max}")
        for key in ("latent_mean", "latent_std"):
            stats = getattr(self, key)
            if stats is not None and len(stats) != self.latent_channels:
                raise ValueError(f"{key} must have latent_channels = {self.latent_channels} values, got {len(stats)}")

    @property
    def fine_tower(self) -> TowerConfig:
        """The hourglass end's tower: the decoder's head size, ``decoder_fine_width`` wide (default
        half the decoder's), ``decoder_fine_depth`` deep (at least 1, for a config without one)."""
        width = self.decoder_fine_width or self.decoder.width // 2
        return TowerConfig(width=width, depth=max(self.decoder_fine_depth, 1),
                           heads=max(1, width // self.decoder.head_dim))

    @property
    def out_patch(self) -> int:
        """Pixels per side of a token at the pixel head: p, or p/2 after an hourglass end."""
        return self.patch_size // 2 if self.decoder_fine_depth else self.patch_size

    @property
    def is_video(self) -> bool:
        return self.tubelet_size > 1 or self.num_frames > 1

    @property
    def default_input_shape(self) -> tuple[int, int, int]:
        """(T, H, W) of the preset's default input."""
        return (self.num_frames, *self.image_size)

    def replace(self, **changes: Any) -> ViTokConfig:
        """A copy with some fields changed (unknown names raise ``TypeError`` naming them and the
        fields; values are checked like the constructor's)."""
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise TypeError(f"unknown {type(self).__name__} field{'s' if len(unknown) > 1 else ''} {unknown}; "
                            f"fields: {fields}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ViTokConfig:
        """Inverse of ``to_dict``. Raises ``ValueError`` naming the key for a non-dict, unknown or
        missing keys, and any value of the wrong type or out of range (lists become tuples)."""
        return cls(**tower_overrides(known_keys(cls, data, "ViTokConfig")))


def tower_overrides(overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """ViTokConfig field values as read from YAML / JSON, with ``encoder`` / ``decoder`` dicts
    made :class:`TowerConfig` (errors name ``<prefix>encoder.width`` etc.)."""
    return {key: _tower(value, f"{prefix}{key}") if key in ("encoder", "decoder") else value
            for key, value in overrides.items()}


def _tower(value: TowerConfig | dict[str, Any], name: str = "tower") -> TowerConfig:
    """A :class:`TowerConfig` from a config or a dict; errors name the section (``encoder.width: ...``)."""
    if isinstance(value, TowerConfig):
        return value
    kwargs = known_keys(TowerConfig, value, name)
    try:
        return TowerConfig(**kwargs)
    except ValueError as err:
        field = str(err).startswith(("width ", "depth ", "heads "))
        raise ValueError(f"{name}.{err}" if field else f"{name}: {err}") from None


@dataclass(frozen=True)
class DiTConfig:
    """DiT sizes and conditioning. The model's timestep input is in DDPM steps, [0, 1000); the
    flow objective passes t in [0, 1] times :data:`vitok.diffusion.flow.TIME_SCALE`."""

    width: int = 384
    depth: int = 12
    heads: int = 6
    latent_channels: int = 16
    num_classes: int = 1000
    mlp_ratio: float = 4.0
    class_dropout: float = 0.1
    rope_theta: float = 10000.0
    name: str = "DiT-S"

    ranges: ClassVar[dict[str, Rule]] = {
        **TowerConfig.ranges,
        **{k: ViTokConfig.ranges[k] for k in ("latent_channels", "mlp_ratio", "rope_theta")},
        "num_classes": (lambda v: v >= 1, ">= 1"),
        "class_dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    }

    def __post_init__(self) -> None:
        check_fields(self)  # types and ranges: ValueError "key must be ..., got ..."
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ValueError(f"width {self.width} must split into {self.heads} heads of even size (RoPE)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> DiTConfig:
        """Inverse of ``to_dict``; ``ValueError`` naming the key for unknown keys or bad values."""
        return cls(**known_keys(cls, data, "DiTConfig"))
