"""Classifier-free guidance (Ho & Salimans 2022) as a wrapper around a class-conditional model."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from vitok.diffusion.ddpm import ModelFn


def guided(model: Callable[[Tensor, Tensor, Tensor], Tensor], labels: Tensor, null_label: int, scale: float,
           interval: tuple[float, float] | None = None, time_max: float = 1.0) -> ModelFn:
    """A ``model_fn(x, t)`` giving ``uncond + scale * (cond - uncond)``.

    ``model(x, t, y)`` is the conditional network and ``null_label`` its "no class" label.
    ``interval`` (fractions of ``time_max``) limits guidance to those times; elsewhere, and when
    ``scale == 1``, the conditional prediction is returned as is.
    """

    def fn(x: Tensor, t: Tensor) -> Tensor:
        inside = interval is None or (interval[0] * time_max <= float(t[0]) <= interval[1] * time_max)
        if scale == 1.0 or not inside:
            return model(x, t, labels)
        null = torch.full_like(labels, null_label)
        out = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]))
        cond, uncond = out.chunk(2)
        return uncond + scale * (cond - uncond)

    return fn
