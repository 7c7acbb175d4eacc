"""The fixtures of the API cases: odd image and video files, tar shards, a saved model, a malicious pickle."""

from __future__ import annotations

import io as pyio
import struct
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

Add = Callable[..., Path]  # add(name, **facts) -> the file's path under the media folder


def make_media(root: Path) -> dict[str, dict[str, Any]]:
    """Odd image and video files under ``root/media``: name -> {"path", and what a reader must give}."""
    media = root / "media"
    media.mkdir(parents=True)
    files: dict[str, dict[str, Any]] = {}

    def add(name: str, **facts: Any) -> Path:
        files[name] = {"path": media / name, **facts}
        return media / name

    rgb = add_images(add)
    add_broken_images(media, add, rgb)
    add_videos(add)
    add_broken_videos(media, add)
    return files


def add_images(add: Add) -> np.ndarray:
    """Readable images of every odd mode; returns the 24 x 32 RGB picture they are made of."""
    from PIL import Image

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
    return rgb


def add_broken_images(media: Path, add: Add, rgb: np.ndarray) -> None:
    """Empty, truncated, text, a decompression bomb, a JPEG named .png, a folder, a dangling link."""
    from PIL import Image

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


def add_videos(add: Add) -> None:
    """Readable videos of several codecs and containers, and an audio-only MP4."""
    import av

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


def add_broken_videos(media: Path, add: Add) -> None:
    """A truncated, an empty and a text MP4, and a PNG named .mp4."""
    good = (media / "rgb.png").read_bytes()
    clip = (media / "clip.mp4").read_bytes()
    add("trunc.mp4").write_bytes(clip[: len(clip) // 3])
    add("empty.mp4").write_bytes(b"")
    add("text.mp4").write_text("not a video\n")
    add("image_named.mp4", frames=1, hw=(24, 32)).write_bytes(good)  # FFmpeg sniffs the content: one frame


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
