"""Losses: pixel reconstruction, KL, GAN, and the composite autoencoder loss (its LPIPS and SSIM terms
use the networks and functions of :mod:`vitok.metrics`: losses import metrics, never the other way)."""

from vitok.losses.autoencoder import AutoencoderLoss, LossConfig, discriminator_loss
from vitok.losses.gan import Discriminator, d_hinge_loss, g_loss, ramp
from vitok.losses.reconstruction import charbonnier, l1, lattice_loss, mse, reconstruction_loss

__all__ = [
    "AutoencoderLoss", "Discriminator", "LossConfig", "charbonnier", "d_hinge_loss", "discriminator_loss",
    "g_loss", "l1", "lattice_loss", "mse", "ramp", "reconstruction_loss",
]
