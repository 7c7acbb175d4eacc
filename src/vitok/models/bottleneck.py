"""The latent bottleneck: a diagonal Gaussian (KL) or a deterministic normalised latent.

Both produce a latent *distribution* object with the same interface (``sample``, ``mode``,
``kl``), so training code does not branch on the bottleneck type.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitok.model_config import BottleneckType


class LatentDistribution:
    """Diagonal Gaussian over latents; ``mean`` and ``logvar`` share any layout, e.g. (B, L, c).

    With ``logvar=None`` the distribution is a point mass (deterministic bottleneck): sampling
    returns the mean and the KL term is zero.
    """

    def __init__(self, mean: Tensor, logvar: Tensor | None = None) -> None:
        self.mean = mean
        self.logvar = logvar

    @classmethod
    def cat(cls, parts: list[LatentDistribution]) -> LatentDistribution:
        """The distributions of consecutive batch slices as one (concatenated along dim 0)."""
        if len(parts) == 1:
            return parts[0]
        logvar = None if parts[0].logvar is None else torch.cat([p.logvar for p in parts])
        return cls(torch.cat([p.mean for p in parts]), logvar)

    @property
    def std(self) -> Tensor:
        if self.logvar is None:
            return torch.zeros_like(self.mean)
        return torch.exp(0.5 * self.logvar)

    def mode(self) -> Tensor:
        """The most likely latent (the mean): what inference uses."""
        return self.mean

    def sample(self, generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
        """A reparameterised sample ``mean + std * eps`` (differentiable w.r.t. mean and logvar).

        ``noise`` supplies eps (same shape as the mean); otherwise it is drawn with ``generator``.
        ``TypeError`` / ``ValueError`` naming the argument for another ``noise`` or ``generator``.
        """
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if noise is not None and (not isinstance(noise, Tensor) or not noise.is_floating_point()):
            from vitok.checks import describe

            raise TypeError(f"noise must be a float tensor of the latent's shape {tuple(self.mean.shape)}, got "
                            f"{describe(noise)}")
        if self.logvar is None:
            return self.mean
        if noise is None:
            noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device,
                                dtype=self.mean.dtype)
        elif noise.shape != self.mean.shape:
            raise ValueError(f"noise must have the latent's shape {tuple(self.mean.shape)}, got {tuple(noise.shape)}")
        return self.mean + self.std * noise.to(self.mean)

    def kl(self) -> Tensor:
        """KL(q || N(0, I)) averaged over every latent element (a scalar, float32)."""
        if self.logvar is None:
            return self.mean.new_zeros((), dtype=torch.float32)
        mean, logvar = self.mean.float(), self.logvar.float()
        return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()

    def map(self, fn) -> LatentDistribution:
        """Apply a layout change (e.g. tokens -> grid) to the parameters."""
        return LatentDistribution(fn(self.mean), None if self.logvar is None else fn(self.logvar))


class Bottleneck(nn.Module):
    """Tokens (B, L, width) -> :class:`LatentDistribution` with (B, L, c) parameters.

    ``kl``: linear to 2c = (mean, log-variance clamped to [logvar_min, logvar_max]).
    ``deterministic``: linear to c followed by a parameter-free LayerNorm over the c channels.
    """

    def __init__(self, width: int, channels: int, kind: BottleneckType = "kl",
                 logvar_min: float = -30.0, logvar_max: float = 20.0) -> None:
        super().__init__()
        self.kind = kind
        self.channels = channels
        self.logvar_range = (logvar_min, logvar_max)
        self.proj = nn.Linear(width, 2 * channels if kind == "kl" else channels)

    def forward(self, x: Tensor) -> LatentDistribution:
        h = self.proj(x.to(self.proj.weight.dtype))  # float32 in bf16 inference (vitok.models.inference)
        if self.kind == "kl":
            mean, logvar = h.chunk(2, dim=-1)
            return LatentDistribution(mean, logvar.clamp(*self.logvar_range))
        return LatentDistribution(F.layer_norm(h, (self.channels,)))
