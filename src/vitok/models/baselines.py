"""Baselines evaluated through the very same code as vitok models: the SD VAE from ``diffusers``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from vitok.models.bottleneck import LatentDistribution
from vitok.models.vitok import AutoencoderOutput
from vitok.nn.patch import from_frames, pad_to_multiple, to_frames

SD_VAE_CONFIG = {  # stable-diffusion-v1-5 vae/config.json
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "sample_size": 512, "act_fn": "silu",
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32,
}


class DiffusersAutoencoder(nn.Module):
    """A ``diffusers.AutoencoderKL`` behind vitok's interface: ``forward(x).recon`` for images
    (B, 3, H, W) or videos (B, 3, T, H, W, coded frame by frame), values in [-1, 1]."""

    def __init__(self, vae: nn.Module, name: str = "sd-vae") -> None:
        super().__init__()
        self.vae = vae
        self.name = name
        self.downsample = 2 ** (len(vae.config.block_out_channels) - 1)

    fp32_modules = ()  # bf16 inference casts every weight (vitok.models.inference)
    compile_targets = ("vae.encoder", "vae.decoder")  # what --compile compiles

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    def enable_tiling(self, tile: int | None = None) -> None:
        """diffusers' own tiling (``AutoencoderKL.enable_tiling``; on for :func:`load_sd_vae`): inputs
        larger than ``tile`` pixels (default: the VAE's ``sample_size``, 512 for the SD VAE) are
        coded in tiles overlapping by 25% and blended linearly, so memory stays bounded.
        ``ValueError`` for a tile that is not a positive multiple of the downsampling factor."""
        if tile is not None:
            if isinstance(tile, bool) or not isinstance(tile, int) or tile < self.downsample or tile % self.downsample:
                raise ValueError(f"tile must be a positive multiple of {self.downsample} pixels, got {tile!r}")
            self.vae.tile_sample_min_size = tile
            self.vae.tile_latent_min_size = tile // self.downsample
        self.vae.enable_tiling()

    def disable_tiling(self) -> None:
        self.vae.disable_tiling()

    def latent_side(self, pixels: int) -> int:
        """Latent cells along a side of ``pixels``: ceil(pixels / f), as :meth:`pad` pads it."""
        return (pixels + self.downsample - 1) // self.downsample

    def pad(self, frames: Tensor) -> Tensor:
        """Frames (N, 3, H, W) edge-padded at the bottom and right to multiples of the downsampling
        factor f, as vitok pads to whole patches (a conv VAE's output is otherwise cut to whole
        multiples of f, or fails below f)."""
        return pad_to_multiple(frames.unsqueeze(2), 1, self.downsample)[:, :, 0]

    def encode(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, c, ceil(H/f), ceil(W/f)); videos (B, 3, T, H, W) -> (B, c, T, ...).
        Sizes that are not multiples of f are edge-padded first (:meth:`pad`)."""
        x = x.to(self.dtype)
        z = self.vae.encode(self.pad(to_frames(x))).latent_dist.mode()
        return from_frames(z, x.shape[0]) if x.ndim == 5 else z

    def decode(self, z: Tensor) -> Tensor:
        z = z.to(self.dtype)
        x = self.vae.decode(to_frames(z)).sample
        return from_frames(x, z.shape[0]) if z.ndim == 5 else x

    def forward(self, x: Tensor, sample: bool = False, generator: torch.Generator | None = None,
                noise: Tensor | None = None) -> AutoencoderOutput:
        """Encode + decode with the same outputs as :meth:`ViTok.forward` (a KL posterior whose
        ``kl()`` is the per-element mean, so the losses treat both models alike). Sizes that are
        not multiples of the downsampling factor are edge-padded and the reconstruction is cropped
        back to the input's size."""
        h, w = x.shape[-2:]
        flat = self.pad(to_frames(x).to(self.dtype))
        dist = self.vae.encode(flat).latent_dist
        posterior = LatentDistribution(dist.mean, dist.logvar)
        if noise is not None and x.ndim == 5:
            noise = to_frames(noise)
        z = posterior.sample(generator, noise) if sample else posterior.mode()
        recon = self.vae.decode(z).sample[..., :h, :w]
        if x.ndim == 5:
            unflat = lambda v: from_frames(v, x.shape[0])  # noqa: E731
            recon, z, posterior = unflat(recon), unflat(z), posterior.map(unflat)
        return AutoencoderOutput(recon=recon, latent=z, posterior=posterior)

    # the trainer's model interface ------------------------------------------------------------
    encoder_prefixes = ("vae.encoder.", "vae.quant_conv.")

    def latent_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Latent shape for an input (B, 3, H, W) or (B, 3, T, H, W)."""
        c, side = self.vae.config.latent_channels, self.latent_side
        if len(shape) == 4:
            return (shape[0], c, side(shape[2]), side(shape[3]))
        return (shape[0], c, shape[2], side(shape[3]), side(shape[4]))

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        if enabled:
            self.vae.enable_gradient_checkpointing()

    def fresh_copy(self) -> DiffusersAutoencoder:
        from diffusers import AutoencoderKL

        return DiffusersAutoencoder(AutoencoderKL.from_config(self.vae.config), self.name)

    def save_pretrained(self, directory: str | Path) -> Path:
        """diffusers' own format (config.json + diffusion_pytorch_model.safetensors). The config's
        ``_name_or_path`` (the folder it was loaded from, which diffusers records) is left out, so
        an export names no local path of the machine that made it."""
        import json

        self.vae.save_pretrained(str(directory), safe_serialization=True)
        config = Path(directory) / "config.json"
        entries = json.loads(config.read_text())
        if entries.pop("_name_or_path", None) is not None:
            config.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
        return Path(directory)

    def latent_size(self, shape: tuple[int, int, int]) -> int:
        t, h, w = shape
        return t * self.vae.config.latent_channels * self.latent_side(h) * self.latent_side(w)

    def gmacs(self, shape: tuple[int, int, int]) -> float:
        """Encode + decode MACs of one (T, H, W) input, counted by FlopCounterMode on the meta device."""
        from diffusers import AutoencoderKL
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.utils.flop_counter import FlopCounterMode

        t, h, w = shape
        f = self.downsample
        with torch.device("meta"):
            vae = AutoencoderKL.from_config(self.vae.config)
            x = torch.zeros(1, 3, self.latent_side(h) * f, self.latent_side(w) * f)  # padded as forward pads it
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            vae.decode(vae.encode(x).latent_dist.mode())
        return t * counter.get_total_flops() / 2e9


def build_autoencoder_kl(kwargs: dict, init_from: str | None = None) -> DiffusersAutoencoder:
    """A trainable AutoencoderKL: from a local directory, or built from ``kwargs`` (SD config
    entries not given are the SD v1 ones)."""
    from diffusers import AutoencoderKL

    if init_from is not None:  # low_cpu_mem_usage: without `accelerate` diffusers would warn on every load
        vae = AutoencoderKL.from_pretrained(init_from, local_files_only=True, low_cpu_mem_usage=False)
        return DiffusersAutoencoder(vae, "autoencoder-kl")
    return DiffusersAutoencoder(AutoencoderKL(**{**SD_VAE_CONFIG, **kwargs}), "autoencoder-kl")


def load_sd_vae(weights: str | Path | None, device: str | torch.device = "cpu") -> DiffusersAutoencoder:
    """``AutoencoderKL.from_pretrained(weights)`` from a local directory (no hub access), or the SD
    config with random weights (for timing) when ``weights`` is None."""
    from diffusers import AutoencoderKL

    if weights is None:
        print("warning: sd-vae without --baseline-weights: random weights (timing only)", file=sys.stderr)
        vae = AutoencoderKL(**SD_VAE_CONFIG)
    else:
        if not Path(weights).is_dir():
            raise FileNotFoundError(f"--baseline-weights {weights} is not a local diffusers model directory")
        vae = AutoencoderKL.from_pretrained(str(weights), local_files_only=True, low_cpu_mem_usage=False)
    model = DiffusersAutoencoder(vae.to(device).eval())
    model.enable_tiling()  # large images in tiles, like ViTok's automatic tiling
    return model
