"""API cases of a nano ``ViTok``: encode / decode / forward / encode_posterior / latent_shape / latent
statistics / tiling / slicing, and ``from_preset`` / ``get_config``."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from typing import Any

import torch
from tests.test_fuzz_api import call as test_api_call

from fuzz.api_env import ApiEnv, Case, api_value, expected_latent, random_tensor
from fuzz.judge import IN_RANGE, Silent, expect, finite, short

MODEL_CALLS = ["encode", "encode", "decode", "decode", "forward", "encode_posterior", "latent_shape",
               "set_latent_stats", "normalize_latent", "denormalize_latent", "tiling", "slicing", "test_call"]


def pixels_ok(x: Any, channels: int = 3) -> bool:
    return (isinstance(x, torch.Tensor) and x.ndim in (4, 5) and x.shape[1] == channels and x.is_floating_point()
            and x.numel() > 0)


def latent_ok(z: Any, channels: int) -> bool:
    return (isinstance(z, torch.Tensor) and z.ndim in (4, 5) and z.shape[1] == channels and z.is_floating_point()
            and z.numel() > 0)


def case_model(rng: random.Random, env: ApiEnv) -> Case:
    """encode / decode / forward / encode_posterior / latent_shape / latent statistics / tiling."""
    name = rng.choice(MODEL_CALLS)
    return MODEL_CASES[name](rng, env.model, name)


def model_test_call(rng: random.Random, model: Any, name: str) -> Case:
    """The fuzz test's own call generator."""
    inner = random.Random(rng.random())
    return "tests.test_fuzz_api.call", lambda: test_api_call(model, inner), None


def model_encode(rng: random.Random, model: Any, name: str) -> Case:
    """``encode``, ``forward`` or ``encode_posterior`` of a random input with random options."""
    x = random_tensor(rng, rng.choice([4, 4, 5]), 3) if rng.random() < 0.8 else api_value(rng)
    kwargs: dict[str, Any] = {}
    for key, pool in (("sample", [True, False, None, 1, "yes"]), ("tiled", [None, True, False, "x", 1]),
                      ("normalize", [True, False])):
        if rng.random() < 0.3 and (name == "encode" or key == "tiled" or (name == "forward" and key == "sample")):
            kwargs[key] = rng.choice(pool)
    if name == "forward" and rng.random() < 0.15 and pixels_ok(x):
        shape = expected_latent(model, tuple(x.shape))
        kwargs["noise"] = rng.choice([torch.randn(shape), torch.randn(1), "noise", torch.randn(shape[:-1])])

    def check(out: Any) -> None:
        if not pixels_ok(x):
            raise Silent(f"{name} accepted an invalid input: {short(x)} -> {short(out)}")
        fin = finite(x, IN_RANGE) and finite(model.latent_std) and finite(model.latent_mean)
        if name == "forward":
            expect(tuple(out.recon.shape) == tuple(x.shape), "forward: recon shape differs from the input",
                   f"{tuple(x.shape)} -> {tuple(out.recon.shape)}")
            expect(tuple(out.latent.shape) == expected_latent(model, tuple(x.shape)), "forward: latent shape")
            expect(not fin or (finite(out.recon) or x.dtype == torch.float16), "forward: NaN from finite input")
            return
        z = out.mode() if name == "encode_posterior" else out
        expect(tuple(z.shape) == expected_latent(model, tuple(x.shape)), f"{name}: wrong latent shape",
               f"{tuple(x.shape)} -> {tuple(z.shape)}")
        expect(not fin or finite(z) or x.dtype == torch.float16, f"{name}: NaN from finite input")
    return f"model.{name}({short(x)}, {short(kwargs)})", lambda: model(x, **kwargs) if name == "forward" else \
        getattr(model, name)(x, **kwargs), check


def model_decode(rng: random.Random, model: Any, name: str) -> Case:
    """``decode`` of a random latent to a random ``size``."""
    c = model.config.latent_channels
    z = random_tensor(rng, rng.choice([4, 4, 5]), c) if rng.random() < 0.8 else api_value(rng)
    kwargs = {}
    if rng.random() < 0.6:
        full = None
        if latent_ok(z, c):
            p, q = model.config.patch_size, model.config.tubelet_size
            full = ((z.shape[2] * q,) if z.ndim == 5 else ()) + (z.shape[-2] * p, z.shape[-1] * p)
        options = [None, (0, 0), (-8, 32), 5, "x", [8, 8], (8, 8, 8), (True, 8), (8.0, 8.0)]
        if full:
            options += [full, tuple(max(1, f - rng.randrange(8)) for f in full),
                        tuple(f + rng.choice([1, 8]) for f in full), tuple(f * 100 for f in full)]
        kwargs["size"] = rng.choice(options)
    if rng.random() < 0.2:
        kwargs["denormalize"] = rng.choice([True, False])
    if rng.random() < 0.2:
        kwargs["tiled"] = rng.choice([None, True, False])

    def check(out: Any) -> None:
        if not latent_ok(z, c):
            raise Silent(f"decode accepted an invalid latent: {short(z)} -> {short(out)}")
        p, q = model.config.patch_size, model.config.tubelet_size
        full = ((z.shape[2] * q,) if z.ndim == 5 else ()) + (z.shape[-2] * p, z.shape[-1] * p)
        size = kwargs.get("size")
        want = full if size is None else tuple(size)
        expect(tuple(out.shape) == (z.shape[0], 3, *want), "decode: output shape is not the size asked for",
               f"size={size!r}, latent {tuple(z.shape)} -> {tuple(out.shape)}")
        expect(not finite(z, IN_RANGE) or finite(out) or z.dtype == torch.float16,
               "decode: NaN from a finite latent")
    return f"model.decode({short(z)}, {short(kwargs)})", lambda: model.decode(z, **kwargs), check


