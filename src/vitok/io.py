"""Reading and writing images (Pillow) and videos (PyAV) as tensors in [-1, 1].

Layouts: an image is (3, H, W), a video (3, T, H, W), float32 with values in [-1, 1].
"""

from __future__ import annotations

import math
import os
import struct
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vitok.checks import check_int, check_number, check_tensor, describe

if TYPE_CHECKING:
    import av
    from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".gif")
VIDEO_WRITE_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".gif")  # containers of H.264 (and GIF)


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_video_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def to_uint8(x: Tensor) -> Tensor:
    """[-1, 1] floats -> rounded, clamped values in {0..255} (kept as float32)."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round()


def from_uint8(x: Tensor) -> Tensor:
    """Values in [0, 255] -> [-1, 1] (the inverse of :func:`to_uint8` on its outputs)."""
    return x / 127.5 - 1


def uint8_to_tensor(array: np.ndarray) -> Tensor:
    """(..., H, W, 3) uint8 -> (3, ..., H, W) float32 in [-1, 1]."""
    return from_uint8(torch.from_numpy(np.array(array, dtype=np.float32))).movedim(-1, 0)


def tensor_to_uint8(x: Tensor) -> np.ndarray:
    """(3, ..., H, W) in [-1, 1] -> (..., H, W, 3) uint8 (rounded, clamped)."""
    return to_uint8(x.detach()).to(torch.uint8).movedim(0, -1).cpu().numpy()


# What Pillow raises on malformed or hostile files (beyond OSError): truncated or inconsistent
# headers surface as SyntaxError / struct.error / EOFError / IndexError / ZeroDivisionError, a
# header declaring more than 2 * Image.MAX_IMAGE_PIXELS pixels as DecompressionBombError.
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, ZeroDivisionError)


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """A Pillow image of any mode -> (H, W, 3) uint8 RGB.

    16-bit and 32-bit integer grey ("I;16*", "I") is rescaled from 0..65535 (v -> round(v / 257))
    instead of being clipped at 255; float grey ("F") is taken as 0..255; images with an alpha
    channel or a transparent palette are composited onto white; every other mode (palette, 1-bit,
    CMYK, YCbCr, ...) goes through Pillow's RGB conversion.
    """
    from PIL import Image

    if image.mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64)
        grey = np.round(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode == "F":
        grey = np.round(np.clip(np.nan_to_num(np.asarray(image, np.float64)), 0, 255)).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def _upright(image: Image.Image) -> Image.Image:
    """The image as a viewer shows it: its EXIF orientation (tags 2-8) applied. A malformed EXIF
    block leaves the image as stored."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(image)
    except (*_IMAGE_ERRORS, KeyError, TypeError):
        return image


