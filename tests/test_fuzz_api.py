"""A seeded fuzz test of the public model API: every call either returns the documented shape or
raises ValueError / TypeError from vitok itself (never another exception, never a silent wrong shape)."""

from __future__ import annotations

import random

import pytest
import torch

from vitok import ViTok

VALUES = [None, 0, -1, 1.5, "x", True, [], [1, 2], (0, 0), (8, 8), (1000, 5), (-8, 32), torch.zeros(0),
          torch.zeros(3), torch.zeros(1, 16, 4, 4), torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 2, 16, 16),
          torch.zeros(1, 16, 2, 4, 4, dtype=torch.int64), torch.full((1, 3, 8, 8), float("nan")),
          torch.zeros(1, 4, 32, 32), torch.zeros(2, 3, 9, 13)]


def call(model: ViTok, rng: random.Random) -> tuple[str, object]:
    name = rng.choice(["encode", "decode", "forward", "latent_shape", "set_latent_stats", "normalize_latent",
                       "denormalize_latent", "encode_posterior"])
    args = [rng.choice(VALUES) for _ in range(rng.randint(1, 2))]
    if name == "decode" and len(args) == 2:
        return name, model.decode(args[0], size=args[1])
    if name == "set_latent_stats":
        return name, model.set_latent_stats(args[0], args[-1])
    if name == "forward":
        return name, model(args[0])
    return name, getattr(model, name)(args[0])


@pytest.mark.parametrize("seed", range(3))
def test_random_api_calls_give_results_or_clear_errors(seed: int) -> None:
    rng = random.Random(seed)
    model = ViTok.from_preset("N-N/8").eval()
    model.disable_tiling()
    for _ in range(120):
        try:
            with torch.no_grad():
                name, out = call(model, rng)
        except (ValueError, TypeError) as err:
            tb = err.__traceback__
            while tb.tb_next:
                tb = tb.tb_next
            assert "/vitok/" in tb.tb_frame.f_code.co_filename, f"{err!r} raised outside vitok"
            continue
        if isinstance(out, torch.Tensor) and name in ("encode", "decode"):
            assert out.ndim in (4, 5) and out.numel() > 0
