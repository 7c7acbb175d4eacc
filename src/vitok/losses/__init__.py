"""Losses: pixel reconstruction, KL, GAN, and the composite autoencoder loss (its LPIPS and SSIM terms
use the networks and functions of :mod:`vitok.metrics`: losses import metrics, never the other way)."""
from typing import TYPE_CHECKING

from vitok.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "vitok.losses.autoencoder": ["AutoencoderLoss", "discriminator_loss"],
    "vitok.losses.config": ["LossConfig"],
    "vitok.losses.gan": ["Discriminator", "d_hinge_loss", "g_loss", "ramp"],
    "vitok.losses.reconstruction": ["charbonnier", "l1", "lattice_loss", "mse", "reconstruction_loss"],
})

if TYPE_CHECKING:  # for type checkers; at run time each name is imported on first use
    from vitok.losses.autoencoder import AutoencoderLoss, discriminator_loss
    from vitok.losses.config import LossConfig
    from vitok.losses.gan import Discriminator, d_hinge_loss, g_loss, ramp
    from vitok.losses.reconstruction import charbonnier, l1, lattice_loss, mse, reconstruction_loss
