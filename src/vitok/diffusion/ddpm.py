"""DDPM with noise prediction (Ho et al. 2020) and the deterministic DDIM sampler (Song et al. 2021).

Pure functions of tensors. ``model_fn(x_t, t)`` takes a batch of noisy latents and integer
timesteps (as float, in [0, T)) and returns the predicted noise, same shape as ``x_t``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

ModelFn = Callable[[Tensor, Tensor], Tensor]


def linear_betas(steps: int = 1000, start: float = 1e-4, end: float = 0.02) -> Tensor:
    """The DDPM / DiT linear noise schedule, (steps,) float64."""
    return torch.linspace(start, end, steps, dtype=torch.float64)


def alphas_cumprod(betas: Tensor) -> Tensor:
    """abar_t = prod_{s <= t} (1 - beta_s), (steps,) float64."""
    return torch.cumprod(1 - betas, dim=0)


def expand_like(values: Tensor, like: Tensor) -> Tensor:
    """Per-sample values (B,) as (B, 1, ..., 1) in ``like``'s dtype, to broadcast against ``like``."""
    return values.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


def q_sample(x0: Tensor, t: Tensor, noise: Tensor, abar: Tensor) -> Tensor:
    """Forward process: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, t: (B,) int64."""
    a = abar.to(x0.device)[t]
    return expand_like(a.sqrt(), x0) * x0 + expand_like((1 - a).sqrt(), x0) * noise


def ddpm_loss(model_fn: ModelFn, x0: Tensor, abar: Tensor, u: Tensor | None = None, noise: Tensor | None = None,
              generator: torch.Generator | None = None) -> Tensor:
    """Noise-prediction MSE at uniformly drawn timesteps (``u`` in [0, 1) picks them; ``u`` and
    ``noise`` are drawn from ``generator`` unless given)."""
    if u is None:
        u = torch.rand(x0.shape[0], generator=generator)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator)
    t = (u * len(abar)).long().clamp_max(len(abar) - 1).to(x0.device)
    noise = noise.to(x0)
    pred = model_fn(q_sample(x0, t, noise, abar), t.float())
    return (pred.float() - noise.float()).pow(2).mean()


@torch.no_grad()
def ddim_sample(model_fn: ModelFn, noise: Tensor, abar: Tensor, steps: int = 50, eta: float = 0.0,
                generator: torch.Generator | None = None) -> Tensor:
    """DDIM from pure noise x_T = ``noise`` down to x_0 in ``steps`` evenly spaced timesteps
    (``eta = 0``: deterministic; ``eta = 1``: DDPM-like ancestral noise)."""
    total = len(abar)
    times = torch.linspace(total - 1, 0, steps).round().long().tolist()
    x = noise
    for i, t in enumerate(times):
        a_t = abar[t].item()
        a_prev = abar[times[i + 1]].item() if i + 1 < len(times) else 1.0
        eps = model_fn(x, torch.full((x.shape[0],), float(t), device=x.device)).to(x.dtype)
        x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t**0.5
        sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5
        x = a_prev**0.5 * x0 + max(1 - a_prev - sigma**2, 0.0) ** 0.5 * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator).to(x)
    return x