def model_latent_shape(rng: random.Random, model: Any, name: str) -> Case:
    """``latent_shape`` of a valid or odd shape."""
    shape = rng.choice([tuple(random_tensor(rng, rng.choice([4, 5]), 3, allow_odd=False).shape), (1, 3, 0, 8),
                        (1, 3, -8, 8), (1, 3, 8.5, 8), [2, 3, 16, 16], (1, 3, 8), "1,3,8,8", None,
                        torch.Size([1, 3, 9, 9]), (True, 3, 8, 8), (1, 4, 8, 8)])

    def check(out: Any) -> None:
        ok = isinstance(shape, (tuple, list, torch.Size)) and len(shape) in (4, 5) and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
        if not ok:
            raise Silent(f"latent_shape accepted {shape!r} -> {out!r}")
        expect(tuple(out) == expected_latent(model, tuple(shape)), "latent_shape: wrong shape", f"{shape} -> {out}")
    return f"model.latent_shape({shape!r})", lambda: model.latent_shape(shape), check


def model_latent_stats(rng: random.Random, model: Any, name: str) -> Case:
    """``set_latent_stats`` with valid or odd statistics, then a normalize / denormalize round trip."""
    c = model.config.latent_channels

    def stat(positive: bool) -> Any:
        roll = rng.random()
        if roll < 0.6:
            v = torch.rand(c) + (0.5 if positive else -0.5)
            if rng.random() < 0.2:
                v[rng.randrange(c)] = rng.choice([math.nan, math.inf, 0.0, -1.0])
            return v.to(rng.choice([torch.float32, torch.float64, torch.float16]))
        return rng.choice([torch.ones(c + 1), torch.ones(1, c), [1.0] * c, None, 1.0,
                           torch.ones(c, dtype=torch.int64), torch.ones(c, dtype=torch.bool), torch.zeros(0)])
    mean, std = stat(False), stat(True)

    def check(_: Any) -> None:
        valid = all(isinstance(t, torch.Tensor) and t.shape == (c,) and not t.is_complex() for t in (mean, std))
        valid = valid and finite(mean) and finite(std) and bool((std > 0).all())
        if not valid:
            raise Silent(f"set_latent_stats accepted mean={short(mean)} std={short(std)}")
        z = torch.randn(1, c, 2, 2)
        back = model.denormalize_latent(model.normalize_latent(z))
        expect(torch.allclose(back, z, atol=1e-2, rtol=1e-2), "latent stats: denormalize(normalize(z)) != z")
        expect(finite(model.normalize_latent(z)), "latent stats: normalize gives NaN")
    return f"model.set_latent_stats({short(mean)}, {short(std)})", lambda: model.set_latent_stats(mean, std), check


def model_normalize(rng: random.Random, model: Any, name: str) -> Case:
    """``normalize_latent`` or ``denormalize_latent`` of a random latent."""
    c = model.config.latent_channels
    z = random_tensor(rng, rng.choice([4, 5]), c) if rng.random() < 0.7 else api_value(rng)

    def check(out: Any) -> None:
        if not latent_ok(z, c):
            raise Silent(f"{name} accepted {short(z)} -> {short(out)}")
        expect(out.shape == z.shape, f"{name}: shape changed")
        expect(not finite(z, IN_RANGE) or finite(out) or z.dtype == torch.float16,
               f"{name}: NaN from a finite latent")
    return f"model.{name}({short(z)})", lambda: getattr(model, name)(z), check


def model_tiling(rng: random.Random, model: Any, name: str) -> Case:
    """``enable_tiling`` with random options, then a tiled encode and decode."""
    kwargs = {}
    for key, pool in (("tile", [None, 16, 24, (16, 32), 0, -8, (8,), "16", 1.5, (1, 1)]),
                      ("overlap", [0.0, 0.25, 0.5, 0.99, 1.0, -0.1, math.nan, "x"]),
                      ("frames", [None, 1, 2, 0, -1]), ("frame_overlap", [0.0, 0.5, 1.0, math.inf]),
                      ("threshold", [0.0, 0.5, 1.0, 4.0, -1.0, math.nan])):
        if rng.random() < 0.5:
            kwargs[key] = rng.choice(pool)
    x = torch.rand(1, 3, rng.choice([24, 40]), rng.choice([24, 48])) * 2 - 1

    def run() -> Any:
        model.enable_tiling(**kwargs)
        try:
            return x, model.encode(x, tiled=True), model.decode(model.encode(x), size=tuple(x.shape[-2:]),
                                                                 tiled=True)
        finally:
            model.disable_tiling()

    def check(out: Any) -> None:
        x, z, recon = out
        expect(tuple(z.shape) == expected_latent(model, tuple(x.shape)), "tiled encode: wrong latent shape",
               f"{kwargs}: {tuple(z.shape)}")
        expect(recon.shape == x.shape and finite(recon) and finite(z), "tiled decode: wrong shape or NaN",
               f"{kwargs}")
    return f"model.enable_tiling({short(kwargs)}) + tiled encode/decode", run, check


