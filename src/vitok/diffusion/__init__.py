"""Diffusion objectives and samplers as pure functions: DDPM/DDIM, rectified flow, guidance."""

from vitok.diffusion.ddpm import alphas_cumprod, ddim_sample, ddpm_loss, linear_betas, q_sample
from vitok.diffusion.flow import TIME_SCALE, euler_sample, flow_interpolate, flow_loss, heun_sample
from vitok.diffusion.guidance import guided

__all__ = [
    "TIME_SCALE", "alphas_cumprod", "ddim_sample", "ddpm_loss", "euler_sample", "flow_interpolate", "flow_loss",
    "guided", "heun_sample", "linear_betas", "q_sample",
]
