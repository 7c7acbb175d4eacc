"""The one registry of named model sizes: the tokenizer's (:data:`TOWERS`, :data:`PRESETS`) and the
DiT's (:data:`DIT_SIZES`).

Tower sizes (paper Table 1, plus small CPU towers) combine into a model name
``{encoder}-{decoder}/{p}`` (images) or ``{encoder}-{decoder}/{q}x{p}`` (video): ``S-B/16`` is an
S encoder, a B decoder and 16x16 patches; ``S-B/4x8`` uses 4x8x8 tubelets. The paper's named
models and the CPU ones are listed in :data:`PRESETS` with their default input size; any other
combination of towers and patch sizes can be built by name as well.
"""

from __future__ import annotations

import re

from vitok.checks import describe
from vitok.model_config import DiTConfig, TowerConfig, ViTokConfig

TOWERS: dict[str, TowerConfig] = {
    # CPU-sized towers for tests and training on a laptop
    "N": TowerConfig(width=64, depth=2, heads=2),  # nano: unit tests
    "Ti": TowerConfig(width=192, depth=4, heads=3),  # tiny
    "XS": TowerConfig(width=384, depth=6, heads=6),  # extra small
    # the paper's towers (Table 1)
    "S": TowerConfig(width=768, depth=6, heads=12),
    "B": TowerConfig(width=768, depth=12, heads=12),
    "L": TowerConfig(width=1152, depth=24, heads=16),
}

DEFAULT_MODEL = "vitok-tiny-conv"  # the shipped tokenizer that `vitok demo` / `reconstruct` / `eval` use by default

IMAGE_SIZE = (256, 256)  # paper default for image models
VIDEO_SHAPE = (16, 128, 128)  # paper default (T, H, W) for video models

_NAME = re.compile(r"^(?P<enc>[A-Za-z]+)-(?P<dec>[A-Za-z]+)/(?:(?P<q>\d+)x)?(?P<p>\d+)$")


def _named(name: str, size: tuple[int, int] | None = None, frames: int | None = None) -> ViTokConfig:
    config = parse_name(name)
    changes: dict[str, object] = {}
    if size is not None:
        changes["image_size"] = size
    if frames is not None:
        changes["num_frames"] = frames
    return config.replace(**changes)


def parse_name(name: str) -> ViTokConfig:
    """Build the config for any ``ENC-DEC/p`` or ``ENC-DEC/qxp`` name from :data:`TOWERS`;
    ``TypeError`` for a name that is not a string, ``ValueError`` for an unknown one (or a patch or
    tubelet size of 0)."""
    if not isinstance(name, str):
        raise TypeError(f"a model name must be a string (a preset or ENC-DEC/p), got {describe(name)}")
    match = _NAME.match(name)
    if not match or match["enc"] not in TOWERS or match["dec"] not in TOWERS:
        raise ValueError(
            f"unknown model {name!r}: expected a preset ({', '.join(PRESETS)}) or "
            f"ENC-DEC/p or ENC-DEC/qxp with towers from {sorted(TOWERS)}"
        )
    q = int(match["q"] or 1)
    is_video = match["q"] is not None
    return ViTokConfig(
        encoder=TOWERS[match["enc"]],
        decoder=TOWERS[match["dec"]],
        patch_size=int(match["p"]),
        tubelet_size=q,
        image_size=VIDEO_SHAPE[1:] if is_video else IMAGE_SIZE,
        num_frames=VIDEO_SHAPE[0] if is_video else 1,
        name=name,
    )


PRESETS: dict[str, ViTokConfig] = {
    # the paper's image models (256x256 by default)
    "S-B/16": _named("S-B/16"),
    "S-L/16": _named("S-L/16"),
    # the paper's video models (16 x 128 x 128 by default)
    "S-B/4x8": _named("S-B/4x8"),
    "S-B/8x8": _named("S-B/8x8"),
    "S-B/4x16": _named("S-B/4x16"),
    # CPU-sized models
    "N-N/8": _named("N-N/8", size=(64, 64)),  # unit tests
    "N-N/2x8": _named("N-N/2x8", size=(32, 32), frames=4),  # unit tests, video
    "Ti-Ti/8": _named("Ti-Ti/8", size=(128, 128)),
    "Ti-XS/8": _named("Ti-XS/8", size=(128, 128)),
    "Ti-Ti/4x8": _named("Ti-Ti/4x8", size=(64, 64), frames=8),
}


def get_config(name: str, /, **overrides: object) -> ViTokConfig:
    """The config of a preset (or any parseable name) with ``ViTokConfig`` fields overridden (any
    field, ``name`` included); ``TypeError`` for an unknown field or a name that is not a string."""
    config = PRESETS[name] if isinstance(name, str) and name in PRESETS else parse_name(name)
    return config.replace(**overrides) if overrides else config


def list_presets() -> list[str]:
    """Names of the registered presets, in registry order."""
    return list(PRESETS)


DIT_SIZES: dict[str, tuple[int, int, int]] = {  # width, depth, heads (DiT paper, Table 1) and a CPU one
    "DiT-T": (128, 4, 4), "DiT-S": (384, 12, 6), "DiT-B": (768, 12, 12), "DiT-L": (1024, 24, 16),
    "DiT-XL": (1152, 28, 16),
}
"""The DiT sizes that ``vitok train-dit`` takes as ``model.preset`` (:func:`dit_config`)."""


def dit_config(name: str, **overrides: object) -> DiTConfig:
    """The config of a named DiT size, with DiTConfig fields overridden (``ValueError`` for an
    unknown size, an unknown field or a bad value)."""
    if name not in DIT_SIZES:
        raise ValueError(f"unknown DiT {name!r}; choose from {list(DIT_SIZES)}")
    width, depth, heads = DIT_SIZES[name]
    return DiTConfig.from_dict({"width": width, "depth": depth, "heads": heads, "name": name, **overrides})
