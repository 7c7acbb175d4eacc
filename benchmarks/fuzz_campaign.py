"""A large, seeded fuzz campaign over vitok's public surface (issue #13): not a test, a tool to run.

    nice -n 5 .venv/bin/python benchmarks/fuzz_campaign.py --api 5000 --config 4000 --cli 400 --seed 0

Three parts, each a number of random cases:

- ``--api N``: random calls of the public Python API with random arguments: a tiny ``ViTok``'s
  ``encode`` / ``decode`` / ``forward`` / ``encode_posterior`` / ``latent_shape`` /
  ``set_latent_stats`` / ``normalize_latent`` / ``denormalize_latent`` / tiling and slicing,
  ``from_preset`` / ``get_config``, ``from_pretrained`` on corrupted or malicious model folders
  (mutated ``config.json``, truncated, bit-flipped, re-headed or pickled weights, links, folders),
  the functions of :mod:`vitok.metrics`, and the media and data helpers (``vitok.io``,
  ``vitok.data``) on odd files (16-bit, palette, CMYK, EXIF-rotated, 1x1, truncated, empty, text,
  decompression bombs, audio-only and Matroska videos, tar shards with dotted names).
- ``--config N``: mutations of training configs through :func:`vitok.train.load_config` (the
  loader ``vitok train`` uses): ``key=value`` overrides with random keys, values, types and YAML
  syntax, and the project's YAML files mutated as text or as structure. An accepted config is
  checked for absurd values (non-finite numbers, impossible batch splits, a loss with no
  reconstruction term, ...), and ``--runs K`` of the accepted ones train for 2 steps on the
  nano preset and tiny data, in-process.
- ``--cli N``: random command lines over every subcommand (flags of the command and of others,
  bad numbers, odd and real paths, real tiny inputs so some commands do real work), run
  in-process through :func:`vitok.cli.main`, with stdout/stderr captured. ``vitok data build`` and
  ``vitok weights fetch`` would go to the network: the campaign makes the network look down
  (an ``OSError``) and gives ``weights`` its own cache folder.

Every case ends in one of four categories:

- **result**: a return value that passed the case's checks (shapes, finiteness, documented
  values);
- **clear error**: ``ValueError`` / ``TypeError`` (or a documented ``FileNotFoundError``) with a
  one-line message, raised by a ``raise`` statement in vitok's own code; for the CLI an exit status
  of 2 (or 1) whose error is one line, with no traceback;
- **traceback**: anything else (another exception type, an error raised inside torch / numpy /
  Pillow / the standard library, a multi-line or empty message, an error that names neither the
  key nor the file, a timeout), grouped by kind (type and place) with one example each;
- **silent wrong result**: a return value that fails a check (wrong output shape, NaN from finite
  input, a PSNR above its cap, a model that loads different weights, exit status 0 for an
  absurd value, a config accepted with absurd values, a malicious pickle that ran).

The exit status is 1 when there is any traceback or silent wrong result. The campaign writes only
under a temporary folder (``--keep`` keeps it), sets ``HF_HUB_OFFLINE=1`` and uses one torch
thread. The generators of the fuzz tests in ``tests/`` (``tests.test_fuzz_api``,
``tests.test_fuzz_cli``, ``tests.test_train_config``) are reused as a part of the value pools.

Last run (seed 0, the issue's scale, 435 s on 2 busy CPU cores; details in docs/robustness.md):
API 5000 cases in 67 s: 1928 results, 3072 clear errors, 0 tracebacks, 0 silent wrong results;
config 4000 mutations in 30 s: 662 results, 3338 clear errors, 0 tracebacks, 0 silent wrong
results (8 accepted ones trained, all fine); CLI 400 command lines in 319 s: 115 results, 285
clear errors, 0 tracebacks, 0 silent wrong results.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io as pyio
import json
import logging
import math
import os
import pickle
import random
import resource
import shutil
import signal
import struct
import sys
import tarfile
import tempfile
import time
import traceback
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests is a package: reuse the fuzz tests' generators
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # from_pretrained on a random "org/name": never the network

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tests.test_fuzz_api import VALUES as TEST_API_VALUES  # noqa: E402
from tests.test_fuzz_api import call as test_api_call  # noqa: E402
from tests.test_fuzz_cli import COMMANDS as TEST_CLI_COMMANDS  # noqa: E402
from tests.test_fuzz_cli import FLAGS as TEST_CLI_FLAGS  # noqa: E402
from tests.test_fuzz_cli import VALUES as TEST_CLI_VALUES  # noqa: E402
from tests.test_train_config import _random_value as test_config_value  # noqa: E402

import vitok  # noqa: E402

SRC = Path(vitok.__file__).resolve().parent
CATEGORIES = ("result", "clear", "traceback", "silent")
CLEAR_TYPES = (ValueError, TypeError, FileNotFoundError)  # FileNotFoundError: documented for paths
PWNED = "pwned-by-pickle"  # the file a malicious pickle would create


class Silent(Exception):  # noqa: N818  (a category, not an error of the campaign)
    """A check of a returned value failed: a silent wrong result (the message is its kind)."""


class Timeout(BaseException):
    """The case ran past its time limit."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise :class:`Timeout` in the main thread after ``seconds``."""
    def expire(signum, frame):
        raise Timeout(f"no answer within {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def captured():
    """Capture stdout, stderr, warnings and vitok's log records: yields the (out, err) buffers."""
    out, err = pyio.StringIO(), pyio.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [logging.StreamHandler(err)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield out, err
    finally:
        root.handlers = saved


def is_vitok_file(filename: str) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(SRC)
    except (OSError, ValueError):
        return False


def where(err: BaseException) -> str:
    """'file.py:function' of the innermost vitok frame of ``err`` (or of the innermost frame)."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if is_vitok_file(f.filename)]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    path = Path(frame.filename)
    name = str(path.resolve().relative_to(SRC.parent)) if is_vitok_file(frame.filename) else path.name
    return f"{name}:{frame.name}"


def raised_by_vitok(err: BaseException) -> bool:
    """Whether the innermost frame of ``err`` is a ``raise`` statement in vitok's own code."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames or not is_vitok_file(frames[-1].filename):
        return False
    return (frames[-1].line or "").lstrip().startswith("raise")


def one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 240 else text[:237] + "..."


def judge_error(err: BaseException, names: tuple[str, ...] = ()) -> tuple[str, str]:
    """(category, kind) of an exception raised by a case; ``names``: words of which the message
    must contain one (the key, the argument or the file)."""
    if isinstance(err, Timeout):
        return "traceback", f"timeout ({err})"
    kind = f"{type(err).__name__} at {where(err)}"
    message = str(err).strip()
    if not isinstance(err, CLEAR_TYPES):
        return "traceback", kind
    if not message or "\n" in message:
        return "traceback", f"{kind} (empty or multi-line message)"
    if not raised_by_vitok(err):
        return "traceback", f"{kind} (raised outside a vitok check)"
    if names and not any(n and n.lower() in message.lower() for n in names):
        return "traceback", f"{kind} (names none of {list(names)[:3]})"
    return "clear", ""


class Tally:
    """Counts per part and category; kinds of tracebacks and silent results with an example."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.kinds: dict[tuple[str, str], dict[str, list]] = defaultdict(dict)
        self.seconds: dict[str, float] = {}

    def add(self, part: str, category: str, kind: str = "", example: str = "") -> None:
        self.counts[part][category] += 1
        if category in ("traceback", "silent"):
            entry = self.kinds[part, category].setdefault(kind, [0, one_line(example)])
            entry[0] += 1

    def faults(self) -> int:
        return sum(c["traceback"] + c["silent"] for c in self.counts.values())

    def report(self) -> str:
        lines = []
        for part, counts in self.counts.items():
            total = sum(counts.values())
            summary = ", ".join(f"{counts[c]} {name}" for c, name in zip(
                CATEGORIES, ("results", "clear errors", "tracebacks", "silent wrong results")))
            lines.append(f"{part}: {total} cases in {self.seconds.get(part, 0):.0f} s: {summary}")
            for category in ("traceback", "silent"):
                kinds = self.kinds.get((part, category), {})
                for kind, (count, example) in sorted(kinds.items(), key=lambda kv: -kv[1][0]):
                    lines.append(f"  {category} x{count}: {kind}\n      e.g. {example}")
        return "\n".join(lines)


def run_case(tally: Tally, part: str, label: str, fn: Callable[[], Any], check: Callable[[Any], None] | None = None,
             names: tuple[str, ...] = (), seconds: float = 60.0) -> str:
    """Run one case: ``fn()`` then ``check(result)``; record and return its category."""
    try:
        with captured(), deadline(seconds):
            result = fn()
            if check is not None:
                check(result)
    except Silent as wrong:
        tally.add(part, "silent", str(wrong).split(":")[0], f"{label} -> {wrong}")
        return "silent"
    except (Exception, Timeout) as err:
        category, kind = judge_error(err, names)
        tally.add(part, category, kind, f"{label} -> {type(err).__name__}: {err}")
        return category
    tally.add(part, "result")
    return "result"


def expect(condition: bool, kind: str, detail: object = "") -> None:
    if not condition:
        raise Silent(f"{kind}: {detail}")


def finite(x: Any, bound: float = math.inf) -> bool:
    """All values finite (and of magnitude <= ``bound``: a pixel of 1e30 is finite but not an image)."""
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            return True
        x = x.detach().float()
        return bool(torch.isfinite(x).all()) and (x.numel() == 0 or float(x.abs().max()) <= bound)
    return bool(np.isfinite(np.asarray(x, dtype=np.float64)).all())


IN_RANGE = 100.0  # inputs beyond this are finite but not images or latents: NaN out is no fault then


def short(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}:{str(value.dtype).replace('torch.', '')}"
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"{type(value).__name__}(len {len(value)})"
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


# ====================================================================== fixtures
def make_media(root: Path) -> dict[str, dict[str, Any]]:
    """Odd image and video files under ``root/media``: name -> {"path", and what a reader must give}."""
    import av
    from PIL import Image

    media = root / "media"
    media.mkdir(parents=True)
    files: dict[str, dict[str, Any]] = {}

    def add(name: str, **facts: Any) -> Path:
        files[name] = {"path": media / name, **facts}
        return media / name

    yy, xx = np.mgrid[0:24, 0:32]
    rgb = np.stack([xx * 8, yy * 10, (xx + yy) * 4], -1).astype(np.uint8)
    Image.fromarray(rgb).save(add("rgb.png", hw=(24, 32), frames=1))  # FFmpeg reads an image as 1 frame
    Image.fromarray(rgb[:1, :1]).save(add("one.png", hw=(1, 1)))
    Image.fromarray(rgb[:, :2]).save(add("thin.png", hw=(24, 2)))
    ramp = (np.linspace(0, 65535, 16 * 16).reshape(16, 16)).astype(np.uint16)
    Image.fromarray(ramp).save(add("gray16.png", hw=(16, 16), mean=(-0.2, 0.2)))  # a ramp: mean grey
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE).save(add("palette.png", hw=(24, 32)),
                                                                       transparency=0)
    Image.fromarray(rgb).convert("LA").save(add("la.png", hw=(24, 32)))
    Image.fromarray(rgb).convert("CMYK").save(add("cmyk.jpg", hw=(24, 32)))
    Image.fromarray(rgb).convert("1").save(add("bits.bmp", hw=(24, 32)))
    Image.fromarray((ramp / 257).astype(np.float32)).save(add("float.tiff", hw=(16, 16)))
    Image.fromarray(rgb).save(add("rgb.webp", hw=(24, 32)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(add("exif6.jpg", hw=(32, 24)), exif=exif)
    frames = [Image.fromarray(np.roll(rgb, 3 * i, axis=1)) for i in range(4)]
    frames[0].save(add("anim.gif", hw=(24, 32), frames=4), save_all=True, append_images=frames[1:], duration=200)
    good = (media / "rgb.png").read_bytes()
    add("empty.png").write_bytes(b"")
    add("trunc.png").write_bytes(good[: len(good) // 2])
    add("text.jpg").write_text("this is not an image\n")
    bomb = bytearray(good)
    bomb[16:24] = struct.pack(">II", 100_000, 100_000)  # the IHDR claims 100000 x 100000 pixels
    add("bomb.png").write_bytes(bytes(bomb))
    Image.fromarray(rgb).save(media / "tmp.jpg")
    add("jpeg_named.png", hw=(24, 32), jpeg=True).write_bytes((media / "tmp.jpg").read_bytes())
    (media / "tmp.jpg").unlink()
    add("folder.png").mkdir()
    add("dangling.png").symlink_to(media / "no-such-file.png")

    def video(name: str, codec: str, count: int, fmt: str = "yuv420p", size: tuple[int, int] = (24, 32)) -> None:
        with av.open(str(add(name, frames=count, hw=size)), "w") as container:
            stream = container.add_stream(codec, rate=5)
            stream.height, stream.width = size
            stream.pix_fmt = fmt
            for i in range(count):
                frame = np.full((*size, 3), 20 + 20 * i, np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)

    video("clip.mp4", "libx264", 6)
    video("clip.webm", "libvpx", 6)
    video("clip.mkv", "mpeg4", 6)
    video("single.mp4", "libx264", 1)
    video("odd.avi", "ffv1", 3, fmt="yuv444p", size=(17, 9))
    with av.open(str(add("audio.mp4")), "w") as container:  # no video stream
        stream = container.add_stream("aac", rate=8000)
        samples = np.zeros((1, 1024), np.float32)
        for _ in range(4):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 8000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    clip = (media / "clip.mp4").read_bytes()
    add("trunc.mp4").write_bytes(clip[: len(clip) // 3])
    add("empty.mp4").write_bytes(b"")
    add("text.mp4").write_text("not a video\n")
    add("image_named.mp4", frames=1, hw=(24, 32)).write_bytes(good)  # FFmpeg sniffs the content: one frame
    return files


def make_shards(root: Path, media: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """Tar shards: dotted member names, unreadable members, an empty tar, a non-tar."""
    shards = root / "shards"
    shards.mkdir()
    good = media["rgb.png"]["path"].read_bytes()

    def tar(name: str, members: dict[str, bytes]) -> Path:
        path = shards / name
        with tarfile.open(path, "w") as archive:
            for member, data in members.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                archive.addfile(info, pyio.BytesIO(data))
        return path

    out = {
        "dotted": tar("dotted.tar", {f"scan.2023.{i:02d}.png": good for i in range(3)}),
        "mixed": tar("mixed.tar", {"a.png": good, "b.png": b"broken", "c.txt": b"text", "d.png": good}),
        "broken": tar("broken.tar", {"a.png": b"x", "b.jpg": b"y"}),
        "empty": tar("empty.tar", {}),
        "videos": tar("videos.tar", {"v.1.mp4": media["clip.mp4"]["path"].read_bytes()}),
    }
    (shards / "not.tar").write_text("not a tar archive")
    out["not"] = shards / "not.tar"
    return out


def make_model_dir(root: Path) -> Path:
    from vitok import ViTok

    torch.manual_seed(0)
    model = ViTok.from_preset("N-N/8")
    return model.save_pretrained(root / "model")


class MaliciousPayload:
    """Unpickling this creates the PWNED file: a loader that unpickles it has run foreign code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


# ====================================================================== API campaign
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


def pixels_ok(x: Any, channels: int = 3) -> bool:
    return (isinstance(x, torch.Tensor) and x.ndim in (4, 5) and x.shape[1] == channels and x.is_floating_point()
            and x.numel() > 0)


def latent_ok(z: Any, channels: int) -> bool:
    return (isinstance(z, torch.Tensor) and z.ndim in (4, 5) and z.shape[1] == channels and z.is_floating_point()
            and z.numel() > 0)


def expected_latent(model: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    q, p, c = model.config.tubelet_size, model.config.patch_size, model.config.latent_channels
    if len(shape) == 4:
        return (shape[0], c, -(-shape[2] // p), -(-shape[3] // p))
    return (shape[0], c, -(-shape[2] // q), -(-shape[3] // p), -(-shape[4] // p))


def case_model(rng: random.Random, env: ApiEnv) -> tuple[str, Callable, Callable | None]:
    """encode / decode / forward / encode_posterior / latent_shape / latent statistics / tiling."""
    model, c = env.model, env.model.config.latent_channels
    name = rng.choice(["encode", "encode", "decode", "decode", "forward", "encode_posterior", "latent_shape",
                       "set_latent_stats", "normalize_latent", "denormalize_latent", "tiling", "slicing",
                       "test_call"])
    if name == "test_call":  # the fuzz test's own call generator
        inner = random.Random(rng.random())
        return "tests.test_fuzz_api.call", lambda: test_api_call(model, inner), None
    if name in ("encode", "forward", "encode_posterior"):
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
    if name == "decode":
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
    if name == "latent_shape":
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
    if name == "set_latent_stats":
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
    if name in ("normalize_latent", "denormalize_latent"):
        z = random_tensor(rng, rng.choice([4, 5]), c) if rng.random() < 0.7 else api_value(rng)

        def check(out: Any) -> None:
            if not latent_ok(z, c):
                raise Silent(f"{name} accepted {short(z)} -> {short(out)}")
            expect(out.shape == z.shape, f"{name}: shape changed")
            expect(not finite(z, IN_RANGE) or finite(out) or z.dtype == torch.float16,
                   f"{name}: NaN from a finite latent")
        return f"model.{name}({short(z)})", lambda: getattr(model, name)(z), check
    if name == "tiling":
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


OVERRIDE_KEYS = ["latent_channels", "patch_size", "tubelet_size", "image_size", "num_frames", "qk_norm", "norm",
                 "bottleneck", "head", "head_channels", "head_blocks", "mlp_ratio", "rope_theta", "logvar_min",
                 "logvar_max", "decoder_fine_depth", "decoder_fine_width", "latent_mean", "latent_std", "encoder",
                 "decoder", "in_channels", "name", "bogus", "width"]
OVERRIDE_VALUES = [0, -1, 1, 2, 3, 4, 8, 1.5, math.nan, "x", None, True, [], [16, 16], (8, 0), {"width": 64},
                   {"width": 64, "depth": 1, "heads": 2}, {"width": 0, "depth": 1, "heads": 1}, "conv", "kl", "rms",
                   [1.0] * 16, [0.0] * 16, (16, 16)]
SMALL_TOWERS = ("N", "Ti")


def case_preset(rng: random.Random, env: ApiEnv) -> tuple[str, Callable, Callable | None]:
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


def corrupt_model_dir(rng: random.Random, env: ApiEnv) -> tuple[Path, str, bool]:
    """A copy of the saved model with one corruption: (folder, description, weights untouched)."""
    folder = env.scratch() / "model"
    shutil.copytree(env.model_dir, folder)
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    config = json.loads(config_path.read_text())
    weights = weights_path.read_bytes()
    how = rng.choice(["config_value", "config_value", "config_drop", "config_extra", "config_tower", "config_text",
                      "config_type", "weights_truncate", "weights_flip", "weights_header", "weights_pickle",
                      "weights_empty", "weights_garbage", "weights_dir", "missing_config", "missing_weights",
                      "weights_link_loop", "weights_dtype", "huge_config", "nothing"])
    untouched = not how.startswith(("weights", "missing_weights"))
    if how == "config_value":
        key = rng.choice(sorted(config))
        config[key] = rng.choice([None, 0, -1, 10**9, 1.5, "x", [], {}, True, [64, 64], math.nan])
        config_path.write_text(json.dumps(config))
        how += f" {key}={config[key]!r}"
    elif how == "config_drop":
        key = rng.choice(sorted(config))
        del config[key]
        config_path.write_text(json.dumps(config))
        how += f" {key}"
    elif how == "config_extra":
        config[rng.choice(["bogus", "Patch_size", "encoder_width"])] = 1
        config_path.write_text(json.dumps(config))
    elif how == "config_tower":
        tower = rng.choice(["encoder", "decoder"])
        key = rng.choice(["width", "depth", "heads", "bogus"])
        config[tower] = {**config[tower], key: rng.choice([0, -1, 10**7, 3, "x", None, 2.5])}
        config_path.write_text(json.dumps(config))
        how += f" {tower}.{key}={config[tower][key]!r}"
    elif how == "config_text":
        text = config_path.read_text()
        cut = rng.randrange(len(text))
        config_path.write_text(rng.choice([text[:cut], text[:cut] + "}" + text[cut:], "\ufeff" + text, "null", "[]",
                                           "\x00\x01garbage", text.replace(":", "=", 1)]))
    elif how == "config_type":
        config_path.write_text(json.dumps(rng.choice([[config], "vitok", 5, None])))
    elif how == "huge_config":
        config.update(encoder={"width": 65536, "depth": 64, "heads": 64}, decoder={"width": 65536, "depth": 64,
                                                                                     "heads": 64})
        config_path.write_text(json.dumps(config))
    elif how == "weights_truncate":
        weights_path.write_bytes(weights[: rng.randrange(len(weights))])
    elif how == "weights_flip":
        data = bytearray(weights)
        for _ in range(rng.choice([1, 8, 64])):
            data[rng.randrange(min(len(data), 4096 if rng.random() < 0.7 else len(data)))] ^= 1 << rng.randrange(8)
        weights_path.write_bytes(bytes(data))
    elif how == "weights_header":
        length = struct.unpack("<Q", weights[:8])[0]
        header = json.loads(weights[8:8 + length])
        key = rng.choice([k for k in header if k != "__metadata__"])
        field = rng.choice(["shape", "dtype", "data_offsets", "drop"])
        if field == "drop":
            del header[key]
        else:
            header[key][field] = rng.choice({"shape": [[1], [10**12, 10**12], [-1], []],
                                             "dtype": ["F64", "I8", "X9", "BOOL"],
                                             "data_offsets": [[0, 10**15], [5, 3], [0, 0]]}[field])
        raw = json.dumps(header).encode()
        head = struct.pack("<Q", rng.choice([len(raw), len(raw), 10**15, 3])) + raw
        weights_path.write_bytes(head + weights[8 + length:])
        how += f" {key}.{field}"
    elif how == "weights_pickle":
        marker = env.root / PWNED
        weights_path.write_bytes(pickle.dumps({"patch_embed.weight": MaliciousPayload(str(marker))}))
    elif how == "weights_empty":
        weights_path.write_bytes(b"")
    elif how == "weights_garbage":
        weights_path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.choice([7, 100, 5000]))))
    elif how == "weights_dir":
        weights_path.unlink()
        weights_path.mkdir()
    elif how == "missing_config":
        config_path.unlink()
    elif how == "missing_weights":
        weights_path.unlink()
    elif how == "weights_link_loop":
        weights_path.unlink()
        weights_path.symlink_to(weights_path)
    elif how == "weights_dtype":
        from safetensors.torch import save_file

        save_file({k: v.to(torch.float16) for k, v in env.saved_state.items()}, str(weights_path))
    return folder, how, untouched


def case_pretrained(rng: random.Random, env: ApiEnv) -> tuple[str, Callable, Callable | None]:
    from vitok import ViTok

    if rng.random() < 0.15:
        target: Any = rng.choice([None, 5, "", "org/no-such-model", "../..", "/", str(env.root / "no-such"),
                                  str(env.media["rgb.png"]["path"]), "vitok-tiny", Path("~nobody/model")])
        how, untouched = "argument", True
    else:
        target, how, untouched = corrupt_model_dir(rng, env)
    kwargs = {}
    if rng.random() < 0.2:
        kwargs = rng.choice([{"device": "meta"}, {"device": "tpu"}, {"dtype": torch.float16}, {"dtype": "fp16"},
                             {"revision": 5}, {"device": None}])

    def run() -> Any:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        model = ViTok.from_pretrained(target, **kwargs)
        return model, before, start

    def check(out: Any) -> None:
        model, before, start = out
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 2**20
        expect(grown < 1.0, "from_pretrained: allocated far more than the weights", f"{how}: +{grown:.1f} GB")
        expect(time.perf_counter() - start < 30, "from_pretrained: slow", how)
        expect(not (env.root / PWNED).exists(), "from_pretrained: a malicious pickle ran", how)
        if target == "vitok-tiny" or how == "argument":
            return
        state = model.state_dict()
        if untouched and "dtype" not in kwargs and model.config.latent_channels == env.model.config.latent_channels:
            same = set(state) == set(env.saved_state) and all(
                torch.equal(state[k].cpu(), env.saved_state[k]) for k in state if state[k].device.type != "meta")
            expect(same, "from_pretrained: loaded other weights than the file holds", how)
        expect(all(finite(v) for v in state.values() if v.device.type != "meta") or "flip" in how,
               "from_pretrained: non-finite weights", how)
    return f"from_pretrained({short(target)}, {short(kwargs)}) [{how}]", run, check


def case_metrics(rng: random.Random, env: ApiEnv) -> tuple[str, Callable, Callable | None]:
    from vitok.metrics import (
        FeatureStats,
        build_metric,
        compression_ratio,
        count_macs,
        frechet_distance,
        grid_score,
        latent_size,
        measure_macs,
        psnr,
    )
    from vitok.metrics.frechet import load_stats
    from vitok.metrics.grid import grid_ratio, lattice_steps
    from vitok.metrics.ssim import ssim
    from vitok.metrics.streaming import canonical_metric

    name = rng.choice(["psnr", "ssim", "frechet", "stats", "grid", "build", "build", "canonical", "macs", "load_stats",
                       "lattice"])

    def pair() -> tuple[Any, Any]:
        x = random_tensor(rng, rng.choice([2, 3, 4, 4, 4, 5]), 3) if rng.random() < 0.85 else api_value(rng)
        roll = rng.random()
        if roll < 0.3 and isinstance(x, torch.Tensor):
            y = x.clone()
        elif roll < 0.8 and isinstance(x, torch.Tensor):
            y = (x.float() + 0.1 * torch.randn(x.shape)).clamp(-1, 1).to(x.dtype) if x.is_floating_point() else x
        else:
            y = random_tensor(rng, rng.choice([3, 4, 5]), 3) if rng.random() < 0.8 else api_value(rng)
        return x, y

    if name == "psnr":
        x, y = pair()

        def check(out: Any) -> None:
            ok = isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape and x.ndim >= 2
            if not ok:
                raise Silent(f"psnr accepted {short(x)}, {short(y)} -> {short(out)}")
            expect(out.shape == (x.shape[0],), "psnr: not one value per sample", tuple(out.shape))
            expect(not (finite(x) and finite(y)) or not bool(torch.isnan(out).any()), "psnr: NaN from finite input")
            expect(bool((out[~torch.isnan(out)] >= 0).all()), "psnr: negative dB")
        return f"psnr({short(x)}, {short(y)})", lambda: psnr(x, y), check
    if name == "ssim":
        x, y = pair()
        kwargs = {k: rng.choice(v) for k, v in (("data_range", [2.0, 255.0, 0.0, -1.0, math.nan]),
                                                ("window", [11, 3, 1, 0, -1, 4, 64]),
                                                ("sigma", [1.5, 0.0, -1.0, math.inf])) if rng.random() < 0.3}

        def check(out: Any) -> None:
            ok = isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape and x.ndim == 4
            if not ok:
                raise Silent(f"ssim accepted {short(x)}, {short(y)} -> {short(out)}")
            expect(out.shape == (x.shape[0],), "ssim: not one value per sample")
            if finite(x) and finite(y):
                expect(finite(out), "ssim: NaN from finite input", short(kwargs))
                expect(bool((out <= 1 + 1e-4).all() & (out >= -1 - 1e-4).all()), "ssim: outside [-1, 1]",
                       f"{out.tolist()} {short(kwargs)}")
        return f"ssim({short(x)}, {short(y)}, {short(kwargs)})", lambda: ssim(x, y, **kwargs), check
    if name in ("frechet", "stats"):
        dim = rng.choice([1, 2, 4, 8])
        n = rng.choice([0, 1, 2, 3, 5, 50])
        feats = torch.randn(n, dim, dtype=rng.choice([torch.float32, torch.float64]))
        if rng.random() < 0.1 and n:
            feats[0, 0] = rng.choice([math.nan, math.inf])
        if rng.random() < 0.1:
            feats = rng.choice([torch.randn(dim), torch.randn(2, dim, 2), "features", None])
        if name == "stats":
            def run_stats() -> Any:
                stats = FeatureStats()
                stats.update(feats)
                return stats.mean_cov()

            def check_stats(out: Any) -> None:
                mu, sigma = out
                expect(isinstance(feats, torch.Tensor) and feats.ndim == 2 and feats.shape[0] >= 2,
                       "FeatureStats accepted", short(feats))
                expect(mu.shape == (dim,) and sigma.shape == (dim, dim), "FeatureStats: shapes")
                expect(not finite(feats) or (finite(mu) and finite(sigma)), "FeatureStats: NaN from finite features")
            return f"FeatureStats.update({short(feats)}).mean_cov()", run_stats, check_stats
        same = rng.random() < 0.4
        if isinstance(feats, torch.Tensor) and feats.ndim == 2 and feats.shape[0] >= 2 and finite(feats):
            f = feats.double().numpy()
            mu1, s1 = f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))
        else:
            mu1, s1 = rng.choice([(np.zeros(dim), np.eye(dim)), (np.full(dim, np.nan), np.eye(dim)),
                                  ([0.0] * dim, None),
                                  (np.zeros((dim, 2)), np.eye(dim)), (np.zeros(dim), -np.eye(dim))])
        if same:
            mu2, s2 = (np.array(mu1, copy=True) if isinstance(mu1, np.ndarray) else mu1,
                       np.array(s1, copy=True) if isinstance(s1, np.ndarray) else s1)
        else:
            mu2, s2 = rng.choice([(np.zeros(dim), np.eye(dim)), (np.ones(dim + 1), np.eye(dim + 1)),
                                  (np.ones(dim), 2 * np.eye(dim)), (np.zeros(dim), np.zeros((dim, dim)))])

        def check_frechet(out: Any) -> None:
            expect(isinstance(out, float) and math.isfinite(out) and out >= 0, "frechet: not a finite value >= 0",
                   out)
            if same:
                expect(out == 0.0, "frechet: identical statistics give a distance other than 0", out)
        return (f"frechet_distance({short(mu1)}, {short(s1)}, {short(mu2)}, {short(s2)})",
                lambda: frechet_distance(mu1, s1, mu2, s2), check_frechet)
    if name in ("grid", "lattice"):
        x, y = pair()
        period = rng.choice([8, 16, 2, 1, 0, -8, 8.0, "8", None, 1000])
        if name == "lattice":
            def run_lattice() -> Any:
                return grid_ratio(lattice_steps(x, period))

            def check_lattice(out: Any) -> None:
                expect(isinstance(x, torch.Tensor) and x.ndim == 4, "lattice_steps accepted", short(x))
                expect(isinstance(out, float) and (not finite(x) or (math.isfinite(out) and out >= 0)),
                       "grid ratio: not finite >= 0", out)
            return f"grid_ratio(lattice_steps({short(x)}, {period!r}))", run_lattice, check_lattice

        def check_grid(out: Any) -> None:
            ok = isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape and x.ndim == 4
            expect(ok, "grid_score accepted", f"{short(x)}, {short(y)}")
            expect(isinstance(out, float) and (not (finite(x) and finite(y)) or (math.isfinite(out) and out >= 0)),
                   "grid_score: not finite >= 0", out)
            if torch.equal(x, y):
                expect(out == 1.0, "grid_score: identical images do not give 1.0", out)
        return f"grid_score({short(x)}, {short(y)}, {period!r})", lambda: grid_score(x, y, period), check_grid
    if name == "build":
        metric = rng.choice(["psnr", "ssim", "grid", "PSNR", "lpips", "lpips_alex", "ssim ", "psnr,ssim", "fid", "",
                             "psnr", "grid", "rfid" if rng.random() < 0.1 else "psnr"])
        period = rng.choice([8, 8, 16, 1, 0, "8"])
        batches = [pair() for _ in range(rng.choice([0, 1, 1, 2]))]

        def run_build() -> Any:
            m = build_metric(metric, torch.device("cpu"), period=period)
            for a, b in batches:
                m.update(a, b)
            return m.compute()

        def check_build(out: Any) -> None:
            valid = all(isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                        and a.ndim in (4, 5) and not a.is_complex() for a, b in batches)  # any channel count
            expect(valid and batches, f"metric {metric.strip().lower()}: accepted", short(batches))
            expect(isinstance(out, float), f"metric {metric}: not a float", out)
            fin = all(finite(a) and finite(b) for a, b in batches)
            expect(not fin or math.isfinite(out), f"metric {metric}: not finite from finite input", out)
            if "psnr" in metric.lower() and fin:
                expect(out <= 100.0, "metric psnr: above its 100 dB cap", out)
            if "ssim" in metric.lower() and fin:
                expect(-1 <= out <= 1, "metric ssim: outside [-1, 1]", out)
        return (f"build_metric({metric!r}, period={period!r}).update x{len(batches)}: {short(batches)}",
                run_build, check_build)
    if name == "canonical":
        metric = rng.choice(["psnr", "LPIPS_VGG", "lpips-alex", "rFID", "x", "", 5, None, "grid "])
        return f"canonical_metric({metric!r})", lambda: canonical_metric(metric), None
    if name == "macs":
        config = rng.choice([env.model.config, vitok.get_config("N-N/2x8"), "N-N/8", None])
        shape = rng.choice([None, (1, 64, 64), (1, 8, 8), (4, 32, 32), (1, 0, 8), (1, -8, 8), (0, 8, 8), (1, 8),
                            "64", (1, 8.5, 8), [1, 16, 16], (1, 10**6, 10**6)])
        fn = rng.choice([count_macs, latent_size, compression_ratio, measure_macs])
        if fn is measure_macs and shape is not None and not isinstance(shape, str) and len(shape) == 3 and \
                isinstance(shape[1], int) and shape[1] > 64:
            fn = count_macs  # the meta-device pass is cheap but not at 10^6 px

        def check_macs(out: Any) -> None:
            ok_shape = shape is None or (isinstance(shape, (tuple, list)) and len(shape) == 3 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape))
            expect(ok_shape and not isinstance(config, (str, type(None))), f"{fn.__name__} accepted",
                   f"{config if isinstance(config, str) else 'config'}, {shape!r} -> {out!r}")
            value = out.total if hasattr(out, "total") else out
            expect(value > 0 and math.isfinite(value), f"{fn.__name__}: not positive", value)
        return f"{fn.__name__}({short(config)}, {shape!r})", lambda: fn(config, shape), check_macs
    path = rng.choice([env.root / "stats.npz", env.media["text.jpg"]["path"], env.root / "missing.npz",
                       env.media["folder.png"]["path"], env.root / "bad_stats.npz", env.root / "pickled.npz"])
    return f"load_stats({path.name})", lambda: load_stats(path), None


def media_names(env: ApiEnv, kind: str) -> list[str]:
    videos = [n for n in env.media if n.endswith((".mp4", ".webm", ".mkv", ".gif"))]
    return videos if kind == "video" else [n for n in env.media if n not in videos or n.endswith(".gif")]


def case_io(rng: random.Random, env: ApiEnv) -> tuple[str, Callable, Callable | None]:
    from vitok import io

    name = rng.choice(["load_image", "load_image", "load_image_bytes", "load_video", "load_video", "video_info",
                       "resize_center_crop", "save_image", "save_video"])
    if name in ("load_image", "load_image_bytes"):
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
    if name in ("load_video", "video_info"):
        key = rng.choice([*media_names(env, "video"), "rgb.png", "text.jpg"])
        facts = env.media[key]
        if name == "video_info":
            def check_info(out: Any) -> None:
                count, fps = out
                expect("frames" in facts, "video_info: an unreadable file was read", f"{key} -> {out}")
                expect(isinstance(count, int) and abs(count - facts["frames"]) <= 1, "video_info: wrong frame count",
                       f"{key}: {count} != {facts['frames']}")
                expect(fps > 0 and math.isfinite(fps), "video_info: bad fps", fps)
            return f"video_info({key})", lambda: io.video_info(facts["path"]), check_info
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
    if name == "resize_center_crop":
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
    if name == "save_image":
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


def case_data(rng: random.Random, env: ApiEnv) -> tuple[str, Callable, Callable | None]:
    from vitok.data.datasets import MediaFolder, collate, describe_skipped, fit_clip, list_files
    from vitok.data.shards import ShardDataset, expand_shards, split_last_extension
    from vitok.data.transforms import EvalTransform, TrainTransform

    media = env.media["rgb.png"]["path"].parent
    name = rng.choice(["list_files", "fit_clip", "folder", "folder", "transform", "split", "expand", "shards",
                       "describe"])
    if name == "list_files":
        roots = rng.choice([[media], [media / "rgb.png"], [env.root / "no-such"], [], [media, media], [str(media)],
                            [media / "text.jpg"], [env.root / "empty-dir"], media, None])
        kind = rng.choice(["image", "video", "audio", None])

        def check(out: Any) -> None:
            expect(kind in ("image", "video"), "list_files accepted kind", repr(kind))
            expect(bool(out) and all(Path(p).is_file() for p in out), "list_files: not existing files", short(out))
            expect(len(set(out)) == len(out), "list_files: a file listed twice", short(roots))
        return f"list_files({short(roots)}, {kind!r})", lambda: list_files(roots, kind), check
    if name == "fit_clip":
        frames = random_tensor(rng, 4, 3, allow_odd=False) if rng.random() < 0.8 else api_value(rng)
        num = rng.choice([1, 2, 4, 8, 0, -1, 2.5])

        def check_clip(out: Any) -> None:
            expect(isinstance(num, int) and num >= 1, "fit_clip accepted num_frames", repr(num))
            expect(frames.ndim == 4 and tuple(out.shape) == (frames.shape[0], num, *frames.shape[2:]),
                   "fit_clip: wrong shape", f"{short(frames)}, {num} -> {short(out)}")
        return f"fit_clip({short(frames)}, {num!r})", lambda: fit_clip(frames, num), check_clip
    if name == "transform":
        x = random_tensor(rng, rng.choice([3, 4]), 3, allow_odd=False)
        size = rng.choice([(8, 8), (16, 24), (1, 1), (0, 8), (-1, 4), (8,), 8])
        kwargs = {k: rng.choice(v) for k, v in (("scale", [(0.8, 1.0), (0.0, 0.0), (1.0, 0.5), (2.0, 3.0)]),
                                                ("ratio", [(0.75, 1.33), (0.0, 1.0), (5.0, 0.1)]),
                                                ("short_side", [None, (8, 16), (1, 1), (0, 0), (16, 8)]))
                  if rng.random() < 0.3}
        train = rng.random() < 0.6

        def run_transform() -> Any:
            transform = TrainTransform(size, **kwargs) if train else EvalTransform(size)
            return transform(x, torch.Generator().manual_seed(rng.randrange(100)))

        def check_transform(out: Any) -> None:
            valid = isinstance(size, tuple) and len(size) == 2 and min(size) >= 1
            valid = valid or (not train and isinstance(size, int) and size >= 1)  # like resize_center_crop
            expect(valid, "transform accepted size", repr(size))
            want = (size, size) if isinstance(size, int) else size
            expect(tuple(out.shape[-2:]) == want and out.shape[:-2] == x.shape[:-2], "transform: wrong output shape",
                   f"{'Train' if train else 'Eval'}Transform({size}, {kwargs}) {tuple(x.shape)} -> {tuple(out.shape)}")
            expect(finite(out), "transform: NaN from finite input", kwargs)
        return (f"{'TrainTransform' if train else 'EvalTransform'}({size!r}, {short(kwargs)})({short(x)})",
                run_transform, check_transform)
    if name == "folder":
        kind = rng.choice(["image", "image", "video"])
        roots = rng.choice([[media], [media / "rgb.png"], [media / "text.jpg", media / "trunc.png"],
                            [media / "clip.webm"], [media / "audio.mp4", media / "clip.mkv"], [media / "one.png"],
                            [media / "bomb.png"], [media / "exif6.jpg"], [media / "gray16.png"]])
        size = rng.choice([8, 16, 17])
        transform = rng.choice([TrainTransform((size, size)), TrainTransform((size, size), short_side=(8, 32)),
                                EvalTransform((size, size))])
        substitute = rng.random() < 0.6
        frames = rng.choice([1, 2, 4])
        stride = rng.choice([1, 2, 3])
        keys = [(rng.randrange(20), rng.randrange(1000)) for _ in range(rng.choice([1, 3]))]

        def run_folder() -> Any:
            data = MediaFolder(roots, kind, transform, num_frames=frames, frame_stride=stride,
                               random_clips=rng.random() < 0.5, substitute=substitute, max_tries=4)
            items = [data[(index % len(data), seed)] for index, seed in keys]
            return data, items, collate(items)

        def check_folder(out: Any) -> None:
            _data, items, batch = out
            for item in items:
                if item["x"] is None:
                    expect(not substitute and item["error"], "MediaFolder: an item without x or reason")
                    continue
                want = (3, size, size) if kind == "image" else (3, frames, size, size)
                expect(tuple(item["x"].shape) == want, "MediaFolder: wrong item shape",
                       f"{short(roots)} {kind}: {tuple(item['x'].shape)}")
                expect(finite(item["x"]) and float(item["x"].abs().max()) <= 1, "MediaFolder: values out of range")
                expect(item["path"] not in item["skipped"], "MediaFolder: a used file is listed as skipped")
            kept = [i for i in items if i["x"] is not None]
            if batch["x"] is not None:
                expect(batch["x"].shape[0] == len(kept), "collate: batch size differs from the readable items")
        return (f"MediaFolder({short(roots)}, {kind}, {type(transform).__name__}{transform.size}, frames={frames}, "
                f"stride={stride}, substitute={substitute})[{keys}]", run_folder, check_folder)
    if name == "split":
        member = rng.choice(["a.jpg", "scan.2023.01.jpg", "dir/x.y.png", ".hidden", "noext", "dir.d/file", "a.",
                             "", "a/b/", "x.tar.gz", "dir/.png"])

        def check_split(out: Any) -> None:
            stem, ext = out
            if stem is not None:
                expect(f"{stem}.{ext}" == member and "." not in ext and "/" not in ext, "split_last_extension: wrong",
                       f"{member!r} -> {out}")
        return f"split_last_extension({member!r})", lambda: split_last_extension(member), check_split
    if name == "expand":
        patterns = rng.choice([[str(env.shards["dotted"])], [str(env.root / "shards" / "*.tar")], [], ["/no/*.tar"],
                               str(env.shards["dotted"]), [None]])
        return f"expand_shards({short(patterns)})", lambda: expand_shards(patterns), None
    if name == "shards":
        which = rng.choice(["dotted", "mixed", "broken", "empty", "videos", "not"])
        kind = "video" if which == "videos" else "image"
        want_items = rng.choice([1, 3, 5])

        def run_shards() -> Any:
            data = ShardDataset([str(env.shards[which])], kind, EvalTransform((8, 8)), num_frames=2)
            items = []
            for item in data:
                items.append(item)
                if len(items) == want_items:
                    break
            return items

        def check_shards(items: Any) -> None:
            expect(which in ("dotted", "mixed", "videos"), "ShardDataset: items from unreadable shards", which)
            for item in items:
                shape = (3, 8, 8) if kind == "image" else (3, 2, 8, 8)
                expect(tuple(item["x"].shape) == shape, "ShardDataset: wrong item shape", tuple(item["x"].shape))
        return f"ShardDataset({which}.tar, {kind}) first {want_items}", run_shards, check_shards
    paths = [f"f{i}.png" for i in range(rng.choice([0, 1, 2, 7]))]

    def check_describe(out: Any) -> None:
        expect(out.startswith(f"skipped {len(paths)} unreadable file"), "describe_skipped: wrong count", out)
    return f"describe_skipped({len(paths)} paths)", lambda: describe_skipped(paths), check_describe


API_CASES = [(case_model, 40), (case_preset, 8), (case_pretrained, 10), (case_metrics, 18), (case_io, 14),
             (case_data, 10)]


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


def api_campaign(n: int, rng: random.Random, tally: Tally, root: Path, verbose: bool) -> None:
    env = make_api_env(root / "api")
    generators, weights = zip(*API_CASES)
    for i in range(n):
        make = rng.choices(generators, weights)[0]
        case_rng = random.Random(rng.random())
        try:
            label, fn, check = make(case_rng, env)
        except Exception as err:  # a bug of the campaign itself, not of vitok
            raise RuntimeError(f"building API case {i} ({make.__name__}) failed") from err
        with torch.no_grad():
            category = run_case(tally, "api", label, fn, check, seconds=60)
        if verbose:
            print(f"api {i}: {category}: {label}", flush=True)
        if env.model.training:
            env.model.eval()


# ====================================================================== config campaign
BASE_CONFIGS = sorted(p for p in (REPO / "configs").glob("*/*.yaml") if p.parent.name in ("cpu", "paper", "vitok-tiny"))
EXTRA_VALUES = ["[", "{", "'", '"', "]", "}", ":", "a: b", "- x", "!!python/object/apply:os.system ['true']",
                "&anchor 1", "*alias", "?", "|", ">", "0x10", "1_000", "1e3", ".inf", "-.inf", ".nan", "~", "yes",
                "no", "on", "2023-01-01", "\t1", "!!binary aGk=", "!!float 3", "12:30", str(10**30), "1e-400",
                "[1, [2, [3]]]", "{a: {b: {c: 1}}}", "'   '", "null", "-0", "0.0", "1.0e+2", "!!str 5", "%YAML 1.2",
                "---", "...", "\\x00", "é", "\u202e", "[1e-3]", "64x64", "cuda:99", "cpu ", "bf16", "fp64", "1/2"]
MALFORMED = ["run.steps", "=3", "run..steps=3", ".steps=1", "run.steps==3", " run.steps =3", "data=3", "run=[1]",
             "run.steps.x=1", "run.=1", "RUN.steps=3", "run.Steps=3", "run.step=3", "optim=null", "video=null",
             "video=[]", "model.overrides.encoder.width=8", "model.overrides.encoder=8", "loss.perceptual=lpips",
             "data.train=", "data.kind=videos", "run.out_dir=/", "run.precision=fp16", "==", "run.steps=3=4"]
SECTIONS = ["data.", "model.", "loss.", "optim.", "run.", "video.", "data:", "model:", "loss:", "optim:", "run:",
            "video:", "top level"]
STRING_KEYS = ("run.out_dir", "run.device", "model.preset", "model.init_from", "data.train", "data.motion",
               "video.data.train")
FORCED_RUN = ["data.workers=0", "model.preset=N-N/8", "model.init_from=null", "model.kind=vitok", "model.compile=false",
              "run.steps=2", "run.stop_at=null", "run.device=cpu", "run.log_every=1", "run.ckpt_every=1",
              "run.image_every=0", "run.tensorboard=false", "run.progress=false", "run.dist_timeout=60",
              "loss.perceptual=none", "data.motion=[]"]


def config_keys() -> list[str]:
    from vitok.train.config import TrainConfig, VideoMix

    cfg = TrainConfig()
    keys = [f"{section}.{f.name}" for section in ("data", "model", "loss", "optim", "run")
            for f in dataclasses.fields(getattr(cfg, section))]
    keys += [f"video.{f.name}" for f in dataclasses.fields(VideoMix)]
    keys += [f"video.data.{f.name}" for f in dataclasses.fields(cfg.data)]
    keys += ["model.overrides.latent_channels", "model.overrides.patch_size", "model.overrides.encoder",
             "model.overrides.head", "model.autoencoder_kl.latent_channels", "video", "data", "bogus.key", "run.bogus"]
    return keys


def config_value(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        return str(test_config_value(rng))
    if roll < 0.75:
        return rng.choice(EXTRA_VALUES)
    return rng.choice(["0", "1", "2", "-1", "0.5", "1e-4", "3.0e-4", "[32, 64]", "[0.9, 0.95]", "true", "false",
                       "null", "16", "100", "runs/x", "N-N/8", "Ti-Ti/8", "image", "video", "mse", "l1", "ddp"])


def mutate_text(rng: random.Random, text: str) -> tuple[str, str]:
    """One textual mutation of a YAML file: (new text, description)."""
    lines = text.splitlines(keepends=True)
    how = rng.choice(["delete_char", "insert_char", "duplicate_line", "swap_lines", "indent", "dedent", "truncate",
                      "bom", "nul", "latin1", "crlf", "tab", "delete_line"])
    if how in ("delete_char", "insert_char", "truncate", "nul") and text:
        at = rng.randrange(len(text))
        insert = rng.choice(list(":[]{}-#&*!|>'\"\t\n ,?%@`")) if how == "insert_char" else "\x00"
        new = {"delete_char": text[:at] + text[at + 1:], "insert_char": text[:at] + insert + text[at:],
               "truncate": text[:at], "nul": text[:at] + insert + text[at:]}[how]
        return new, f"{how} at {at}"
    if how in ("duplicate_line", "swap_lines", "indent", "dedent", "delete_line", "tab") and lines:
        i = rng.randrange(len(lines))
        if how == "duplicate_line":
            lines.insert(i, lines[i])
        elif how == "swap_lines":
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif how == "indent":
            lines[i] = "  " + lines[i]
        elif how == "dedent":
            lines[i] = lines[i].lstrip()
        elif how == "tab":
            lines[i] = "\t" + lines[i]
        else:
            del lines[i]
        return "".join(lines), f"{how} line {i + 1}"
    if how == "bom":
        return "\ufeff" + text, how
    if how == "latin1":
        return text + "# caf\xe9\n", how
    return text.replace("\n", "\r\n"), how


def mutate_structure(rng: random.Random, data: dict[str, Any]) -> str:
    """One structural mutation of a parsed config, in place; returns its description (with the key)."""
    import difflib  # noqa: F401  (typo keys come from random edits)

    sections = [k for k, v in data.items() if isinstance(v, dict)]
    how = rng.choice(["set", "set", "set", "delete", "rename", "section_scalar", "new_section", "section_list"])
    if how in ("section_scalar", "section_list", "new_section") or not sections:
        extra = ["extra", "Run", "runs", "video"]
        name = rng.choice(extra) if how == "new_section" else rng.choice(sections or ["run"])
        data[name] = {"section_scalar": rng.choice([1, "x", None, True]), "section_list": [1, 2],
                      "new_section": {"every": rng.choice([1, 2, 0])}}[how]
        return f"{how} {name}"
    section = rng.choice(sections)
    keys = list(data[section])
    if how == "set" or not keys:
        fields = [k.split(".", 1)[1] for k in config_keys() if k.startswith(f"{section}.") and k.count(".") == 1]
        key = rng.choice(keys + fields if fields else keys or ["x"])
        value = test_config_value(rng) if rng.random() < 0.6 else rng.choice(
            [[1, 2], {"a": 1}, "", " ", 10**20, -10**20, 1e-30, [], [[32]], "1e3", 2**31, 2**63])
        data[section][key] = value
        return f"set {section}.{key}={value!r}"
    key = rng.choice(keys)
    if how == "delete":
        del data[section][key]
        return f"delete {section}.{key}"
    typo = key[:-1] if len(key) > 1 and rng.random() < 0.5 else key.upper()
    data[section][typo] = data[section].pop(key)
    return f"rename {section}.{key} -> {typo}"


def absurd(cfg: Any) -> str | None:
    """Why an accepted config would make an absurd run (independent of the loader's own checks)."""
    from vitok.train.schedule import warmup_steps  # noqa: F401

    def numbers(obj: Any, prefix: str) -> list[tuple[str, float]]:
        out = []
        if dataclasses.is_dataclass(obj):
            for f in dataclasses.fields(obj):
                out += numbers(getattr(obj, f.name), f"{prefix}{f.name}.")
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                out += numbers(v, prefix)
        elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
            out.append((prefix.rstrip("."), obj))
        return out

    for key, value in numbers(cfg, ""):
        if not math.isfinite(value):
            return f"non-finite {key}={value}"
    o, r, d, loss = cfg.optim, cfg.run, cfg.data, cfg.loss
    rules = [
        (r.steps >= 1, "run.steps < 1"), (r.stop_at is None or r.stop_at >= 1, "run.stop_at < 1"),
        (o.batch_size >= 1 and o.accum >= 1, "batch or accum < 1"),
        (o.batch_size % o.accum == 0, "optim.batch_size not divisible by optim.accum"),
        (cfg.video is None or cfg.video.batch_size % o.accum == 0,
         "video.batch_size not divisible by optim.accum"),
        (o.peak_lr > 0, "peak LR <= 0"), (o.min_lr >= 0, "min_lr < 0"), (o.grad_clip > 0, "grad_clip <= 0"),
        (all(0 <= b < 1 for b in o.betas), "betas outside [0, 1)"), (o.weight_decay >= 0, "weight_decay < 0"),
        (o.warmup >= 0, "warmup < 0"), (r.ema is None or 0 <= r.ema < 1, "ema outside [0, 1)"),
        (all(1 <= s <= 8192 for s in d.sizes), "image size outside [1, 8192]"), (d.num_frames >= 1, "num_frames < 1"),
        (0 < d.scale[0] <= d.scale[1] <= 1, "scale"), (d.frame_stride >= 1, "frame_stride < 1"),
        (bool(str(r.out_dir).strip()), "empty out_dir"), (r.log_every >= 1 and r.ckpt_every >= 1, "every < 1"),
        (r.keep_last >= 0 and r.max_bad_steps >= 1, "keep_last / max_bad_steps"), (0 <= d.workers <= 256, "workers"),
        (loss.disc_lr > 0 and loss.disc_channels >= 1, "discriminator"),
        (all(v >= 0 for k, v in numbers(loss, "") if k.endswith(("weight", "start", "ramp", "warmup"))),
         "negative loss weight"),
        (loss.reconstruction_weight > 0 or loss.ssim_weight > 0 or (loss.perceptual != "none" and
                                                                     loss.perceptual_weight > 0),
         "the loss has no reconstruction term (every reconstruction weight is 0)"),
        (loss.ssim_weight == 0 or min(d.sizes) >= 11, "loss.ssim_weight > 0 with images below SSIM's 11 px window"),
        (r.dist_timeout > 0, "dist_timeout <= 0"),
    ]
    for ok, why in rules:
        if not ok:
            return why
    return None


def config_campaign(n: int, runs: int, rng: random.Random, tally: Tally, root: Path, verbose: bool) -> None:
    import yaml

    from vitok.train.config import load_config

    root = root / "config"
    root.mkdir(parents=True)
    keys = config_keys()
    accepted: list[list[str]] = []
    for i in range(n):
        case_rng = random.Random(rng.random())
        path, overrides, names = None, [], []
        if case_rng.random() < 0.6:
            if case_rng.random() < 0.4:
                path = case_rng.choice(BASE_CONFIGS)
            for _ in range(case_rng.randint(1, 3)):
                if case_rng.random() < 0.08:
                    bad = case_rng.choice(MALFORMED)
                    overrides.append(bad)
                    names += [bad, bad.split("=")[0].strip(), *bad.split("=")[0].split(".")]
                    continue
                key = case_rng.choice(keys)
                overrides.append(f"{key}={config_value(case_rng)}")
                names += [key, *key.split("."), overrides[-1]]
            label = f"load_config({path.relative_to(REPO) if path else None}, {overrides})"
        else:
            base = case_rng.choice(BASE_CONFIGS)
            text = base.read_text()
            if case_rng.random() < 0.5:
                text, how = mutate_text(case_rng, text)
            else:
                data = yaml.safe_load(text)
                how = mutate_structure(case_rng, data)
                text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
                names += [w.strip("'\"") for w in how.replace("=", " ").replace("->", " ").split()[1:]]
                names += [part for w in names for part in w.split(".")]
            path = root / f"case{i}" / base.name
            path.parent.mkdir()
            path.write_bytes(text.encode("utf-8", "surrogateescape") if "\xe9" not in text else text.encode("latin-1"))
            label = f"load_config(mutated {base.relative_to(REPO)}: {how})"
            names += SECTIONS  # a text edit may hit any key: the message must name the file or a section
        names += [path.name] if path is not None else []
        names += ["YAML"]

        def check(cfg: Any) -> None:
            why = absurd(cfg)
            if why is not None:
                raise Silent(f"config accepted with an absurd value ({why.split('=')[0]}): {why}")

        category = run_case(tally, "config", label, lambda path=path, overrides=overrides: load_config(path, overrides),
                            check,
                            names=tuple(dict.fromkeys(names)), seconds=30)
        if verbose:
            print(f"config {i}: {category}: {label}", flush=True)
        if category == "result" and path is None:
            accepted.append(overrides)
    if runs:
        run_accepted(accepted, runs, rng, tally, root, verbose)


def run_accepted(accepted: list[list[str]], runs: int, rng: random.Random, tally: Tally, root: Path,
                 verbose: bool) -> None:
    """Train a few accepted mutations for 2 steps on the nano preset and tiny data, in-process."""
    from vitok import io
    from vitok.train import load_config, train
    from vitok.train.checkpoint import list_checkpoints, load_checkpoint

    data = root / "tiny-data"
    for i in range(6):
        io.save_image(torch.rand(3, 40, 48) * 2 - 1, data / f"{i}.png")
    skip = ("data.train", "model.", "run.steps", "run.stop_at", "run.out_dir", "run.device", "data.workers",
            "data.image_size", "data.short_side", "video", "data.kind", "data.motion", "run.dist", "optim.batch_size",
            "loss.perceptual=", "run.keep_last", "run.ckpt_every", "run.log_every", "run.image_every")
    candidates = [o for o in accepted if not any(a.strip().startswith(skip) for a in o)]
    rng.shuffle(candidates)
    began = time.perf_counter()
    for i, overrides in enumerate(candidates[:runs]):
        out = root / f"run{i}"
        base = [f"data.train=[{data}]", "data.image_size=32", "optim.batch_size=2", f"run.out_dir={out}"]
        argv = [*base, *overrides, *FORCED_RUN]
        label = f"train 2 steps with {overrides}"

        def run(argv: list[str] = argv) -> Any:
            return train(load_config(None, argv))

        def check(scalars: Any, out: Path = out, overrides: list[str] = overrides) -> None:
            found = list_checkpoints(out)
            expect(bool(found), "run: no checkpoint written", overrides)
            state = load_checkpoint(found[-1][1])
            expect(state["step"] == 2, "run: wrong step count", state["step"])
            expect(all(finite(v) for v in state["model"].values()), "run: non-finite weights", overrides)
            expect(all(math.isfinite(v) for v in scalars.values() if isinstance(v, float)), "run: non-finite loss",
                   scalars)
        category = run_case(tally, "config runs", label, run, check, seconds=300)
        if verbose:
            print(f"run {i}: {category}: {label}", flush=True)
    tally.seconds["config runs"] = time.perf_counter() - began  # part of the config part's time


# ====================================================================== CLI campaign
ZERO_OK = {"--seed", "--head-blocks", "--cfg", "--classes", "--interval"}
ABSURD = {"0", "-1", "nan", "inf", "-inf", "-8", "64x0", "0x0", "-1x8"}


def cli_pools(root: Path) -> dict[str, list[str]]:
    """Paths for command lines: real tiny inputs, a model folder, a training config, odd paths."""
    from vitok import ViTok, io

    images, mixed, videos = root / "images", root / "mixed", root / "videos"
    for i in range(3):
        io.save_image(torch.rand(3, 36 + 4 * i, 40) * 2 - 1, images / f"{i}.png")
        io.save_image(torch.rand(3, 24, 20 + 8 * i) * 2 - 1, mixed / f"{i}.png")
    (mixed / "broken.png").write_bytes(b"not a png")
    io.save_image(torch.rand(3, 8, 8) * 2 - 1, mixed / "small.png")
    io.save_video(torch.rand(3, 5, 24, 32) * 2 - 1, videos / "a.mp4", fps=5)
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("hello\n")
    torch.manual_seed(0)
    model_dir = ViTok.from_preset("N-N/8").save_pretrained(root / "model")
    bad_model = root / "bad-model"
    shutil.copytree(model_dir, bad_model)
    (bad_model / "model.safetensors").write_bytes(b"\x00" * 100)
    config = root / "tiny.yaml"
    config.write_text(f"data: {{train: [{images}], image_size: 32, workers: 0}}\nmodel: {{preset: N-N/8}}\n"
                      "optim: {batch_size: 2, lr: 1.0e-3}\nloss: {perceptual: none}\n"
                      f"run: {{out_dir: {root / 'run'}, steps: 2, precision: fp32, log_every: 1, ckpt_every: 1, "
                      "image_every: 0, tensorboard: false, progress: false}\n")
    paths = [str(images), str(mixed), str(videos / "a.mp4"), str(images / "0.png"), str(root / "empty"),
             str(root / "notes.txt"), "/no/such/path", str(mixed / "broken.png")]
    dit = make_dit(root, images)
    return {
        "root": [str(root)], "images": [str(images), str(mixed)], "videos": [str(videos)],
        "model_dir": [str(model_dir)], "config": [str(config)], "dit": dit,
        "paths": paths,
        "models": ["N-N/8", "N-N/8", str(model_dir), str(bad_model), "Q-Q/8", "/no/such/model", "vitok-tiny"],
        "configs": [str(config), str(config), str(root / "notes.txt"), "no_such.yaml", str(root)],
        "overrides": ["run.steps=abc", "run.steps=0", "run.steps=1", "optim.grad_clip=-1", "run.ema=1", "data.kind=x",
                      "run.bogus=1", "loss.kl_weight=nan", "data.image_size=16", "optim.lr=2e-3", "run.seed=3",
                      "run.out_dir=''", "data.train=[]", "{", "=", f"run.out_dir={root / 'run2'}"],
        "sizes": ["32", "24x40", "0", "-1", "abc", "64x0", "17", "16385", "8", "1"],
        "numbers": ["0", "-1", "1", "2", "3", "abc", "1e9", "nan", "inf", "1.5", ""],
        "outs": [str(root / "out" / "a"), str(root / "out" / "b"), str(root / "notes.txt"), "/proc/no-write", ""],
        "choices": ["fp32", "bf16", "fp16", "image", "video", "auto", "cpu", "cuda", "gpu", "psnr", "psnr,ssim",
                    "psnr,bogus", "grid", "lpips", "sd-vae", "vitok", "diffusers", "onnx", "ddim", "heun", "conv",
                    "linear", "fetch", "list", "build", "report", "0/1", "1/2", "2/1", "x"],
    }


def make_dit(root: Path, images: Path) -> list[str]:
    """Latents of the tiny images, a DiT trained on them for 2 steps and reference statistics, for
    ``sample`` / ``eval-gen`` / ``train-dit`` lines: [latents, dit config, DiT folder, ref stats]
    (empty when the setup fails)."""
    from vitok.cli import main
    from vitok.metrics import FeatureStats

    latents, run = root / "latents", root / "dit-run"
    dit_config = root / "dit.yaml"
    dit_config.write_text(f"latents: {latents}\nmodel: {{preset: DiT-T}}\noptim: {{batch_size: 2, lr: 1.0e-3, "
                          f"warmup: 1}}\nrun: {{out_dir: {run}, steps: 2, log_every: 1, ckpt_every: 2, "
                          "progress: false, tensorboard: false}\n")
    stats = FeatureStats()
    stats.update(torch.randn(8, 2048))
    stats.save(root / "ref_stats.npz")
    with captured():
        codes = [main(["cache-latents", str(images), "--model", "N-N/8", "--size", "32", "--out", str(latents)]),
                 main(["train-dit", str(dit_config)])]
    if codes != [0, 0] or not (run / "model").is_dir():
        print(f"warning: the DiT setup failed ({codes}); sample / eval-gen lines only test errors", file=sys.stderr)
        return []
    return [str(latents), str(dit_config), str(run / "model"), str(root / "ref_stats.npz")]


def valid_line(rng: random.Random, pools: dict[str, list[str]], out: str) -> list[str]:
    """A command line that should work (real tiny inputs, the nano model, small sizes)."""
    root, images, model = pools["root"][0], rng.choice(pools["images"]), rng.choice(["N-N/8", pools["model_dir"][0]])
    lines = [
        ["presets"], ["flops", "--model", "N-N/8", "--size", "32"], ["flops", "N-N/2x8", "--frames", "4", "--measure"],
        ["reconstruct", images, "--model", model, "--out", out, "--size", "32"],
        ["reconstruct", pools["videos"][0], "--model", "N-N/2x8", "--out", out, "--size", "32", "--frames", "2"],
        ["demo", "--model", model, "--out", out], ["weights", "list"],
        ["train", pools["config"][0], f"run.out_dir={out}", "run.steps=2"],
        ["train", pools["config"][0], "--print-config"],
        ["eval", images, "--model", model, "--size", "32", "--metrics", "psnr,ssim,grid", "--out", out],
        ["eval", pools["videos"][0], "--model", "N-N/2x8", "--size", "32", "--frames", "2", "--metrics", "psnr",
         "--out", out],
        ["bench", "--model", "N-N/8", "--size", "32", "--repeats", "1", "--precision", "fp32"],
        ["data", "build", out], ["sweep", "report", root],
        ["export", "--model", pools["model_dir"][0], "--out", out, "--name", "tiny", "--stats-data", images, "--size",
         "32", "--dtype", rng.choice(["fp32", "bf16"])],
        ["cache-latents", images, "--model", model, "--out", out, "--size", "32", "--shard-size", "2"],
    ]
    if pools["dit"]:
        _latents, dit_config, dit, ref = pools["dit"]
        lines += [["train-dit", dit_config, f"run.out_dir={out}"],
                  ["sample", "--dit", dit, "--n", "2", "--steps", "2", "--out", out, "--batch-size", "2"],
                  ["eval-gen", "--dit", dit, "--ref-stats", ref, "--n", "2", "--steps", "2", "--out", out]]
    return list(rng.choice(lines))


def mutate_line(rng: random.Random, argv: list[str], pools: dict[str, list[str]]) -> list[str]:
    """One edit of a command line: a value replaced by an odd one, a token dropped or repeated, a
    foreign flag added."""
    argv = list(argv)
    how = rng.choice(["value", "value", "value", "drop", "repeat", "foreign"])
    if how == "value" and len(argv) > 1:
        i = rng.randrange(1, len(argv))
        option = argv[i - 1] if argv[i - 1].startswith("--") else ""
        odd = option_values(option, pools, rng) if option and rng.random() < 0.5 else rng.choice(TEST_CLI_VALUES)
        argv[i] = odd
    elif how == "drop" and len(argv) > 1:
        del argv[rng.randrange(1, len(argv))]
    elif how == "repeat" and len(argv) > 1:
        i = rng.randrange(1, len(argv))
        argv.insert(i, argv[i])
    else:
        argv += [rng.choice(TEST_CLI_FLAGS), rng.choice(TEST_CLI_VALUES)]
    return argv


def option_values(option: str, pools: dict[str, list[str]], rng: random.Random) -> str:
    if option in ("--model", "--tokenizer", "--dit"):
        return rng.choice(pools["models"])
    if option in ("--size", "--sizes", "--stats-size"):
        return rng.choice(pools["sizes"])
    if option in ("--out", "--cache", "--work"):
        return rng.choice(pools["outs"])
    if option in ("--data", "--stats-data", "--labels", "--ref-stats", "--baseline-weights", "--from", "--card"):
        return rng.choice(pools["paths"])
    if option in ("--metrics", "--precision", "--precisions", "--kind", "--device", "--baseline", "--vs", "--dtype",
                  "--format", "--sampler", "--head", "--shard"):
        return rng.choice(pools["choices"])
    return rng.choice(pools["numbers"])


def cli_line(rng: random.Random, parsers: dict[str, argparse.ArgumentParser], pools: dict[str, list[str]]) -> list[str]:
    """A random command line: a working one (sometimes with one edit), the fuzz test's, or the
    command's own options with fitting or odd values."""
    roll = rng.random()
    if roll < 0.45:
        out = str(Path(pools["outs"][0]).parent / f"o{rng.randrange(10**6)}")
        argv = valid_line(rng, pools, out)
        return mutate_line(rng, argv, pools) if rng.random() < 0.5 else argv
    if roll < 0.5:  # the fuzz test's own generator (its paths never exist)
        from tests.test_fuzz_cli import command_line

        return command_line(random.Random(rng.random()))
    if rng.random() < 0.03:
        return rng.choice([[], ["--help"], ["--version"], ["-x"], ["nosuchcommand"], ["--", "train"]])
    command = rng.choice(sorted(parsers) + list(TEST_CLI_COMMANDS[:4]))
    parser = parsers[command]
    options = [o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
    positionals = [a for a in parser._actions if not a.option_strings]
    argv = [command]
    for action in positionals:
        if rng.random() < 0.15:
            continue
        if action.choices:
            argv.append(rng.choice(list(action.choices)) if rng.random() < 0.85 else rng.choice(pools["choices"]))
        elif action.dest == "config":
            argv.append(rng.choice(pools["configs"]))
        elif action.dest == "overrides":
            argv += rng.sample(pools["overrides"], rng.choice([0, 0, 1, 2]))
        elif action.dest in ("inputs", "dir", "out", "names"):
            argv += [rng.choice(pools["paths"]) for _ in range(rng.choice([0, 1, 1, 2]))]
        elif action.dest == "name":
            argv.append(rng.choice(["N-N/8", "S-B/16", "x"]))
        else:
            argv.append(rng.choice(pools["paths"] + pools["configs"]))
    for _ in range(rng.choice([0, 1, 2, 2, 3, 4])):
        roll = rng.random()
        if roll < 0.8 and options:
            option = rng.choice(options)
            action = parser._option_string_actions[option]
            argv.append(option)
            if action.nargs == 0:
                continue
            count = 2 if action.nargs == 2 else (rng.choice([1, 1, 2]) if action.nargs in ("+", "*") else 1)
            if rng.random() < 0.05:
                count = 0  # a missing value
            for _ in range(count):
                if action.choices and rng.random() < 0.7:
                    argv.append(str(rng.choice(list(action.choices))))
                else:
                    argv.append(option_values(option, pools, rng))
        elif roll < 0.9:
            argv.append(rng.choice(TEST_CLI_FLAGS))
            argv.append(rng.choice(TEST_CLI_VALUES))
        else:
            argv.append(rng.choice([*TEST_CLI_VALUES, "--", "-", "--=", "--model=N-N/8", "--size=32"]))
    if command in ("eval", "bench", "cache-latents", "reconstruct", "demo", "export") and "--size" not in argv and \
            "--sizes" not in argv:
        argv += ["--size", rng.choice(["32", "24x40"])]  # the default 256 px is slow on a busy CPU
    if command == "bench" and "--repeats" not in argv:
        argv += ["--repeats", "1"]
    if command == "eval" and "--metrics" not in argv and rng.random() < 0.8:
        argv += ["--metrics", rng.choice(["psnr,ssim", "psnr,grid", "psnr,ssim,lpips", "psnr"])]
    if command == "weights":
        argv += ["--cache", str(Path(pools["outs"][0]).parent / "weights-cache")]
    return argv


def cli_absurd(argv: list[str]) -> str | None:
    """The first absurd option value (or override) in a command line that should not exit 0."""
    for option, value in zip(argv, argv[1:]):
        if option.startswith("--") and option not in ZERO_OK and value in ABSURD:
            return f"{option} {value}"
    for token in argv:
        if token in ("run.steps=0", "optim.grad_clip=-1", "run.ema=1", "loss.kl_weight=nan", "run.out_dir=''"):
            return token
    return None


def outputs_ok(argv: list[str]) -> str | None:
    """For a command that exited 0: why its outputs are wrong (nothing written where --out or
    run.out_dir points, a file other users cannot read under a 022 umask), or None."""
    target = None
    if "--out" in argv and argv.index("--out") + 1 < len(argv) and argv[0] not in ("flops", "bench", "presets"):
        target = Path(argv[argv.index("--out") + 1])
    for token in argv:
        if token.startswith("run.out_dir=") and argv[0] in ("train", "train-dit") and "--print-config" not in argv:
            target = Path(token.split("=", 1)[1])
    if target is None or not str(target).startswith(tempfile.gettempdir()):
        return None
    files = [p for p in target.rglob("*") if p.is_file()] if target.is_dir() else []
    if not files:
        return f"{argv[0]}: exit 0 but nothing written to {target.name}"
    private = [p for p in files if not p.stat().st_mode & 0o004 and not p.name.startswith(".")]
    if private and os.umask(os.umask(0o022)) == 0o022:
        return f"{argv[0]}: files not readable by others under umask 022"
    return None


def judge_cli(argv: list[str], code: Any, out: str, err: str) -> tuple[str, str]:
    lines = [line for line in err.splitlines() if line.strip()]
    if "Traceback (most recent call last)" in err or "Traceback" in out:
        at = next((line.strip() for line in reversed(lines) if line.strip().startswith("File ")), "?")
        return "traceback", f"traceback printed (exit {code}) near {at[:80]}"
    if code == 0:
        bad = cli_absurd(argv)
        if bad is not None and "--help" not in argv and "-h" not in argv:
            return "silent", f"exit 0 with an absurd value: {bad.split()[0].split('=')[0]}"
        wrong = outputs_ok(argv)
        return ("silent", wrong) if wrong else ("result", "")
    if code not in (1, 2):
        return "traceback", f"exit status {code!r}"
    errors = [line for line in lines if "error:" in line]
    if len(errors) != 1 or errors[0] != lines[-1]:
        return "traceback", f"exit {code} without exactly one error line at the end"
    return "clear", ""


def cli_campaign(n: int, rng: random.Random, tally: Tally, root: Path, verbose: bool) -> None:
    import vitok.tools.data_build
    import vitok.tools.weights_fetch
    from vitok.cli import build_parser, main, subcommands

    root = root / "cli"
    root.mkdir(parents=True)
    pools = cli_pools(root)
    parsers = subcommands(build_parser())

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise OSError("Network is unreachable (the fuzz campaign keeps the network down)")

    vitok.tools.data_build.fetch_trees = no_network
    vitok.tools.weights_fetch.fetch = no_network
    cwd = Path.cwd()
    for i in range(n):
        argv = cli_line(random.Random(rng.random()), parsers, pools)
        work = root / f"cwd{i % 20}"
        work.mkdir(exist_ok=True)
        os.chdir(work)  # default outputs (out/...) land in a scratch folder
        code: Any = None
        try:
            with captured() as (out, err), deadline(900 if "--compile" in argv else 240):  # compiling takes minutes
                try:
                    code = main(argv)
                except SystemExit as exit_info:
                    code = exit_info.code
            category, kind = judge_cli(argv, code, out.getvalue(), err.getvalue())
            example = f"vitok {' '.join(argv)} -> exit {code}: {one_line(err.getvalue())[-200:]}"
        except (Exception, Timeout) as error:
            category, kind = judge_error(error)
            category = "traceback"
            example = f"vitok {' '.join(argv)} -> {type(error).__name__}: {error}"
        finally:
            os.chdir(cwd)
        tally.add("cli", category, kind, example)
        if verbose:
            print(f"cli {i}: {category}: vitok {' '.join(argv)} -> {code}", flush=True)


# ====================================================================== main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", type=int, default=500, help="random API calls")
    parser.add_argument("--config", type=int, default=400, help="config mutations")
    parser.add_argument("--cli", type=int, default=40, help="random command lines")
    parser.add_argument("--runs", type=int, default=6, help="accepted config mutations trained for 2 steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("vitok").setLevel(logging.WARNING)
    tally = Tally()
    root = Path(tempfile.mkdtemp(prefix="vitok-fuzz-"))
    start = time.perf_counter()
    try:
        for part, count, run in (("api", args.api, lambda r: api_campaign(args.api, r, tally, root, args.verbose)),
                                 ("config", args.config, lambda r: config_campaign(args.config, args.runs, r, tally,
                                                                                    root, args.verbose)),
                                 ("cli", args.cli, lambda r: cli_campaign(args.cli, r, tally, root, args.verbose))):
            if count <= 0:
                continue
            began = time.perf_counter()
            run(random.Random(f"{args.seed}:{part}"))
            tally.seconds[part] = time.perf_counter() - began
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(tally.report())
    print(f"seed {args.seed}: {tally.faults()} tracebacks and silent wrong results in "
          f"{time.perf_counter() - start:.0f} s" + (f" (scratch kept in {root})" if args.keep else ""))
    return 1 if tally.faults() else 0


if __name__ == "__main__":
    sys.exit(main())
