"""Exponential moving average of a set of parameters."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EMA:
    """shadow = decay * shadow + (1 - decay) * param, for the named parameters given (fp32)."""

    def __init__(self, named_params: dict[str, nn.Parameter], decay: float) -> None:
        self.decay = decay
        self.params = named_params
        self.shadow = {k: p.detach().float().clone() for k, p in named_params.items()}

    @torch.no_grad()
    def update(self) -> None:
        for k, p in self.params.items():
            self.shadow[k].lerp_(p.detach().float(), 1 - self.decay)

    def rebind(self, named_params: dict[str, nn.Parameter]) -> None:
        """Follow parameters that were replaced (FSDP shards them); the shadow is sharded alike."""
        from vitok.train.distributed import gather, shard_like

        self.shadow = {k: shard_like(gather(self.shadow[k]), p).float() for k, p in named_params.items()}
        self.params = named_params

    def state_dict(self) -> dict[str, Tensor]:
        """Full CPU copies of the averages (a collective when they are sharded)."""
        from vitok.train.distributed import gather

        return {k: gather(v) for k, v in self.shadow.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise ValueError(f"EMA state lacks {sorted(missing)[:5]}")
        for k in self.shadow:
            self.shadow[k].copy_(state[k])

    def copy_to(self, model: nn.Module, averages: dict[str, Tensor] | None = None) -> nn.Module:
        """Write the averaged weights into ``model`` (same parameter names) and return it.
        ``averages``: a :meth:`state_dict` gathered earlier (on every rank, when sharded)."""
        return load_averages(model, self.state_dict() if averages is None else averages)


@torch.no_grad()
def load_averages(model: nn.Module, averages: dict[str, Tensor]) -> nn.Module:
    """Write EMA averages ({parameter name: tensor}, e.g. a checkpoint's ``"ema"``) into ``model``'s
    parameters of those names; returns ``model``."""
    named = dict(model.named_parameters())
    for name, average in averages.items():
        named[name].copy_(average)
    return model
