"""ViTok: a Vision-Transformer autoencoder for images and videos (arXiv 2501.09755).

Read top-down: input checks -> the model (patch embed, encoder, bottleneck, decoder) -> latent
statistics. The tiling switches and policy come from :class:`vitok.models.tiling.TilingMixin`,
saving and loading from :class:`vitok.models.pretrained.PretrainedMixin`. Layouts:

- image  ``(B, 3, H, W)``,     values in [-1, 1]  <->  latent ``(B, c, H/p, W/p)``
- video  ``(B, 3, T, H, W)``,  values in [-1, 1]  <->  latent ``(B, c, T/q, H/p, W/p)``

Sizes that are not multiples of p (or q) are edge-padded on the way in and cropped on the way
out; positions come from axial RoPE over the (t, y, x) token grid, so any resolution works.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from vitok.checks import describe
from vitok.model_config import ViTokConfig
from vitok.models.bottleneck import Bottleneck, LatentDistribution
from vitok.models.pretrained import PretrainedMixin
from vitok.models.tiling import TilingConfig, TilingMixin, concat_slices, progress_bar, split_batch, tiled_apply
from vitok.nn import (
    Transformer,
    from_frames,
    pad_to_multiple,
    patchify,
    rope_cos_sin,
    to_frames,
    token_grid,
    unpatchify,
)
from vitok.nn.pixel_head import ConvTail


@dataclass
class AutoencoderOutput:
    """What ``ViTok.forward`` returns (the same type in training and evaluation).

    Attributes:
        recon: reconstruction, same shape as the input, values nominally in [-1, 1].
        latent: the latent that was decoded, grid layout (see module docstring).
        posterior: the latent distribution (grid layout) for the KL term.
    """

    recon: Tensor
    latent: Tensor
    posterior: LatentDistribution


def check_pixels(x: object, channels: int) -> None:
    """Raise ``ValueError`` unless x is a non-empty float (B, C, H, W) or (B, C, T, H, W) tensor."""
    expected = f"an image (B, {channels}, H, W) or video (B, {channels}, T, H, W) float tensor"
    if not isinstance(x, Tensor):
        raise ValueError(f"expected {expected}, got {type(x).__name__}")
    if x.ndim not in (4, 5):
        raise ValueError(f"expected {expected}, got shape {tuple(x.shape)} (rank {x.ndim})")
    if x.shape[1] != channels:
        raise ValueError(f"expected {expected}, got {x.shape[1]} channels in shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected {expected} with values in [-1, 1], got dtype {x.dtype}; "
                         "convert uint8 images with x.float() / 127.5 - 1")
    if x.numel() == 0:
        raise ValueError(f"expected {expected}, got an empty tensor of shape {tuple(x.shape)}")


def check_latent(z: object, channels: int) -> None:
    """Raise ``ValueError`` unless z is a non-empty float (B, c, h, w) or (B, c, t, h, w) tensor."""
    expected = f"a latent (B, {channels}, h, w) or (B, {channels}, t, h, w) float tensor"
    if not isinstance(z, Tensor) or z.ndim not in (4, 5) or z.shape[1] != channels:
        got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ValueError(f"expected {expected}, got {got}")
    if not z.is_floating_point() or z.numel() == 0:
        raise ValueError(f"expected {expected}, got dtype {z.dtype} and shape {tuple(z.shape)}")


class ViTok(TilingMixin, PretrainedMixin, nn.Module):
    """The ViTok autoencoder. Build it with :meth:`from_preset` or :meth:`from_pretrained`."""

    def __init__(self, config: ViTokConfig) -> None:
        super().__init__()
        self.config = config
        q, p, c = config.tubelet_size, config.patch_size, config.in_channels
        self.token_dim = q * p * p * c
        enc, dec = config.encoder, config.decoder
        self.patch_embed = nn.Linear(self.token_dim, enc.width)  # = Conv3d, kernel = stride = (q, p, p)
        self.encoder = Transformer(enc, config.mlp_ratio, config.norm, config.qk_norm)
        self.bottleneck = Bottleneck(enc.width, config.latent_channels, config.bottleneck,
                                     config.logvar_min, config.logvar_max)
        self.decoder_in = nn.Linear(config.latent_channels, dec.width)
        self.decoder = Transformer(dec, config.mlp_ratio, config.norm, config.qk_norm)
        self.decoder_split = self.fine_decoder = None
        out_width, out_p = dec.width, config.out_patch
        if config.decoder_fine_depth:  # the hourglass end: 2x2 finer, narrower tokens
            fine = config.fine_tower
            self.decoder_split = nn.Linear(dec.width, 4 * fine.width)
            self.fine_decoder = Transformer(fine, config.mlp_ratio, config.norm, config.qk_norm)
            out_width = fine.width
        self.decoder_out = nn.Linear(out_width, q * out_p * out_p * c)  # = ConvTranspose3d, kernel = stride
        self.decoder_features = self.conv_tail = None
        if config.head == "conv":  # see vitok.nn.pixel_head
            self.decoder_features = nn.Linear(out_width, q * out_p * out_p * config.head_channels)
            self.conv_tail = ConvTail(config.head_channels, config.head_blocks, c)
        self.register_buffer("latent_mean", _stats(config.latent_mean, config.latent_channels, 0.0))
        self.register_buffer("latent_std", _stats(config.latent_std, config.latent_channels, 1.0))
        self.tiling = TilingConfig()  # automatic tiling of large inputs (vitok.models.tiling)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Truncated-normal (std 0.02) linears with zero bias; the patch embedding is
        Xavier-uniform as a conv would be (MAE); norms keep their unit/zero init."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.patch_embed.weight)
        if self.conv_tail is not None:
            self.conv_tail.initialize_weights()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_preset(cls, name: str, /, **overrides: object) -> ViTok:
        """A randomly initialised model of a named preset, e.g. ``ViTok.from_preset("S-B/16")``.

        ``overrides`` are :class:`ViTokConfig` fields (``latent_channels=32``, ``qk_norm=True``);
        an unknown field raises ``TypeError``.
        """
        from vitok.presets import get_config

        return cls(get_config(name, **overrides))

    encoder_prefixes = ("patch_embed.", "encoder.", "bottleneck.")  # what stage 2 freezes
    fsdp_units = ("Block",)  # what FSDP shards one by one (vitok.train.distributed.wrap)
    fp32_modules = ("bottleneck", "decoder_out", "conv_tail")  # kept float32 in bf16 inference (models.inference)
    compile_targets = ("_encode_posterior", "_decode")  # what --compile compiles (models.inference)

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute transformer-block activations in the backward pass (saves memory)."""
        self.encoder.grad_checkpointing = self.decoder.grad_checkpointing = enabled
        if self.fine_decoder is not None:
            self.fine_decoder.grad_checkpointing = enabled

    @property
    def dtype(self) -> torch.dtype:
        return self.patch_embed.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.patch_embed.weight.device

    # ------------------------------------------------------------------ layout helpers
    def latent_grid(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """Token grid (t, h, w) for an input of (T, H, W) pixels (after padding)."""
        q, p = self.config.tubelet_size, self.config.patch_size
        t, h, w = shape
        return (t + q - 1) // q, (h + p - 1) // p, (w + p - 1) // p  # integer ceil, exact for symbolic sizes

    def _rope(self, grid: tuple[int, int, int], tower: str) -> tuple[Tensor, Tensor]:
        head_dim = getattr(self.config, tower).head_dim
        coords = token_grid(*grid, device=self.device)
        return rope_cos_sin(coords, head_dim, self.config.rope_theta)

    # ------------------------------------------------------------------ encoder
    def encode_posterior(self, x: Tensor, tiled: bool | None = None) -> LatentDistribution:
        """Pixels (image or video, [-1, 1]) -> latent distribution in grid layout.

        ``tiled``: None = tile when the input is large and tiling is enabled (the default), True =
        always tile, False = never (see :meth:`enable_tiling`).
        """
        check_pixels(x, self.config.in_channels)
        q, p = self.config.tubelet_size, self.config.patch_size
        video = x.ndim == 5
        grid = self.latent_grid(tuple(x.shape[-3:]) if video else (1, *x.shape[-2:]))
        if not self._tiles(tiled, grid, video):
            x = pad_to_multiple(x.unsqueeze(2), 1, p)[:, :, 0] if not video else pad_to_multiple(x, q, p)
            parts = split_batch(x, self.tiling.batch_slice)
            return LatentDistribution.cat([self._encode_posterior(part) for part in parts])
        # tiled: no padded copy of the whole input (memory flat in a video's length); a window that
        # reaches past the end is edge-padded by _encode_posterior, which is the same values
        windows = self.tile_windows(grid, video)
        c = self.config.latent_channels
        kl = self.config.bottleneck == "kl"

        def encode_params(crop: Tensor) -> Tensor:
            posterior = self._encode_posterior(crop)
            return torch.cat([posterior.mean, posterior.logvar], 1) if kl else posterior.mean

        scale_in = ([q] if video else []) + [p, p]
        params = concat_slices(lambda part: tiled_apply(
            encode_params, part, windows, scale_in, [1] * len(scale_in), 2 * c if kl else c,
            progress_bar("encode", self.tiling.progress)), x, self.tiling.batch_slice)
        params = params.to(self.bottleneck.proj.weight.dtype)
        return LatentDistribution(params[:, :c], params[:, c:] if kl else None)

    def _encode_posterior(self, x: Tensor) -> LatentDistribution:
        """The untiled encoder on one input whose size is already whole patches."""
        is_image = x.ndim == 4
        video = x.unsqueeze(2) if is_image else x  # (B, C, T, H, W)
        q, p = self.config.tubelet_size, self.config.patch_size
        video = pad_to_multiple(video.to(self.dtype), q, p)
        grid = self.latent_grid(tuple(video.shape[-3:]))
        h = self.patch_embed(patchify(video, q, p))  # (B, L, width)
        h = self.encoder(h, self._rope(grid, "encoder"))
        posterior = self.bottleneck(h)  # params (B, L, c)
        t, gh, gw = grid
        if is_image:
            return posterior.map(lambda v: rearrange(v, "b (t h w) c -> b c (t h) w", t=t, h=gh, w=gw))
        return posterior.map(lambda v: rearrange(v, "b (t h w) c -> b c t h w", t=t, h=gh, w=gw))

    def encode(self, x: Tensor, sample: bool = False, generator: torch.Generator | None = None,
               normalize: bool = False, tiled: bool | None = None) -> Tensor:
        """Pixels -> latent.

        Args:
            x: image (B, 3, H, W) or video (B, 3, T, H, W), values in [-1, 1].
            sample: draw from the posterior instead of taking its mean.
            generator: RNG for ``sample``.
            normalize: subtract the stored per-channel latent mean and divide by the std
                (the form a generative model should see).
            tiled: None = automatic (large inputs are tiled unless :meth:`disable_tiling`), True /
                False = always / never.
        Returns:
            (B, c, ceil(H/p), ceil(W/p)) for images, (B, c, ceil(T/q), ceil(H/p), ceil(W/p)) for videos.
        """
        posterior = self.encode_posterior(x, tiled)
        z = posterior.sample(generator) if sample else posterior.mode()
        return self.normalize_latent(z) if normalize else z

    # ------------------------------------------------------------------ decoder
    def decode(self, z: Tensor, size: tuple[int, ...] | None = None, denormalize: bool = False,
               tiled: bool | None = None) -> Tensor:
        """Latent -> pixels.

        Args:
            z: (B, c, h, w) image latent or (B, c, t, h, w) video latent.
            size: output (H, W) or (T, H, W) to crop to (the input size), each entry in
                [1, decoded size]; default: the full decoded size (h*p, w*p) / (t*q, h*p, w*p).
            denormalize: undo ``encode(..., normalize=True)`` first.
            tiled: None = automatic (large latents are tiled unless :meth:`disable_tiling`),
                True / False = always / never.
        Returns:
            image (B, 3, H, W) or video (B, 3, T, H, W), values nominally in [-1, 1].
        Raises:
            ValueError: for a latent of the wrong shape or a ``size`` that is not a tuple of
                positive ints no larger than the decoded size.
        """
        check_latent(z, self.config.latent_channels)
        q, p = self.config.tubelet_size, self.config.patch_size
        video = z.ndim == 5
        full = ((z.shape[2] * q,) if video else ()) + (z.shape[-2] * p, z.shape[-1] * p)
        size = check_size(size, full)
        if denormalize:
            z = self.denormalize_latent(z)
        grid = tuple(z.shape[-3:]) if video else (1, *z.shape[-2:])
        if not self._tiles(tiled, grid, video):
            out = concat_slices(self._decode, z, self.tiling.batch_slice)
        else:
            scale_out = ([q] if video else []) + [p, p]
            windows = self.tile_windows(grid, video)
            out = concat_slices(lambda part: tiled_apply(
                self._decode, part, windows, [1] * len(scale_out), scale_out, self.config.in_channels,
                progress_bar("decode", self.tiling.progress)), z, self.tiling.batch_slice)
            out = out.to(self.decoder_out.weight.dtype)
        return out[(..., *(slice(0, s) for s in size))]

    def _decode(self, z: Tensor) -> Tensor:
        """The untiled decoder: (B, c, [t,] h, w) -> (B, 3, [t*q,] h*p, w*p)."""
        is_image = z.ndim == 4
        z5 = z.unsqueeze(2) if is_image else z  # (B, c, t, h, w)
        grid = tuple(z5.shape[-3:])
        h = self.decoder_in(rearrange(z5.to(self.dtype), "b c t h w -> b (t h w) c"))
        h = self.decoder(h, self._rope(grid, "decoder"))
        if self.fine_decoder is not None:  # each token -> 2x2 tokens on a grid twice as fine
            t, gh, gw = grid
            h = rearrange(self.decoder_split(h), "b (t h w) (s1 s2 c) -> b (t h s1 w s2) c", t=t, h=gh, w=gw,
                          s1=2, s2=2)
            grid = (t, 2 * gh, 2 * gw)
            h = self.fine_decoder(h, self._rope(grid, "decoder"))
        video = self.pixel_head(h, grid, is_image)
        return video[:, :, 0] if is_image else video

    def pixel_head(self, h: Tensor, grid: tuple[int, int, int], is_image: bool) -> Tensor:
        """Decoder tokens (B, L, width) on ``grid`` -> pixels (B, 3, T, H, W) through the linear
        head and, with ``head="conv"``, the conv tail (per frame; an image keeps only frame 0)."""
        q, p, c = self.config.tubelet_size, self.config.out_patch, self.config.in_channels
        video = unpatchify(self.decoder_out(h.to(self.decoder_out.weight.dtype)), grid, q, p, c)  # (B, 3, T, H, W)
        if self.conv_tail is None:
            return video
        rows = p * p * self.config.head_channels
        if is_image:  # only frame 0's features: the first p*p*C outputs (q is the outer index)
            video = video[:, :, :1]
            weight, bias = self.decoder_features.weight[:rows], self.decoder_features.bias[:rows]
            features = unpatchify(F.linear(h, weight, bias), grid, 1, p, self.config.head_channels)
        else:
            features = unpatchify(self.decoder_features(h), grid, q, p, self.config.head_channels)
        return from_frames(self.conv_tail(to_frames(video), to_frames(features)), video.shape[0])

    def forward(self, x: Tensor, sample: bool = False, generator: torch.Generator | None = None,
                noise: Tensor | None = None, tiled: bool | None = None) -> AutoencoderOutput:
        """Encode and decode; ``sample=True`` (training) decodes a posterior sample, whose
        standard-normal noise can be given (shape :meth:`latent_shape`) for reproducibility;
        ``tiled`` as in :meth:`encode`."""
        posterior = self.encode_posterior(x, tiled)
        z = posterior.sample(generator, noise) if sample else posterior.mode()
        recon = self.decode(z, tiled=tiled)
        # crop the padding with a negative pad: a new tensor of exactly the input's size, so a traced
        # graph (torch.export with dynamic sizes) does not branch on whether there was padding
        crop = [(0, n - f) for n, f in zip(reversed(x.shape[2:]), reversed(recon.shape[2:]))]
        recon = F.pad(recon, [v for pair in crop for v in pair])
        return AutoencoderOutput(recon=recon, latent=z, posterior=posterior)

    def latent_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Latent shape for an input of shape (B, 3, H, W) or (B, 3, T, H, W); ``ValueError`` for
        anything else."""
        if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) not in (4, 5) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
            raise ValueError(f"shape must be (B, 3, H, W) or (B, 3, T, H, W) of positive ints, got {describe(shape)}")
        c = self.config.latent_channels
        if len(shape) == 4:
            _, h, w = self.latent_grid((1, *shape[2:]))
            return (shape[0], c, h, w)
        return (shape[0], c, *self.latent_grid(tuple(shape[2:])))

    # ------------------------------------------------------------------ latent statistics
    def set_latent_stats(self, mean: Tensor, std: Tensor) -> None:
        """Store per-channel latent statistics (c,) used by ``normalize``/``denormalize``;
        they are saved with the model. Raises ``TypeError`` for non-tensors and ``ValueError``
        for a wrong shape, a non-finite mean or a std that is not finite and positive (nothing is
        stored then)."""
        c = self.config.latent_channels
        if not isinstance(mean, Tensor) or not isinstance(std, Tensor):
            raise TypeError(f"set_latent_stats needs tensors mean and std of shape ({c},), got "
                            f"{type(mean).__name__} and {type(std).__name__}")
        if mean.shape != (c,) or std.shape != (c,):
            raise ValueError(f"latent statistics must have shape ({c},), got {tuple(mean.shape)}, {tuple(std.shape)}")
        if not torch.isfinite(mean).all():
            raise ValueError(f"latent mean must be finite, got {mean.tolist()}")
        if not (torch.isfinite(std).all() and (std > 0).all()):
            raise ValueError(f"latent std must be finite and > 0, got {std.tolist()}")
        self.config = self.config.replace(latent_mean=tuple(mean.tolist()), latent_std=tuple(std.tolist()))
        self.latent_mean.copy_(mean)
        self.latent_std.copy_(std)

    def _stat_view(self, stat: Tensor, z: Tensor) -> Tensor:
        return stat.view(1, -1, *([1] * (z.ndim - 2))).to(z.dtype)

    def normalize_latent(self, z: Tensor) -> Tensor:
        """(z - mean) / std per channel, with the statistics stored in the config; z is a latent
        (B, c, h, w) or (B, c, t, h, w) (``ValueError`` otherwise)."""
        check_latent(z, self.config.latent_channels)
        return (z - self._stat_view(self.latent_mean, z)) / self._stat_view(self.latent_std, z)

    def denormalize_latent(self, z: Tensor) -> Tensor:
        """Inverse of :meth:`normalize_latent` (same checks)."""
        check_latent(z, self.config.latent_channels)
        return z * self._stat_view(self.latent_std, z) + self._stat_view(self.latent_mean, z)



def check_size(size: object, full: tuple[int, ...]) -> tuple[int, ...]:
    """``size`` as a tuple of ints in [1, full] (one per entry of ``full``), or ``full`` if None."""
    if size is None:
        return full
    entries = tuple(size) if isinstance(size, (tuple, list, torch.Size)) else None
    if entries is None or len(entries) != len(full) or not all(
            isinstance(s, (int, torch.SymInt)) and not isinstance(s, bool) for s in entries):
        raise ValueError(f"size must be {len(full)} ints {'(T, H, W)' if len(full) == 3 else '(H, W)'} for "
                         f"this latent, got {size!r}")
    if any(not 1 <= s <= f for s, f in zip(entries, full)):
        raise ValueError(f"size {entries} must be within 1..{full} (the decoded size of this latent); "
                         "decode a larger latent for a larger output")
    return entries


def _stats(values: tuple[float, ...] | None, channels: int, fill: float) -> Tensor:
    if values is None:
        return torch.full((channels,), fill)
    return torch.tensor(values, dtype=torch.float32)
