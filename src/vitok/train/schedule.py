"""Learning-rate schedules as pure functions of the step."""

from __future__ import annotations

import math


def warmup_steps(warmup: float, total: int) -> int:
    """``warmup`` as a fraction of ``total`` steps (< 1) or a step count (>= 1)."""
    return int(warmup) if warmup >= 1 else round(warmup * total)


def cosine_lr(step: int, peak: float, total: int, warmup: int, min_lr: float) -> float:
    """Linear warm-up from 0 to ``peak`` over ``warmup`` steps, then cosine down to ``min_lr``
    at ``total`` (``min_lr`` is capped at ``peak``)."""
    min_lr = min(min_lr, peak)
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (peak - min_lr) * (1 + math.cos(math.pi * progress))


def linear_warmup(step: int, peak: float, warmup: int) -> float:
    """Constant ``peak`` after a linear warm-up (the discriminator's schedule)."""
    return peak if step >= warmup else peak * (step + 1) / warmup
