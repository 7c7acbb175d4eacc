"""ViTok: a Vision-Transformer autoencoder for images and videos (SPEC section 1).

Read top-down: input checks -> the model (patch embed, encoder, bottleneck, decoder) ->
saving and loading. Layouts:

- image  ``(B, 3, H, W)``,     values in [-1, 1]  <->  latent ``(B, c, H/p, W/p)``
- video  ``(B, 3, T, H, W)``,  values in [-1, 1]  <->  latent ``(B, c, T/q, H/p, W/p)``

Sizes that are not multiples of p (or q) are edge-padded on the way in and cropped on the way
out; positions come from axial RoPE over the (t, y, x) token grid, so any resolution works.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from vitok.config import ViTokConfig
from vitok.models.bottleneck import Bottleneck, LatentDistribution
from vitok.nn import Transformer, pad_to_multiple, patchify, rope_cos_sin, token_grid, unpatchify
from vitok.nn.pixel_head import ConvTail

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


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


class ViTok(nn.Module):
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
        self.decoder_out = nn.Linear(dec.width, self.token_dim)  # = ConvTranspose3d, kernel = stride
        self.decoder_features = self.conv_tail = None
        if config.head == "conv":  # see vitok.nn.pixel_head
            self.decoder_features = nn.Linear(dec.width, q * p * p * config.head_channels)
            self.conv_tail = ConvTail(config.head_channels, config.head_blocks, c)
        self.register_buffer("latent_mean", _stats(config.latent_mean, config.latent_channels, 0.0))
        self.register_buffer("latent_std", _stats(config.latent_std, config.latent_channels, 1.0))
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
    def from_preset(cls, name: str, **overrides: object) -> ViTok:
        """A randomly initialised model of a named preset, e.g. ``ViTok.from_preset("S-B/16")``.

        ``overrides`` are :class:`ViTokConfig` fields (``latent_channels=32``, ``qk_norm=True``);
        an unknown field raises ``TypeError``.
        """
        from vitok.presets import get_config

        return cls(get_config(name, **overrides))

    encoder_prefixes = ("patch_embed.", "encoder.", "bottleneck.")  # what stage 2 freezes

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute transformer-block activations in the backward pass (saves memory)."""
        self.encoder.grad_checkpointing = self.decoder.grad_checkpointing = enabled

    def fresh_copy(self) -> ViTok:
        """A new model with the same config (and freshly initialised weights)."""
        return ViTok(self.config)

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
        return math.ceil(t / q), math.ceil(h / p), math.ceil(w / p)

    def _rope(self, grid: tuple[int, int, int], tower: str) -> tuple[Tensor, Tensor]:
        head_dim = getattr(self.config, tower).head_dim
        coords = token_grid(*grid, device=self.device)
        return rope_cos_sin(coords, head_dim, self.config.rope_theta)

    # ------------------------------------------------------------------ encoder
    def encode_posterior(self, x: Tensor) -> LatentDistribution:
        """Pixels (image or video, [-1, 1]) -> latent distribution in grid layout."""
        check_pixels(x, self.config.in_channels)
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
               normalize: bool = False) -> Tensor:
        """Pixels -> latent.

        Args:
            x: image (B, 3, H, W) or video (B, 3, T, H, W), values in [-1, 1].
            sample: draw from the posterior instead of taking its mean.
            generator: RNG for ``sample``.
            normalize: subtract the stored per-channel latent mean and divide by the std
                (the form a generative model should see).
        Returns:
            (B, c, ceil(H/p), ceil(W/p)) for images, (B, c, ceil(T/q), ceil(H/p), ceil(W/p)) for videos.
        """
        posterior = self.encode_posterior(x)
        z = posterior.sample(generator) if sample else posterior.mode()
        return self.normalize_latent(z) if normalize else z

    # ------------------------------------------------------------------ decoder
    def decode(self, z: Tensor, size: tuple[int, ...] | None = None, denormalize: bool = False) -> Tensor:
        """Latent -> pixels.

        Args:
            z: (B, c, h, w) image latent or (B, c, t, h, w) video latent.
            size: output (H, W) or (T, H, W) to crop to (the input size); default: the full
                padded size (h*p, w*p) / (t*q, h*p, w*p).
            denormalize: undo ``encode(..., normalize=True)`` first.
        Returns:
            image (B, 3, H, W) or video (B, 3, T, H, W), values nominally in [-1, 1].
        """
        check_latent(z, self.config.latent_channels)
        if denormalize:
            z = self.denormalize_latent(z)
        is_image = z.ndim == 4
        z5 = z.unsqueeze(2) if is_image else z  # (B, c, t, h, w)
        grid = tuple(z5.shape[-3:])
        h = self.decoder_in(rearrange(z5.to(self.dtype), "b c t h w -> b (t h w) c"))
        h = self.decoder(h, self._rope(grid, "decoder"))
        video = self.pixel_head(h, grid, is_image)
        if is_image:
            video = video[:, :, 0]
        if size is not None:
            if len(size) != video.ndim - 2:
                raise ValueError(f"size must have {video.ndim - 2} entries for this latent, got {size}")
            video = video[(..., *(slice(0, s) for s in size))]
        return video

    def pixel_head(self, h: Tensor, grid: tuple[int, int, int], is_image: bool) -> Tensor:
        """Decoder tokens (B, L, width) on ``grid`` -> pixels (B, 3, T, H, W) through the linear
        head and, with ``head="conv"``, the conv tail (per frame; an image keeps only frame 0)."""
        q, p, c = self.config.tubelet_size, self.config.patch_size, self.config.in_channels
        video = unpatchify(self.decoder_out(h), grid, q, p, c)  # (B, 3, T, H, W)
        if self.conv_tail is None:
            return video
        rows = p * p * self.config.head_channels
        if is_image:  # only frame 0's features: the first p*p*C outputs (q is the outer index)
            video = video[:, :, :1]
            weight, bias = self.decoder_features.weight[:rows], self.decoder_features.bias[:rows]
            features = unpatchify(F.linear(h, weight, bias), grid, 1, p, self.config.head_channels)
        else:
            features = unpatchify(self.decoder_features(h), grid, q, p, self.config.head_channels)
        frames = video.shape[2]
        flat = lambda v: v.transpose(1, 2).flatten(0, 1)  # noqa: E731  (B*T, C, H, W)
        out = self.conv_tail(flat(video), flat(features))
        return out.unflatten(0, (video.shape[0], frames)).transpose(1, 2)

    def forward(self, x: Tensor, sample: bool = False, generator: torch.Generator | None = None,
                noise: Tensor | None = None) -> AutoencoderOutput:
        """Encode and decode; ``sample=True`` (training) decodes a posterior sample, whose
        standard-normal noise can be given (shape :meth:`latent_shape`) for reproducibility."""
        posterior = self.encode_posterior(x)
        z = posterior.sample(generator, noise) if sample else posterior.mode()
        recon = self.decode(z, size=tuple(x.shape[2:]))
        return AutoencoderOutput(recon=recon, latent=z, posterior=posterior)

    def latent_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Latent shape for an input of shape (B, 3, H, W) or (B, 3, T, H, W)."""
        c = self.config.latent_channels
        if len(shape) == 4:
            _, h, w = self.latent_grid((1, *shape[2:]))
            return (shape[0], c, h, w)
        return (shape[0], c, *self.latent_grid(tuple(shape[2:])))

    # ------------------------------------------------------------------ latent statistics
    def set_latent_stats(self, mean: Tensor, std: Tensor) -> None:
        """Store per-channel latent statistics (c,) used by ``normalize``/``denormalize``;
        they are saved with the model."""
        c = self.config.latent_channels
        if mean.shape != (c,) or std.shape != (c,):
            raise ValueError(f"latent statistics must have shape ({c},), got {tuple(mean.shape)}, {tuple(std.shape)}")
        self.latent_mean.copy_(mean)
        self.latent_std.copy_(std)
        self.config = self.config.replace(latent_mean=tuple(mean.tolist()), latent_std=tuple(std.tolist()))

    def _stat_view(self, stat: Tensor, z: Tensor) -> Tensor:
        return stat.view(1, -1, *([1] * (z.ndim - 2))).to(z.dtype)

    def normalize_latent(self, z: Tensor) -> Tensor:
        """(z - mean) / std per channel, with the statistics stored in the config."""
        return (z - self._stat_view(self.latent_mean, z)) / self._stat_view(self.latent_std, z)

    def denormalize_latent(self, z: Tensor) -> Tensor:
        """Inverse of :meth:`normalize_latent`."""
        return z * self._stat_view(self.latent_std, z) + self._stat_view(self.latent_mean, z)

    # ------------------------------------------------------------------ save / load
    def save_pretrained(self, directory: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (both atomically) into ``directory``;
        ``dtype`` (e.g. ``torch.bfloat16``) stores the weights smaller (loading casts them back)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to(dtype if dtype and v.is_floating_point() else v.dtype).contiguous().cpu()
                 for k, v in self.state_dict().items()}
        config = self.config.to_dict()
        _atomic_write(directory / WEIGHTS_NAME, lambda path: save_file(state, str(path), {"format": "pt"}))
        text = json.dumps({"model_type": "vitok", **config}, indent=2)
        _atomic_write(directory / CONFIG_NAME, lambda path: Path(path).write_text(text))
        return directory

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, device: str | torch.device = "cpu",
                        dtype: torch.dtype | None = None) -> ViTok:
        """Load a model saved by :meth:`save_pretrained` from a local directory (no network,
        no unpickling: the weights are safetensors) or a model shipped with the package."""
        directory = resolve_pretrained(name_or_path)
        from safetensors.torch import load_file

        data = json.loads((directory / CONFIG_NAME).read_text())
        if data.pop("model_type", "vitok") != "vitok":
            raise ValueError(f"{directory / CONFIG_NAME} is not a vitok config")
        model = cls(ViTokConfig.from_dict(data))
        state = load_file(str(directory / WEIGHTS_NAME))
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = [k for k in set(expected) & set(state) if expected[k].shape != state[k].shape]
        if missing or unexpected or wrong:
            raise ValueError(f"weights in {directory} do not match its config: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}, wrong shape {sorted(wrong)[:5]}")
        model.load_state_dict(state)
        return model.to(device=device, dtype=dtype).eval()


def resolve_pretrained(name_or_path: str | os.PathLike) -> Path:
    """A local directory holding ``config.json`` + ``model.safetensors``, or the name of a model
    shipped in ``vitok/pretrained/``. Raises ``FileNotFoundError`` naming what was looked for."""
    path = Path(name_or_path)
    if (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file():
        return path
    shipped = Path(__file__).resolve().parent.parent / "pretrained" / str(name_or_path)
    if (shipped / CONFIG_NAME).is_file() and (shipped / WEIGHTS_NAME).is_file():
        return shipped
    raise FileNotFoundError(
        f"no vitok model at {str(name_or_path)!r}: expected a directory with {CONFIG_NAME} and "
        f"{WEIGHTS_NAME} (written by save_pretrained) or a shipped model name; "
        "for a randomly initialised preset use ViTok.from_preset(name)"
    )


def _stats(values: tuple[float, ...] | None, channels: int, fill: float) -> Tensor:
    if values is None:
        return torch.full((channels,), fill)
    return torch.tensor(values, dtype=torch.float32)


def _atomic_write(target: Path, write) -> None:
    """Write via a temp file in the same directory, then rename over ``target``."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
