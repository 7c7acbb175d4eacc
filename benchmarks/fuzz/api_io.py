"""API cases of :mod:`vitok.io`: reading odd images and videos, resizing, writing and reading back."""

from __future__ import annotations

import io as pyio
import math
import random
from collections.abc import Callable
from typing import Any

import torch

from fuzz.api_env import ApiEnv, Case, api_value, media_names, random_tensor
from fuzz.judge import expect, finite, short

IO_CALLS = ["load_image", "load_image", "load_image_bytes", "load_video", "load_video", "video_info",
            "resize_center_crop", "save_image", "save_video"]


def case_io(rng: random.Random, env: ApiEnv) -> Case:
    name = rng.choice(IO_CALLS)
    return IO_CASES[name](rng, env, name)


def io_load_image(rng: random.Random, env: ApiEnv, name: str) -> Case:
    """``load_image`` of an odd file (or its bytes) with a random ``min_side``."""
    from vitok import io

    key = rng.choice([*media_names(env, "image"), "rgb.png", "gray16.png", "exif6.jpg"])
    facts = env.media[key]
    min_side = rng.choice([None, None, 1, 8, 64, 0, -1, 2.5, "8"])
    source: Any = facts["path"]
    if name == "load_image_bytes" and facts["path"].is_file():
        source = pyio.BytesIO(facts["path"].read_bytes())
    if rng.random() < 0.05:
        source = rng.choice([None, 5, b"raw", str(env.root)])

    def check(x: Any) -> None:
        expect((isinstance(min_side, int) and not isinstance(min_side, bool) and min_side >= 1) or min_side is None,
               "load_image accepted min_side", repr(min_side))
        expect(isinstance(x, torch.Tensor) and x.ndim == 3 and x.shape[0] == 3 and x.dtype == torch.float32,
               "load_image: not (3, H, W) float32", short(x))
        expect(finite(x) and float(x.min()) >= -1 and float(x.max()) <= 1, "load_image: values outside [-1, 1]")
        if "hw" in facts and source is not None and not isinstance(source, (int, bytes, str)):
            h, w = x.shape[1:]
            if min_side is None or not (key.endswith(".jpg") or facts.get("jpeg")):
                same = (h, w) == facts["hw"]
            else:  # JPEG draft mode: a power-of-two reduction keeping the shorter side >= min_side
                same = any((h, w) == (-(-facts["hw"][0] // f), -(-facts["hw"][1] // f)) for f in (1, 2, 4, 8))
                same = same and min(h, w) >= min(min_side, *facts["hw"])
            expect(same, "load_image: wrong displayed size (orientation?)",
                   f"{key}, min_side={min_side}: {(h, w)} != {facts['hw']}")
        if "mean" in facts:
            lo, hi = facts["mean"]
            expect(lo <= float(x.mean()) <= hi, "load_image: wrong brightness (bit depth?)",
                   f"{key}: mean {float(x.mean()):.2f}")
        expect("hw" in facts or isinstance(source, (int, bytes, str)), "load_image: an unreadable file loaded",
               key)
    return f"load_image({key if source is facts['path'] else short(source)}, min_side={min_side!r})", \
        lambda: io.load_image(source, min_side), check


def video_file(rng: random.Random, env: ApiEnv) -> tuple[str, dict[str, Any]]:
    """(name, facts) of a video, or of a file that is none."""
    key = rng.choice([*media_names(env, "video"), "rgb.png", "text.jpg"])
    return key, env.media[key]


def io_video_info(rng: random.Random, env: ApiEnv, name: str) -> Case:
    from vitok import io

    key, facts = video_file(rng, env)

    def check_info(out: Any) -> None:
        count, fps = out
        expect("frames" in facts, "video_info: an unreadable file was read", f"{key} -> {out}")
        expect(isinstance(count, int) and abs(count - facts["frames"]) <= 1, "video_info: wrong frame count",
               f"{key}: {count} != {facts['frames']}")
        expect(fps > 0 and math.isfinite(fps), "video_info: bad fps", fps)
    return f"video_info({key})", lambda: io.video_info(facts["path"]), check_info


def io_load_video(rng: random.Random, env: ApiEnv, name: str) -> Case:
    from vitok import io

    key, facts = video_file(rng, env)
    num = rng.choice([None, 1, 2, 4, 16, 0, -1, 2.0, "4"])
    start = rng.choice([0, 0, 1, 3, 5, 100, -1, 1.5])
    stride = rng.choice([1, 1, 2, 3, 0, -2, None])

    def check_video(x: Any) -> None:
        expect("frames" in facts, "load_video: an unreadable file loaded", key)
        expect(isinstance(x, torch.Tensor) and x.ndim == 4 and x.shape[0] == 3, "load_video: not (3, T, H, W)")
        total = facts["frames"]
        want = len(range(start, total, stride))
        if num is not None:
            want = min(want, num)
        expect(x.shape[1] == want, "load_video: wrong number of frames",
               f"{key} num={num} start={start} stride={stride}: {x.shape[1]} != {want}")
        expect(tuple(x.shape[2:]) == facts["hw"], "load_video: wrong frame size", f"{key}: {tuple(x.shape)}")
        expect(finite(x) and float(x.abs().max()) <= 1, "load_video: values outside [-1, 1]")
    return f"load_video({key}, {num!r}, start={start!r}, stride={stride!r})", \
        lambda: io.load_video(facts["path"], num, start=start, stride=stride), check_video


def io_resize(rng: random.Random, env: ApiEnv, name: str) -> Case:
    from vitok import io

    x = random_tensor(rng, rng.choice([2, 3, 4]), allow_odd=rng.random() < 0.5) if rng.random() < 0.9 \
        else api_value(rng)
    size = rng.choice([8, 16, 1, (8, 12), (12, 8), 0, -4, (0, 8), 2.5, "8", (8,), None, True, 33])

    def check_resize(out: Any) -> None:
        want = (size, size) if isinstance(size, int) else tuple(size)
        expect(tuple(out.shape[-2:]) == want and out.shape[:-2] == x.shape[:-2], "resize_center_crop: wrong shape",
               f"{tuple(x.shape)} -> {tuple(out.shape)} for {size!r}")
        if finite(x) and x.is_floating_point():
            expect(finite(out) and float(out.abs().max()) <= 1 + 1e-6, "resize_center_crop: NaN or out of range")
    return f"resize_center_crop({short(x)}, {size!r})", lambda: io.resize_center_crop(x, size), check_resize


def io_save_image(rng: random.Random, env: ApiEnv, name: str) -> Case:
    from vitok import io

    x = random_tensor(rng, rng.choice([3, 3, 4]), allow_odd=rng.random() < 0.3)
    if x.ndim == 3 and rng.random() < 0.7:
        x = x[:3] if x.shape[0] >= 3 else torch.rand(3, *x.shape[1:]) * 2 - 1
    ext = rng.choice([".png", ".jpg", ".webp", ".bmp", ".tiff", ".xyz", ""])
    path = env.scratch() / f"out{ext}"

    def run_save() -> Any:
        io.save_image(x, path)
        return io.load_image(path)

    def check_save(y: Any) -> None:
        expect(x.ndim == 3 and x.shape[0] == 3, "save_image accepted", short(x))
        expect(tuple(y.shape) == tuple(x.shape), "save_image: reloaded shape differs", f"{short(x)} -> {short(y)}")
    return f"save_image({short(x)}, out{ext})", run_save, check_save


def io_save_video(rng: random.Random, env: ApiEnv, name: str) -> Case:
    from vitok import io

    x = random_tensor(rng, rng.choice([4, 4, 3]), allow_odd=rng.random() < 0.3)
    if x.ndim == 4 and rng.random() < 0.7:
        x = torch.rand(3, *x.shape[1:]) * 2 - 1
    fps = rng.choice([5, 10.0, 29.97, 0, -1, math.nan, "5"])
    ext = rng.choice([".mp4", ".gif", ".mkv", ".avi"])
    path = env.scratch() / f"out{ext}"

    def run_save_video() -> Any:
        io.save_video(x, path, fps)
        return io.video_info(path)

    def check_save_video(out: Any) -> None:
        expect(x.ndim == 4 and x.shape[0] == 3, "save_video accepted", short(x))
        expect(abs(out[0] - x.shape[1]) <= 1, "save_video: frame count differs", f"{x.shape[1]} -> {out[0]}")
    return f"save_video({short(x)}, out{ext}, fps={fps!r})", run_save_video, check_save_video


IO_CASES: dict[str, Callable[[random.Random, ApiEnv, str], Case]] = {
    "load_image": io_load_image, "load_image_bytes": io_load_image, "load_video": io_load_video,
    "video_info": io_video_info, "resize_center_crop": io_resize, "save_image": io_save_image,
    "save_video": io_save_video,
}