def load_image(path: str | Path | BinaryIO, min_side: int | None = None) -> Tensor:
    """An image file (or file object) -> (3, H, W) float32 in [-1, 1], as a viewer shows it.

    Every mode Pillow opens is handled (see :func:`_to_rgb_array`: 16-bit grey is rescaled,
    alpha composited onto white) and the EXIF orientation is applied, so H and W are the
    displayed ones. ``min_side``: allow the JPEG decoder to downscale by a power of two while the
    shorter side stays at least this long (much faster for large photos that are resized anyway).

    Raises ``ValueError`` ("cannot read image <path>: <reason>") for an unreadable, truncated or
    undecodable file and for a decompression bomb (a header declaring more than
    ``2 * PIL.Image.MAX_IMAGE_PIXELS`` pixels), so every loader skips such files the same way.
    """
    from PIL import Image

    check_int("min_side", min_side, 1, optional=True)
    if not isinstance(path, (str, os.PathLike)) and not hasattr(path, "read"):
        raise TypeError(f"path must be a file path or a binary file object, got {describe(path)}")
    try:
        with Image.open(path) as image:
            if min_side is not None and image.format == "JPEG":
                w, h = image.size
                scale = max(min_side / min(w, h), 1 / 8)
                image.draft("RGB", (max(1, round(w * scale)), max(1, round(h * scale))))
            array = _to_rgb_array(_upright(image))
    except Image.UnidentifiedImageError as err:
        raise ValueError(f"cannot read image {path}: {_why(path, 'not an image file Pillow can decode')}") from err
    except (*_IMAGE_ERRORS, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read image {path}: {err or type(err).__name__}") from err
    return uint8_to_tensor(array)


def save_image(x: Tensor, path: str | Path) -> None:
    """(3, H, W) in [-1, 1] -> an image file (format from the extension, one of
    :data:`IMAGE_EXTENSIONS`). ``TypeError`` / ``ValueError`` naming the argument for another
    tensor or extension; ``ValueError`` naming the file when Pillow cannot write it."""
    from PIL import Image

    check_tensor("x", x, (3,), floating=True, channels=3, channel_dim=0, layout="(3, H, W)")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {describe(path)}")
    if not is_image_file(path):
        raise ValueError(f"path {path} must end in an image extension ({', '.join(IMAGE_EXTENSIONS)})")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        Image.fromarray(tensor_to_uint8(x)).save(path)
    except (ValueError, KeyError) as err:  # OSError (disk full, read-only) passes through as it is
        raise ValueError(f"cannot write image {path}: {err}") from None


def _source(path: str | Path | BinaryIO) -> str | BinaryIO:
    """A file name for PyAV, or a file-like object rewound to its start."""
    if isinstance(path, (str, Path)):
        return str(path)
    path.seek(0)
    return path


def _video_stream(container: av.container.InputContainer, path: object) -> av.video.stream.VideoStream:
    """The first video stream; ``ValueError`` naming the file when it has none (e.g. audio only)."""
    if not container.streams.video:
        raise ValueError(f"cannot read video {path}: the file has no video stream")
    stream = container.streams.video[0]
    if not (stream.codec_context.width > 0 and stream.codec_context.height > 0):  # probing found no frame
        raise ValueError(f"cannot read video {path}: no decodable video stream (FFmpeg found no frame size)")
    return stream


def _count_frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                  fps: float) -> int:
    """Frames of ``stream``: the header's count, else from the stream's duration, else by
    demuxing its packets (nothing decoded). Matroska / WebM store neither count nor stream
    duration, and their container duration may include the first frame's time offset (a clip
    cut from a longer one), so they are counted."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base:
        return int(stream.duration * stream.time_base * fps + 1e-6)
    return sum(1 for packet in container.demux(stream) if packet.size)


def video_info(path: str | Path | BinaryIO) -> tuple[int, float]:
    """(frame count, frames per second) of a video file; the count may be an estimate from the
    duration when the container stores none. Raises ``ValueError`` naming the file if it cannot
    be opened or has no video stream."""
    import av

    try:
        with av.open(_source(path)) as container:
            stream = _video_stream(container, path)
            fps = float(stream.average_rate or 25)
            frames = _count_frames(container, stream, fps)
    except (av.error.FFmpegError, OSError) as err:
        raise ValueError(f"cannot read video {path}: {_why(path, _reason(err))}") from err
    return frames, fps


def _reason(err: Exception) -> str:
    """FFmpeg's own words for a decoding error, without the raw '[Errno 1094995529]' code; its
    'Input/output error' for a damaged container says so."""
    import av

    text = (getattr(err, "strerror", None) or str(err)).strip() or type(err).__name__
    if isinstance(err, av.error.FFmpegError) and text == "Input/output error":
        text += " (FFmpeg could not parse the container: a damaged or truncated file)"
    return text


def _why(path: object, reason: str) -> str:
    """Why a file could not be decoded: 'an empty file (0 bytes)' for a 0-byte file path, else the
    decoder's ``reason`` (file objects and missing files keep it)."""
    try:
        empty = isinstance(path, (str, os.PathLike)) and os.path.getsize(path) == 0
    except OSError:
        empty = False
    return "an empty file (0 bytes)" if empty else reason


