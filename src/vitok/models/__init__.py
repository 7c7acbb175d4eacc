"""Models: the ViTok autoencoder and its bottleneck."""

from vitok.models.bottleneck import Bottleneck, LatentDistribution
from vitok.models.vitok import AutoencoderOutput, ViTok

__all__ = ["AutoencoderOutput", "Bottleneck", "LatentDistribution", "ViTok"]
