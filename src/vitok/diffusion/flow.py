"""Rectified flow (velocity prediction) and its Euler / Heun samplers.

x_t = (1 - t) x0 + t noise for t in [0, 1]; the model predicts v = noise - x0. Sampling integrates
dx/dt = v from t = 1 (noise) to t = 0 (data). ``model_fn(x_t, t)`` receives t in [0, 1] as
(B,) floats.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vitok.diffusion.ddpm import ModelFn, expand_like

TIME_SCALE = 1000.0
"""Flow time t in [0, 1] times this is the DiT's timestep input: the range of DDPM's 1000 steps,
which the sinusoidal embedding was made for (DiT, Peebles & Xie 2023)."""


def flow_interpolate(x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """x_t = (1 - t) x0 + t noise, t: (B,) in [0, 1]."""
    t = expand_like(t, x0)
    return (1 - t) * x0 + t * noise


def flow_loss(model_fn: ModelFn, x0: Tensor, u: Tensor | None = None, noise: Tensor | None = None,
              generator: torch.Generator | None = None) -> Tensor:
    """Velocity MSE at t = u ~ U(0, 1) (``u`` and ``noise`` drawn from ``generator`` unless given)."""
    t = (u if u is not None else torch.rand(x0.shape[0], generator=generator)).to(x0.device)
    noise = (noise if noise is not None else torch.randn(x0.shape, generator=generator)).to(x0)
    pred = model_fn(flow_interpolate(x0, noise, t), t)
    return (pred.float() - (noise - x0).float()).pow(2).mean()


def _times(steps: int, device: torch.device) -> Tensor:
    return torch.linspace(1.0, 0.0, steps + 1, device=device)


@torch.no_grad()
def euler_sample(model_fn: ModelFn, noise: Tensor, steps: int = 50) -> Tensor:
    """First-order integration from t = 1 to 0."""
    x, times = noise, _times(steps, noise.device)
    for t, t_next in zip(times[:-1], times[1:]):
        v = model_fn(x, t.expand(x.shape[0])).to(x.dtype)
        x = x + (t_next - t) * v
    return x


@torch.no_grad()
def heun_sample(model_fn: ModelFn, noise: Tensor, steps: int = 25) -> Tensor:
    """Second-order (Heun) integration from t = 1 to 0; the last step is Euler."""
    x, times = noise, _times(steps, noise.device)
    for t, t_next in zip(times[:-1], times[1:]):
        v = model_fn(x, t.expand(x.shape[0])).to(x.dtype)
        x_euler = x + (t_next - t) * v
        if t_next > 0:
            v_next = model_fn(x_euler, t_next.expand(x.shape[0])).to(x.dtype)
            x = x + (t_next - t) * 0.5 * (v + v_next)
        else:
            x = x_euler
    return x
