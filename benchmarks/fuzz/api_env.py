"""What the API cases share: :class:`ApiEnv` (the scratch folder, the nano model, the fixtures) and
random tensors and argument values."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tests.test_fuzz_api import VALUES as TEST_API_VALUES

from fuzz.media import make_media, make_model_dir, make_shards

Case = tuple[str, Callable, Callable | None]  # an API case: (label, the call, the check of its result)
SMALL = [1, 2, 7, 8, 9, 16, 17, 24, 33]
FLOAT_DTYPES = [torch.float32, torch.float32, torch.float32, torch.float64, torch.float16, torch.bfloat16]


def random_tensor(rng: random.Random, ndim: int | None = None, channels: int | None = None,
                  allow_odd: bool = True) -> torch.Tensor:
    """A small random tensor: mostly float in [-1, 1]; sometimes odd dtypes, NaN/inf, huge values,
    empty dims, non-contiguous memory."""
    ndim = ndim if ndim is not None else rng.choice([0, 1, 2, 3, 4, 4, 4, 5, 5, 6])
    shape = [rng.choice(SMALL) for _ in range(ndim)]
    if ndim >= 1:
        shape[0] = rng.choice([1, 1, 2, 3]) if not (allow_odd and rng.random() < 0.05) else 0
    if ndim >= 2 and channels is not None:
        shape[1] = channels
    if ndim == 5:
        shape[2] = rng.choice([1, 2, 3, 4])
    dtype = rng.choice(FLOAT_DTYPES)
    if allow_odd and rng.random() < 0.08:
        dtype = rng.choice([torch.int64, torch.uint8, torch.bool, torch.complex64])
    x = torch.rand(shape) * 2 - 1
    if allow_odd and x.numel() and rng.random() < 0.08:
        x.view(-1)[rng.randrange(x.numel())] = rng.choice([math.nan, math.inf, -math.inf, 1e30])
    if allow_odd and x.ndim >= 2 and rng.random() < 0.1:
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)  # non-contiguous view
    if dtype is torch.complex64:
        return x.to(dtype)
    return x.to(dtype) if dtype.is_floating_point else (x * 100).to(dtype)


def api_value(rng: random.Random) -> Any:
    """An argument: a value of the fuzz test's pool or a random tensor."""
    return rng.choice(TEST_API_VALUES) if rng.random() < 0.4 else random_tensor(rng)


@dataclasses.dataclass
class ApiEnv:
    root: Path
    model: Any
    media: dict[str, dict[str, Any]]
    shards: dict[str, Path]
    model_dir: Path
    saved_state: dict[str, torch.Tensor]
    counter: int = 0

    def scratch(self) -> Path:
        self.counter += 1
        return self.root / "scratch" / f"{self.counter}"



def expected_latent(model: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    q, p, c = model.config.tubelet_size, model.config.patch_size, model.config.latent_channels
    if len(shape) == 4:
        return (shape[0], c, -(-shape[2] // p), -(-shape[3] // p))
    return (shape[0], c, -(-shape[2] // q), -(-shape[3] // p), -(-shape[4] // p))



def media_names(env: ApiEnv, kind: str) -> list[str]:
    videos = [n for n in env.media if n.endswith((".mp4", ".webm", ".mkv", ".gif"))]
    return videos if kind == "video" else [n for n in env.media if n not in videos or n.endswith(".gif")]



def make_api_env(root: Path) -> ApiEnv:
    from safetensors.torch import load_file

    from vitok import ViTok
    from vitok.metrics import FeatureStats

    media = make_media(root)
    shards = make_shards(root, media)
    (root / "empty-dir").mkdir()
    model_dir = make_model_dir(root)
    stats = FeatureStats()
    stats.update(torch.randn(10, 4))
    stats.save(root / "stats.npz")
    np.savez(root / "bad_stats.npz", mu=np.zeros(3))
    np.savez(root / "pickled.npz", mu=np.array([{"a": 1}], dtype=object), sigma=np.eye(1), count=3)
    torch.manual_seed(0)
    model = ViTok.from_preset("N-N/8").eval()
    model.disable_tiling()
    return ApiEnv(root, model, media, shards, model_dir, load_file(str(model_dir / "model.safetensors")))

