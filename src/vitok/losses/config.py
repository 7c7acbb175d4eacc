"""The ``loss`` section of a training config: the loss weights and the GAN schedule.

Torch-free, like every config section, so that a config is read and checked before torch is
imported; :mod:`vitok.losses.autoencoder` computes the loss it describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from vitok.checks import Rule

ReconstructionLoss = Literal["mse", "l1", "charbonnier"]
Perceptual = Literal["lpips-vgg", "lpips-alex", "none"]


@dataclass
class LossConfig:
    """Loss weights and GAN schedule; defaults are the paper's stage-1 recipe."""

    reconstruction: ReconstructionLoss = "mse"
    reconstruction_weight: float = 1.0
    kl_weight: float = 1e-3
    perceptual: Perceptual = "lpips-vgg"
    perceptual_weight: float = 1.0
    perceptual_start: int = 0  # steps before the perceptual term starts
    perceptual_ramp: int = 0  # steps over which it ramps to perceptual_weight
    perceptual_every: int = 1  # compute it on every k-th step only (k x cheaper on average)
    perceptual_crop: float = 1.0  # side of a random window (fraction of H, W) it sees
    perceptual_shift: int = 0  # the window also moves by a random offset in [0, shift] pixels
    ssim_weight: float = 0.0
    lattice_weight: float = 0.0  # the patch-lattice penalty (lattice_loss); 0 = off
    lattice_period: int = 0  # its period in pixels; 0 = the model's (patch size, a VAE's downsampling)
    gan_weight: float = 0.0  # 0.05 in stage 2
    gan_start: int = 0  # steps before the generator's GAN term starts
    gan_ramp: int = 0  # steps over which it ramps to gan_weight
    disc_lr: float = 2e-5
    disc_warmup: int = 0  # linear warm-up of the discriminator LR
    disc_channels: int = 64

    ranges: ClassVar[dict[str, Rule]] = {
        **{name: (lambda v: v >= 0, ">= 0") for name in (
            "reconstruction_weight", "kl_weight", "perceptual_weight", "perceptual_start", "perceptual_ramp",
            "perceptual_shift", "ssim_weight", "lattice_weight", "gan_weight", "gan_start", "gan_ramp",
            "disc_warmup")},
        "lattice_period": (lambda v: v == 0 or v >= 2, "0 (the model's) or >= 2 pixels"),
        "perceptual_every": (lambda v: v >= 1, ">= 1"),
        "perceptual_crop": (lambda v: 0 < v <= 1, "in (0, 1]"),
        "disc_lr": (lambda v: v > 0, "> 0"),
        "disc_channels": (lambda v: 1 <= v <= 4096, "in [1, 4096]"),
    }

    def __post_init__(self) -> None:
        if not 0 < self.perceptual_crop <= 1:
            raise ValueError(f"loss.perceptual_crop must be in (0, 1], got {self.perceptual_crop}")
        if self.perceptual_every < 1 or self.perceptual_shift < 0:
            raise ValueError("loss.perceptual_every must be >= 1 and loss.perceptual_shift >= 0, got "
                             f"{self.perceptual_every} and {self.perceptual_shift}")

    @property
    def uses_gan(self) -> bool:
        return self.gan_weight > 0

    def perceptual_scale(self, step: int) -> float:
        """The perceptual term's weight at ``step`` (0 on the steps it is skipped)."""
        if step % self.perceptual_every:
            return 0.0
        from vitok.losses.gan import ramp

        return self.perceptual_weight * ramp(step, self.perceptual_start, self.perceptual_ramp)
