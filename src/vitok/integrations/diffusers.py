"""A diffusers drop-in: :class:`AutoencoderViTok` behaves like ``diffusers.AutoencoderKL``.

    from vitok.integrations.diffusers import AutoencoderViTok
    vae = AutoencoderViTok.from_vitok("vitok-tiny")          # or .from_pretrained(diffusers_dir)
    z = vae.encode(x).latent_dist.sample()                  # x: (B, 3, H, W) in [-1, 1]
    x_hat = vae.decode(z).sample
    pipe = DiTPipeline(transformer=..., vae=vae, scheduler=...)

Latent scaling, as diffusers pipelines apply it: a pipeline multiplies encoder latents by
``config.scaling_factor`` after subtracting ``config.shift_factor`` and undoes both before
decoding. vitok stores per-channel statistics instead (``ViTokConfig.latent_mean`` /
``latent_std``); they are exposed as ``config.latents_mean`` / ``config.latents_std`` (the names
diffusers' video VAEs use), and ``scaling_factor`` / ``shift_factor`` are set to their scalar
summary: ``shift_factor = mean(latent_mean)`` and ``scaling_factor = 1 / sqrt(mean(latent_std^2 +
(latent_mean - shift)^2))``, so that latents scaled the diffusers way have zero mean and unit
variance overall. A pipeline that knows per-channel statistics should use those.

Saving uses diffusers' format (``config.json`` with ``_class_name`` + ``diffusion_pytorch_model.safetensors``);
:meth:`AutoencoderViTok.to_vitok` / :meth:`from_vitok` convert both ways without changing a weight
(``vitok export --format diffusers`` writes this format). Requires ``diffusers``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor

from vitok.model_config import ViTokConfig
from vitok.models.vitok import ViTok


def scalar_scaling(mean: list[float] | None, std: list[float] | None) -> tuple[float, float]:
    """(scaling_factor, shift_factor) summarising per-channel latent statistics (see module doc)."""
    if mean is None or std is None:
        return 1.0, 0.0
    shift = sum(mean) / len(mean)
    variance = sum(s * s + (m - shift) ** 2 for m, s in zip(mean, std)) / len(mean)
    return 1.0 / math.sqrt(variance), shift


def copy_weights(source: ViTok, target: ViTok) -> ViTok:
    """Copy every parameter and buffer of ``source`` into ``target`` (the same architecture) in the
    source's dtype, so a bf16 model's float32 parts (``ViTok.fp32_modules``, the latent
    statistics) stay float32. Returns ``target``."""
    target.load_state_dict(source.state_dict())
    dtypes = {name: t.dtype for name, t in (*source.named_parameters(), *source.named_buffers())}
    for name, tensor in (*target.named_parameters(), *target.named_buffers()):
        tensor.data = tensor.data.to(dtypes[name])
    return target


class AutoencoderViTok(ModelMixin, ConfigMixin):
    """A :class:`~vitok.ViTok` behind the ``diffusers.AutoencoderKL`` interface.

    Args:
        vitok_config: a :meth:`ViTokConfig.to_dict` dict (the architecture).
        scaling_factor, shift_factor: diffusers' scalar latent scaling (see the module doc).
        latents_mean, latents_std: vitok's per-channel latent statistics.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(self, vitok_config: dict[str, Any], scaling_factor: float = 1.0, shift_factor: float = 0.0,
                 latents_mean: list[float] | None = None, latents_std: list[float] | None = None) -> None:
        super().__init__()
        self.model = ViTok(ViTokConfig.from_dict(dict(vitok_config)))

    # ------------------------------------------------------------------ conversion
    @classmethod
    def from_vitok(cls, model: ViTok | str) -> AutoencoderViTok:
        """Wrap a :class:`ViTok` (or load one by shipped name / directory); weights are copied as is."""
        model = ViTok.from_pretrained(model) if isinstance(model, str) else model
        config = model.config
        mean = list(config.latent_mean) if config.latent_mean is not None else None
        std = list(config.latent_std) if config.latent_std is not None else None
        scale, shift = scalar_scaling(mean, std)
        vae = cls(config.to_dict(), scale, shift, mean, std)
        copy_weights(model, vae.model)
        return vae

    def to_vitok(self) -> ViTok:
        """The wrapped :class:`ViTok` as a standalone model (a copy, each tensor in its dtype)."""
        return copy_weights(self.model, ViTok(self.model.config)).eval()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, **kwargs: Any) -> AutoencoderViTok:
        """diffusers' ``ModelMixin.from_pretrained`` (its keyword arguments), with vitok's dtype
        rules: the weights load as float32, and ``torch_dtype=torch.bfloat16`` casts the
        parameters except ``ViTok.fp32_modules`` (the bottleneck and the pixel head stay float32,
        as in ``ViTok.from_pretrained(..., dtype=)``); the latent statistics stay float32.
        diffusers' own cast keys on the first stored tensor and could leave everything float32
        or cast the float32 parts too. ``low_cpu_mem_usage`` defaults to False (it needs
        ``accelerate``, which vitok does not)."""
        from vitok.models.inference import cast_parameters

        dtype = kwargs.pop("torch_dtype", None)
        kwargs.setdefault("low_cpu_mem_usage", False)
        vae = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        for tensor in (*vae.parameters(), *vae.buffers()):
            if tensor.is_floating_point():
                tensor.data = tensor.data.float()
        if dtype is not None:
            cast_parameters(vae.model, dtype)
        return vae

    # ------------------------------------------------------------------ the AutoencoderKL interface
    def encode(self, x: Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """(B, 3, H, W) or (B, 3, T, H, W) in [-1, 1] -> ``AutoencoderKLOutput(latent_dist)``, a
        ``DiagonalGaussianDistribution`` over the (B, c, h, w) / (B, c, t, h, w) latent."""
        posterior = self.model.encode_posterior(x)
        if posterior.logvar is None:  # the deterministic bottleneck
            dist = DiagonalGaussianDistribution(torch.cat([posterior.mean, posterior.mean], 1), deterministic=True)
        else:
            dist = DiagonalGaussianDistribution(torch.cat([posterior.mean, posterior.logvar], 1))
        return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

    def decode(self, z: Tensor, return_dict: bool = True, generator: torch.Generator | None = None
               ) -> DecoderOutput | tuple:
        """(B, c, h, w) or (B, c, t, h, w) latent -> ``DecoderOutput(sample)`` of (B, 3, [T,] H, W)."""
        sample = self.model.decode(z)
        return DecoderOutput(sample=sample) if return_dict else (sample,)

    def forward(self, sample: Tensor, sample_posterior: bool = False, return_dict: bool = True,
                generator: torch.Generator | None = None) -> DecoderOutput | tuple:
        """Encode and decode (the posterior mean unless ``sample_posterior``)."""
        dist = self.encode(sample).latent_dist
        z = dist.sample(generator) if sample_posterior else dist.mode()
        decoded = self.model.decode(z, size=tuple(sample.shape[2:]))
        return DecoderOutput(sample=decoded) if return_dict else (decoded,)

    # ------------------------------------------------------------------ memory switches (as in diffusers)
    def enable_tiling(self, tile: int | tuple[int, int] | None = None, overlap: float | None = None,
                      frames: int | None = None, frame_overlap: float | None = None,
                      threshold: float | None = None) -> None:
        """Tile large inputs automatically (:meth:`ViTok.enable_tiling`: None keeps a setting)."""
        self.model.enable_tiling(tile, overlap, frames, frame_overlap, threshold)

    def disable_tiling(self) -> None:
        self.model.disable_tiling()

    @property
    def use_tiling(self) -> bool:
        """Whether large inputs are tiled (True by default, unlike AutoencoderKL: vitok tiles only
        inputs above its threshold, and an input within one tile is exactly the untiled result).
        Settable, as on ``AutoencoderKL``."""
        return self.model.tiling.enabled

    @use_tiling.setter
    def use_tiling(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"use_tiling takes True or False, got {value!r}")
        self.enable_tiling() if value else self.disable_tiling()

    @property
    def use_slicing(self) -> bool:
        return self.model.tiling.batch_slice is not None

    @use_slicing.setter
    def use_slicing(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"use_slicing takes True or False, got {value!r}")
        self.enable_slicing() if value else self.disable_slicing()

    @property
    def is_gradient_checkpointing(self) -> bool:
        return bool(self.model.encoder.grad_checkpointing)

    def enable_slicing(self) -> None:
        """Encode / decode one batch item at a time."""
        self.model.enable_slicing(1)

    def disable_slicing(self) -> None:
        self.model.disable_slicing()

    def enable_gradient_checkpointing(self, gradient_checkpointing_func: Any = None) -> None:
        """Recompute transformer blocks in the backward pass (vitok's own checkpointing)."""
        self.model.set_grad_checkpointing(True)

    def disable_gradient_checkpointing(self) -> None:
        self.model.set_grad_checkpointing(False)