def model_slicing(rng: random.Random, model: Any, name: str) -> Case:
    """``enable_slicing`` with a valid or odd batch slice, then an encode."""
    batch_slice = rng.choice([1, 2, 0, -1, None, 1.5, "2", True])  # None: no slicing (valid)
    x = torch.rand(3, 3, 16, 16) * 2 - 1

    def run_slicing() -> Any:
        model.enable_slicing(batch_slice)
        try:
            return model.encode(x)
        finally:
            model.disable_slicing()

    def check_slicing(z: Any) -> None:
        if batch_slice is not None and not (isinstance(batch_slice, int) and not isinstance(batch_slice, bool)
                                            and batch_slice >= 1):
            raise Silent(f"enable_slicing accepted {batch_slice!r}")
        expect(tuple(z.shape) == expected_latent(model, tuple(x.shape)), "sliced encode: wrong shape")
    return f"model.enable_slicing({batch_slice!r}) + encode", run_slicing, check_slicing


MODEL_CASES: dict[str, Callable[[random.Random, Any, str], Case]] = {
    "encode": model_encode, "forward": model_encode, "encode_posterior": model_encode, "decode": model_decode,
    "latent_shape": model_latent_shape, "set_latent_stats": model_latent_stats, "normalize_latent": model_normalize,
    "denormalize_latent": model_normalize, "tiling": model_tiling, "slicing": model_slicing,
    "test_call": model_test_call,
}


OVERRIDE_KEYS = ["latent_channels", "patch_size", "tubelet_size", "image_size", "num_frames", "qk_norm", "norm",
                 "bottleneck", "head", "head_channels", "head_blocks", "mlp_ratio", "rope_theta", "logvar_min",
                 "logvar_max", "decoder_fine_depth", "decoder_fine_width", "latent_mean", "latent_std", "encoder",
                 "decoder", "in_channels", "name", "bogus", "width"]
OVERRIDE_VALUES = [0, -1, 1, 2, 3, 4, 8, 1.5, math.nan, "x", None, True, [], [16, 16], (8, 0), {"width": 64},
                   {"width": 64, "depth": 1, "heads": 2}, {"width": 0, "depth": 1, "heads": 1}, "conv", "kl", "rms",
                   [1.0] * 16, [0.0] * 16, (16, 16)]
SMALL_TOWERS = ("N", "Ti")


def case_preset(rng: random.Random, env: ApiEnv) -> Case:
    from vitok import ViTok, get_config
    from vitok.model_config import ViTokConfig

    name = rng.choice(["N-N/8", "N-N/8", "N-N/2x8", "N-N/16", "Ti-N/4", "N-N/1", "N-N/0", "N-N/0x8", "N-N/08",
                       "n-n/8", "N-N/8 ", "N-X/8", "N/8", "", None, 8, ["N-N/8"], "S-B/16", "S-B/4x8", "vitok-tiny",
                       "N-N/1000"])
    overrides = {k: rng.choice(OVERRIDE_VALUES) for k in rng.sample(OVERRIDE_KEYS, rng.choice([0, 0, 1, 1, 2]))}
    small = isinstance(name, str) and name.split("-")[0] in SMALL_TOWERS and not name.endswith("/1")
    build = small and rng.random() < 0.5 and "encoder" not in overrides

    def run() -> Any:
        return ViTok.from_preset(name, **overrides) if build else get_config(name, **overrides)

    def check(out: Any) -> None:
        config = out.config if build else out
        expect(isinstance(config, ViTokConfig), "preset: not a ViTokConfig", type(config))
        for key, value in overrides.items():
            got = getattr(config, key)
            want = tuple(value) if isinstance(value, list) else value
            if key in ("encoder", "decoder"):
                want = dataclasses.replace(got, **value) if isinstance(value, dict) else value
            if isinstance(want, (int, float)) and not isinstance(want, bool):
                same = isinstance(got, (int, float)) and float(got) == float(want)
            else:
                same = got == want
            expect(same, "preset: an override was not applied", f"{key}={value!r} -> {got!r}")
        if build:
            x = torch.rand(1, config.in_channels, *((config.num_frames,) if config.tubelet_size > 1 else ()), 16, 16)
            z = out.encode(x * 2 - 1)
            expect(tuple(z.shape) == expected_latent(out, tuple(x.shape)), "preset: built model's latent shape")
            expect(finite(z), "preset: built model gives NaN")
    return f"{'from_preset' if build else 'get_config'}({name!r}, **{short(overrides)})", run, check

