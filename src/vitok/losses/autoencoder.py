"""The composite autoencoder loss: L = w_rec L_rec + beta KL + eta LPIPS + w_ssim (1 - SSIM)
+ w_lattice L_lattice + lambda GAN.

Video batches (B, 3, T, H, W) are flattened to frames for LPIPS, SSIM and the discriminator.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vitok.losses.config import LossConfig
from vitok.losses.config import Perceptual as Perceptual  # their home is losses/config.py
from vitok.losses.config import ReconstructionLoss as ReconstructionLoss
from vitok.losses.gan import Discriminator, d_hinge_loss, g_loss, ramp
from vitok.losses.reconstruction import lattice_loss, reconstruction_loss
from vitok.metrics.ssim import ssim
from vitok.models.bottleneck import LatentDistribution
from vitok.nn.patch import to_frames

MIN_WINDOW = 32  # smallest side of the perceptual loss's window (LPIPS nets need about 32 px)


def perceptual_window(size: tuple[int, int], crop: float, shift: int, step: int,
                      seed: int = 0) -> tuple[slice, slice]:
    """The random (rows, columns) window the perceptual loss sees at ``step``.

    Its side is ``round(crop * side)``, at most ``side - shift``, at least 32 pixels (AlexNet's
    and VGG's smallest input) unless the image is smaller; its top-left corner is uniform
    over the valid positions, drawn from a generator seeded by (seed, step), so a resumed run
    sees the same windows. A window that moves by sub-patch offsets keeps the perceptual network
    (whose pooling has a fixed 2/4/8/16-pixel lattice) from rewarding the patch lattice.
    """
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    slices = []
    for side in size:
        length = max(min(side, MIN_WINDOW), min(round(crop * side), side - shift))
        start = int(torch.randint(0, side - length + 1, (1,), generator=gen))
        slices.append(slice(start, start + length))
    return slices[0], slices[1]


class AutoencoderLoss(nn.Module):
    """Computes the generator-side loss terms and the discriminator loss."""

    def __init__(self, config: LossConfig, cache: str | None = None) -> None:
        super().__init__()
        if config.lattice_weight > 0 and config.lattice_period < 2:
            raise ValueError("loss.lattice_period is 0 (the model's): resolve it with the model first "
                             "(vitok.train.trainer.with_model_period), or set it >= 2")
        self.config = config
        self.lpips = None
        if config.perceptual != "none" and config.perceptual_weight > 0:
            from vitok.metrics.lpips import LPIPS

            self.lpips = LPIPS(config.perceptual.removeprefix("lpips-"), cache=cache)

    def forward(self, x: Tensor, recon: Tensor, posterior: LatentDistribution, step: int,
                discriminator: nn.Module | None = None) -> tuple[Tensor, dict[str, float]]:
        """Generator loss for pixels x and reconstruction recon (same layout, [-1, 1]).

        Returns the scalar loss and a dict of its (unweighted) terms for logging.
        """
        cfg = self.config
        terms = {"rec": reconstruction_loss(cfg.reconstruction, recon, x), "kl": posterior.kl()}
        total = cfg.reconstruction_weight * terms["rec"] + cfg.kl_weight * terms["kl"]
        frames_x, frames_r = to_frames(x), to_frames(recon)
        scale = cfg.perceptual_scale(step)
        if self.lpips is not None and scale > 0:
            rows, cols = perceptual_window(tuple(frames_x.shape[-2:]), cfg.perceptual_crop,
                                           cfg.perceptual_shift, step)
            terms["lpips"] = self.lpips(frames_r[..., rows, cols], frames_x[..., rows, cols]).mean()
            total = total + scale * terms["lpips"]
        if cfg.ssim_weight > 0:
            terms["ssim"] = ssim(frames_r, frames_x).mean()
            total = total + cfg.ssim_weight * (1 - terms["ssim"])
        if cfg.lattice_weight > 0:
            terms["lattice"] = lattice_loss(frames_r, frames_x, cfg.lattice_period)
            total = total + cfg.lattice_weight * terms["lattice"]
        weight = cfg.gan_weight * ramp(step, cfg.gan_start, cfg.gan_ramp)
        if discriminator is not None and weight > 0:
            terms["g_adv"] = g_loss(discriminator(frames_r))
            total = total + weight * terms["g_adv"]
        return total, {k: float(v.detach()) for k, v in terms.items()}


def discriminator_loss(discriminator: nn.Module, x: Tensor, recon: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Hinge loss of D on real frames x and detached reconstructions."""
    real = discriminator(to_frames(x))
    fake = discriminator(to_frames(recon.detach()))
    loss = d_hinge_loss(real, fake)
    return loss, {"d_loss": float(loss.detach()), "d_real": float(real.detach().mean()),
                  "d_fake": float(fake.detach().mean())}


__all__ = ["AutoencoderLoss", "Discriminator", "LossConfig", "discriminator_loss"]
