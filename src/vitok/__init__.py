"""vitok: the ViTok visual tokenizer (a ViT autoencoder for images and videos) in PyTorch.

>>> from vitok import ViTok
>>> model = ViTok.from_preset("N-N/8")
>>> z = model.encode(x)          # x: (B, 3, H, W) in [-1, 1] -> (B, c, H/8, W/8)
>>> x_hat = model.decode(z, size=x.shape[-2:])
"""

from vitok.metrics.flops import compression_ratio, count_macs, latent_size
from vitok.model_config import DiTConfig, TowerConfig, ViTokConfig
from vitok.models import AutoencoderOutput, LatentDistribution, ViTok
from vitok.models.dit import DiT
from vitok.presets import DEFAULT_MODEL, PRESETS, TOWERS, dit_config, get_config, list_presets

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL", "PRESETS", "TOWERS", "AutoencoderOutput", "DiT", "DiTConfig", "LatentDistribution",
    "TowerConfig", "ViTok", "ViTokConfig", "compression_ratio", "count_macs", "dit_config", "get_config",
    "latent_size", "list_presets",
]