def _upright_frame(frame: av.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8 of a decoded frame with the container's rotation (display matrix)
    applied, so a phone video recorded upright is returned upright."""
    array = frame.to_ndarray(format="rgb24")
    quarter_turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4  # counter-clockwise
    return np.ascontiguousarray(np.rot90(array, quarter_turns)) if quarter_turns else array


def _decode(path: str | Path, num_frames: int | None, start: int, stride: int,
            seek: bool) -> list[np.ndarray] | None:
    """Frames by index; with ``seek``, jump to the keyframe before ``start`` and index frames by
    timestamp, counted from the stream's first timestamp (which need not be 0). Returns None
    when timestamps turn out unreliable (not increasing)."""
    import av

    frames: list[np.ndarray] = []
    with av.open(_source(path)) as container:
        stream = _video_stream(container, path)
        fps = float(stream.average_rate or 25)
        first = stream.start_time or 0  # in stream.time_base units
        if seek:
            container.seek(first + int(start / fps / stream.time_base), stream=stream, backward=True)
        last_pts = None
        for sequential, frame in enumerate(container.decode(stream)):
            if seek:
                if frame.pts is None or (last_pts is not None and frame.pts <= last_pts):
                    return None
                last_pts = frame.pts
            index = round((frame.pts - first) * stream.time_base * fps) if seek else sequential
            if index < start or (index - start) % stride:
                continue
            frames.append(_upright_frame(frame))
            if num_frames is not None and len(frames) == num_frames:
                break
    return frames


def load_video(path: str | Path, num_frames: int | None = None, start: int = 0, stride: int = 1) -> Tensor:
    """Decode frames ``start, start + stride, ...`` (``num_frames`` of them, or all) of a video.

    For a late ``start`` it seeks to the keyframe before it (falling back to decoding from the
    beginning when the file's timestamps are not increasing). Frames are turned upright by the
    container's rotation metadata. Returns (3, T, H, W) float32 in [-1, 1]. Raises ``ValueError``
    naming the file for an unreadable file, one without a video stream, frames of changing size,
    or no frames in the requested range, and ``TypeError`` / ``ValueError`` naming the argument
    unless ``num_frames`` is None or >= 1, ``start`` >= 0 and ``stride`` >= 1.
    """
    import av

    check_int("num_frames", num_frames, 1, optional=True)
    check_int("start", start, 0)
    check_int("stride", stride, 1)
    try:
        frames = _decode(path, num_frames, start, stride, seek=True) if start > 0 else None
        if frames is None:
            frames = _decode(path, num_frames, start, stride, seek=False)
    except (av.error.FFmpegError, OSError, IndexError) as err:
        raise ValueError(f"cannot read video {path}: {_why(path, _reason(err))}") from err
    if not frames:
        raise ValueError(f"video {path} has no frames from index {start}")
    if len({f.shape for f in frames}) > 1:
        raise ValueError(f"cannot read video {path}: frame size changes within the clip")
    return uint8_to_tensor(np.stack(frames))


def save_video(x: Tensor, path: str | Path, fps: float = 10.0) -> None:
    """(3, T, H, W) in [-1, 1] -> an H.264 (.mp4, .mkv, .mov, .avi) or .gif file at ``fps`` frames per second (any
    positive rate, e.g. 29.97). Odd sizes are padded for H.264. ``TypeError`` / ``ValueError``
    naming the argument for another tensor, rate or extension."""
    import av

    check_tensor("x", x, (4,), floating=True, channels=3, channel_dim=0, layout="(3, T, H, W)")
    check_number("fps", fps, 0, low_open=True)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {describe(path)}")
    if Path(path).suffix.lower() not in VIDEO_WRITE_EXTENSIONS:
        raise ValueError(f"path {path} must end in {', '.join(VIDEO_WRITE_EXTENSIONS)} (H.264 or GIF)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gif = path.suffix.lower() == ".gif"
    if not gif:
        x = F.pad(x.float(), (0, x.shape[-1] % 2, 0, x.shape[-2] % 2), mode="replicate")
    frames = tensor_to_uint8(x)  # (T, H, W, 3)
    with av.open(str(path), mode="w") as container:
        rate = Fraction(fps).limit_denominator(1001)  # keeps 29.97, 3.5, ... exactly
        stream = container.add_stream("gif" if gif else "libx264", rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb8" if gif else "yuv420p"
        if not gif:
            stream.options = {"crf": "18"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic, antialiased resize of (..., H, W) floats in [-1, 1] to ``size`` (H, W), clamped to
    [-1, 1]; the input itself when it already has that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    flat = x.reshape(-1, 1, h, w).float()  # CPU has no antialiased bicubic for half types
    out = F.interpolate(flat, size=tuple(size), mode="bicubic", antialias=True, align_corners=False)
    return out.reshape(*lead, *size).clamp(-1, 1).to(x.dtype)


def resize_center_crop(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Resize the shorter side to fit, then center-crop to ``size`` (the evaluation protocol).

    x: (..., H, W) float; resizing is bicubic with antialiasing, output clamped to [-1, 1].
    ``size``: an int >= 1 or (H, W) of such ints (``TypeError`` / ``ValueError`` otherwise).
    """
    if isinstance(size, (list, tuple)) and len(size) == 2:
        th, tw = size
    elif isinstance(size, int) and not isinstance(size, bool):
        th = tw = size
    else:
        raise TypeError(f"size must be an int or (H, W), got {describe(size)}")
    check_int("size", th, 1)
    check_int("size", tw, 1)
    check_tensor("x", x, floating=True, layout="(..., H, W)")
    if x.ndim < 2:
        raise ValueError(f"x must be a (..., H, W) tensor, got {describe(x)}")
    h, w = x.shape[-2:]
    scale = max(th / h, tw / w)
    nh, nw = max(th, math.ceil(h * scale - 1e-6)), max(tw, math.ceil(w * scale - 1e-6))
    x = resize(x, (nh, nw))
    top, left = (nh - th) // 2, (nw - tw) // 2
    return x[..., top:top + th, left:left + tw]
