"""vitok: the ViTok visual tokenizer (a ViT autoencoder for images and videos) in PyTorch.

>>> from vitok import ViTok
>>> model = ViTok.from_preset("N-N/8")
>>> z = model.encode(x)          # x: (B, 3, H, W) in [-1, 1] -> (B, c, H/8, W/8)
>>> x_hat = model.decode(z, size=x.shape[-2:])
"""
from typing import TYPE_CHECKING

from vitok.lazy import attach

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = attach(__name__, {
    "vitok.metrics.flops": ["compression_ratio", "count_macs", "latent_size"],
    "vitok.model_config": ["DiTConfig", "TowerConfig", "ViTokConfig"],
    "vitok.models": ["AutoencoderOutput", "LatentDistribution", "ViTok"],
    "vitok.models.dit": ["DiT"],
    "vitok.presets": ["DEFAULT_MODEL", "PRESETS", "TOWERS", "dit_config", "get_config", "list_presets"],
})

if TYPE_CHECKING:  # for type checkers; at run time each name is imported on first use
    from vitok.metrics.flops import compression_ratio, count_macs, latent_size
    from vitok.model_config import DiTConfig, TowerConfig, ViTokConfig
    from vitok.models import AutoencoderOutput, LatentDistribution, ViTok
    from vitok.models.dit import DiT
    from vitok.presets import DEFAULT_MODEL, PRESETS, TOWERS, dit_config, get_config, list_presets
