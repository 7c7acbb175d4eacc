"""Models: the ViTok autoencoder and its bottleneck."""
from typing import TYPE_CHECKING

from vitok.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "vitok.models.bottleneck": ["Bottleneck", "LatentDistribution"],
    "vitok.models.vitok": ["AutoencoderOutput", "ViTok"],
})

if TYPE_CHECKING:  # for type checkers; at run time each name is imported on first use
    from vitok.models.bottleneck import Bottleneck, LatentDistribution
    from vitok.models.vitok import AutoencoderOutput, ViTok
