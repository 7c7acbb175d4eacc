"""Image and video reading/writing and the evaluation resize."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import smooth_image
from vitok import io


def test_image_png_roundtrip_is_exact_after_quantisation(tmp_path) -> None:
    x = smooth_image(20, 30)
    io.save_image(x, tmp_path / "x.png")
    y = io.load_image(tmp_path / "x.png")
    assert y.shape == (3, 20, 30)
    assert (y - x).abs().max().item() <= 1 / 127.5 + 1e-6


def test_video_mp4_roundtrip(tmp_path) -> None:
    frames = torch.stack([smooth_image(32, 48, 3).roll(2 * i, dims=-1) for i in range(6)], dim=1)
    io.save_video(frames, tmp_path / "v.mp4", fps=5)
    back = io.load_video(tmp_path / "v.mp4")
    assert back.shape == frames.shape
    assert (back - frames).abs().mean().item() < 0.05
    assert io.load_video(tmp_path / "v.mp4", num_frames=2, start=1, stride=2).shape == (3, 2, 32, 48)
    count, fps = io.video_info(tmp_path / "v.mp4")
    assert count == 6 and fps == pytest.approx(5)


def test_odd_sized_video_and_gif(tmp_path) -> None:
    frames = torch.rand(3, 3, 15, 17) * 2 - 1
    io.save_video(frames, tmp_path / "v.mp4")
    assert io.load_video(tmp_path / "v.mp4").shape == (3, 3, 16, 18)
    io.save_video(frames, tmp_path / "v.gif")
    assert io.load_video(tmp_path / "v.gif").shape[1] == 3


def test_unreadable_files_raise_value_error(tmp_path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ValueError, match="cannot read image"):
        io.load_image(tmp_path / "bad.jpg")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match=r"cannot read video .*empty.mp4: an empty file \(0 bytes\)"):
        io.load_video(tmp_path / "empty.mp4")
    with pytest.raises(ValueError, match=r"an empty file \(0 bytes\)"):
        io.video_info(tmp_path / "empty.mp4")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"cannot read image .*empty.png: an empty file \(0 bytes\)"):
        io.load_image(tmp_path / "empty.png")
    # a cut-off clip: FFmpeg's 'Input/output error' is said to mean a damaged file
    io.save_video(torch.zeros(3, 4, 32, 32), tmp_path / "whole.mp4")
    (tmp_path / "cut.mp4").write_bytes((tmp_path / "whole.mp4").read_bytes()[:200])
    with pytest.raises(ValueError, match="cannot read video") as caught:
        io.load_video(tmp_path / "cut.mp4")
    assert "Errno" not in str(caught.value)


@pytest.mark.parametrize(("hw", "size"), [((100, 200), 64), ((300, 120), (32, 48)), ((64, 64), 64), ((10, 10), 32)])
def test_resize_center_crop(hw, size) -> None:
    x = torch.rand(3, 4, *hw) * 2 - 1
    out = io.resize_center_crop(x, size)
    expected = (size, size) if isinstance(size, int) else size
    assert out.shape == (3, 4, *expected)
    assert out.min() >= -1 and out.max() <= 1


def test_center_crop_takes_the_middle() -> None:
    x = torch.zeros(3, 10, 30)
    x[:, :, 10:20] = 1
    assert io.resize_center_crop(x, 10).min().item() == 1.0


# ---------------------------------------------------------------- real-world image files (issue #13)
def test_16bit_grey_png_is_rescaled_not_clipped(tmp_path) -> None:
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 65535, 16 * 16).reshape(16, 16).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    got = io.tensor_to_uint8(io.load_image(tmp_path / "grey16.png")).astype(np.float64)  # (H, W, 3)
    assert got.shape == (16, 16, 3)
    assert np.abs(got - np.round(ramp / 257.0)[..., None]).max() <= 1  # not saturated at 255


def test_every_pillow_mode_loads_as_rgb(tmp_path) -> None:
    import numpy as np
    from PIL import Image

    rgb = Image.fromarray(io.tensor_to_uint8(smooth_image(12, 10)))
    transparent = Image.new("RGBA", (10, 12), (0, 0, 0, 0))  # fully transparent black: shows white
    images = {"p.png": rgb.convert("P"), "l.png": rgb.convert("L"), "la.png": rgb.convert("LA"),
              "one.png": rgb.convert("1"), "cmyk.jpg": rgb.convert("CMYK"), "rgba.png": transparent,
              "f.webp": rgb}
    for name, image in images.items():
        image.save(tmp_path / name)
        x = io.load_image(tmp_path / name)
        assert x.shape == (3, 12, 10) and x.min() >= -1 and x.max() <= 1, name
    white = io.tensor_to_uint8(io.load_image(tmp_path / "rgba.png"))
    assert np.all(white == 255)  # alpha composited onto white, not the hidden black


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(tmp_path, orientation: int) -> None:
    import numpy as np
    from PIL import Image, ImageOps

    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = 255  # stored 20 x 40 (H x W), left half white
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    with Image.open(tmp_path / "photo.jpg") as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(np.float64)
    got = io.tensor_to_uint8(io.load_image(tmp_path / "photo.jpg")).astype(np.float64)
    assert got.shape == expected.shape and np.abs(got - expected).mean() < 3
    drafted = io.load_image(tmp_path / "photo.jpg", min_side=8)  # the JPEG draft path of the loaders
    assert (drafted.shape[1] > drafted.shape[2]) == (expected.shape[0] > expected.shape[1])


def test_decompression_bomb_is_an_unreadable_image(tmp_path) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)  # claims 10^10 RGB pixels
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                                        + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b""))
    with pytest.raises(ValueError, match=r"cannot read image .*bomb\.png.*decompression bomb"):
        io.load_image(tmp_path / "bomb.png")


# ---------------------------------------------------------------- real-world video files (issue #13)
def _write_counting_video(path, codec: str, frames: int = 30, base: int = 20, step: int = 6,
                          offset: int = 0) -> None:
    """A 16x16 clip whose frame i is grey level base + step * i (the index can be read back), its
    first frame at ``offset`` / 10 s (a clip cut from a longer one)."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), base + step * i, np.uint8), format="rgb24")
            frame.pts = offset + i if offset else None
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize(("ext", "codec"), [("webm", "libvpx"), ("mkv", "mpeg4")])
def test_containers_without_frame_count_sample_random_strided_clips(tmp_path, ext: str, codec: str) -> None:
    from vitok.data import MediaFolder, TrainTransform

    path = tmp_path / f"clip.{ext}"
    _write_counting_video(path, codec)
    frames, fps = io.video_info(path)
    assert 28 <= frames <= 30 and fps == pytest.approx(10)
    data = MediaFolder([path], "video", TrainTransform((16, 16), hflip=False), num_frames=3, frame_stride=2)
    starts, spacings = set(), []
    for seed in range(8):
        x = data[(0, seed)]["x"]  # (3, 3, 16, 16)
        index = (((x[:, :, 8, 8].mean(0) + 1) * 127.5 - 20) / 6).round()
        starts.add(int(index[0]))
        spacings.append(float(index[-1] - index[0]) / 2)
    assert len(starts) > 3  # random clip starts, not always frame 0
    assert sorted(spacings)[len(spacings) // 2] == pytest.approx(2, abs=0.5)  # frame_stride honoured


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_late_starts_index_frames_from_the_first_timestamp(tmp_path, ext: str) -> None:
    path = tmp_path / f"cut.{ext}"
    _write_counting_video(path, "mpeg4", frames=40, base=16, step=5, offset=25)  # first frame at 2.5 s
    assert io.video_info(path)[0] == 40  # not 65: a container duration that includes the offset is not used

    whole = io.load_video(path)

    def index(clip: torch.Tensor) -> list[int]:  # the frame of the whole clip each one is
        return [min(range(whole.shape[1]), key=lambda i: (whole[:, i] - frame).abs().mean().item())
                for frame in clip.unbind(1)]

    assert whole.shape[1] == 40 and index(whole[:, :3]) == [0, 1, 2]
    for start in (20, 30):  # seeking: before, frame 0 and frame 5
        assert index(io.load_video(path, 2, start=start, stride=2)) == [start, start + 2]


def test_video_without_video_stream_is_unreadable(tmp_path) -> None:
    import av
    import numpy as np

    path = tmp_path / "audio_only.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        for i in range(3):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    for read in (io.video_info, io.load_video):
        with pytest.raises(ValueError, match=r"audio_only\.mp4: the file has no video stream"):
            read(path)


def test_video_rotation_metadata_is_applied(tmp_path) -> None:
    import av
    import numpy as np

    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        stream.set_display_rotation(90)  # stored landscape, shown portrait
        stored = np.zeros((16, 32, 3), np.uint8)
        stored[:, :8] = 255  # white on the stored left edge
        for _ in range(2):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    clip = io.load_video(path)
    assert clip.shape == (3, 2, 32, 16)  # H and W as displayed
    shown = io.tensor_to_uint8(clip[:, 0])[..., 0].astype(float)  # (32, 16)
    assert shown[-8:].mean() > 200 and shown[:8].mean() < 50  # rotated counter-clockwise: left edge -> bottom


def test_io_arguments_are_checked_naming_them(tmp_path) -> None:
    io.save_video(torch.zeros(3, 2, 16, 16), tmp_path / "v.mp4")
    for kwargs, error, name in (({"stride": 0}, ValueError, "stride"), ({"start": -1}, ValueError, "start"),
                                ({"num_frames": 0}, ValueError, "num_frames"), ({"stride": 1.5}, TypeError, "stride")):
        with pytest.raises(error, match=name):
            io.load_video(tmp_path / "v.mp4", **kwargs)
    with pytest.raises(ValueError, match="min_side"):
        io.load_image(tmp_path / "v.mp4", min_side=0)
    for size, error in ((0, ValueError), ((8, -1), ValueError), (1.5, TypeError), ((1, 2, 3), TypeError)):
        with pytest.raises(error, match="size"):
            io.resize_center_crop(torch.zeros(3, 8, 8), size)
    with pytest.raises(ValueError, match="fps"):
        io.save_video(torch.zeros(3, 2, 16, 16), tmp_path / "w.mp4", fps=0)


def test_writers_and_resize_check_tensors_paths_and_half_types(tmp_path) -> None:
    """Fuzz campaign kinds: wrong tensors reached Pillow / PyAV (raw TypeError, ``Unexpected numpy
    array shape``), unknown extensions raised Pillow's ValueError, half types had no bicubic kernel."""
    for bad, error in ((torch.zeros(2, 9, 9), ValueError), (torch.zeros(1, 16, 9), ValueError),
                       (torch.zeros(3, 4, 8, 8), ValueError), (torch.zeros(3, 8, 8, dtype=torch.uint8), TypeError),
                       ([[0.0]], TypeError)):
        with pytest.raises(error, match="x must be"):
            io.save_image(bad, tmp_path / "a.png")
    for name in ("a", "a.xyz"):
        with pytest.raises(ValueError, match="image extension"):
            io.save_image(torch.zeros(3, 8, 8), tmp_path / name)
    with pytest.raises(ValueError, match=r"x must be a \(3, T, H, W\)"):
        io.save_video(torch.zeros(2, 3, 8, 8), tmp_path / "v.mp4")
    with pytest.raises(ValueError, match=r"must end in \.mp4"):
        io.save_video(torch.zeros(3, 2, 8, 8), tmp_path / "v.webm")
    io.save_video(torch.zeros(3, 2, 9, 9, dtype=torch.float16), tmp_path / "v.mkv")  # odd size, half, Matroska
    assert io.video_info(tmp_path / "v.mkv")[0] == 2
    for dtype in (torch.bfloat16, torch.float16):
        out = io.resize_center_crop(torch.rand(3, 33, 20, dtype=dtype) * 2 - 1, (8, 12))
        assert out.shape == (3, 8, 12) and out.dtype == dtype and torch.isfinite(out.float()).all()
    for bad in (torch.zeros(3, 8, 8, dtype=torch.int64), torch.zeros(0, 8, 8), "x"):
        with pytest.raises((TypeError, ValueError), match="x must"):
            io.resize_center_crop(bad, 4)
    with pytest.raises(TypeError, match="path must be a file path or a binary file object"):
        io.load_image(None)


def test_a_file_ffmpeg_probes_without_a_frame_size_is_not_a_video(tmp_path) -> None:
    """Fuzz campaign kind: a text file named .jpg opened as a 1-frame MJPEG "video" of size 0x0."""
    (tmp_path / "text.jpg").write_text("this is not an image\n")
    with pytest.raises(ValueError, match="text.jpg: no decodable video stream"):
        io.video_info(tmp_path / "text.jpg")
    with pytest.raises(ValueError, match="text.jpg"):
        io.load_video(tmp_path / "text.jpg")
    io.save_image(smooth_image(8, 8), tmp_path / "still.png")
    assert io.video_info(tmp_path / "still.png")[0] == 1  # a real image is a 1-frame video to FFmpeg
