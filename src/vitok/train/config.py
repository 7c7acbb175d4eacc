"""Training configuration: typed sections, loaded from YAML with ``key=value`` overrides.

    vitok train configs/cpu/stage1_tiny.yaml run.steps=200 data.image_size=64 model.preset=N-N/8

Every field has a type (its annotation) and, where it matters, a range (:data:`RANGES`); both are
checked before any work. Unknown keys, values of the wrong type or out of range, YAML syntax
errors (with the file and line) and inconsistent combinations (:func:`check_config`) raise a
one-line ``ValueError`` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml

from vitok.data.loader import DataConfig
from vitok.losses.autoencoder import LossConfig


@dataclass
class ModelSection:
    """What to train.

    Attributes:
        preset: a vitok preset or ENC-DEC/p name.
        overrides: ViTokConfig fields, e.g. {latent_channels: 32, qk_norm: true}.
        init_from: a saved model directory or a training checkpoint to start from (stage 2).
        freeze_encoder: train only the decoder and its in/out projections (stage 2).
        grad_checkpointing: recompute block activations in the backward pass.
        compile: ``torch.compile`` the model.
        kind: "vitok", or "autoencoder-kl" to train a diffusers AutoencoderKL baseline the same way.
        autoencoder_kl: ``diffusers.AutoencoderKL`` keyword arguments for ``kind: autoencoder-kl``.
    """

    preset: str = "Ti-Ti/8"
    overrides: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    freeze_encoder: bool = False
    grad_checkpointing: bool = False
    compile: bool = False
    kind: Literal["vitok", "autoencoder-kl"] = "vitok"
    autoencoder_kl: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """AdamW and the LR schedule (paper: betas 0.9/0.95, wd 1e-4, LR 1e-4 x batch/256, 3% warm-up,
    cosine to 1e-5, clip 1.0)."""

    batch_size: int = 256  # global batch per optimiser step (all ranks, all micro-batches)
    lr: float | None = None  # peak LR; None = base_lr * batch_size / 256
    base_lr: float = 1e-4
    min_lr: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 1e-4
    warmup: float = 0.03  # fraction of steps (or a step count if >= 1)
    grad_clip: float = 1.0
    accum: int = 1  # gradient-accumulation micro-batches per step

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else self.base_lr * self.batch_size / 256


@dataclass
class RunConfig:
    """Run directory, length, precision, checkpoints, logging, scale-out."""

    out_dir: str = "runs/default"
    steps: int = 100_000
    stop_at: int | None = None  # stop (resumably) at this step, e.g. to time-slice a long run
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: Literal["fp32", "bf16"] = "bf16"
    ema: float | None = None  # EMA decay of the trained weights (0.9999 in stage 2)
    log_every: int = 10
    image_every: int = 500
    ckpt_every: int = 1000
    keep_last: int = 3
    max_bad_steps: int = 20  # consecutive non-finite steps before the run stops
    dist_timeout: float = 600.0  # seconds a collective may wait for a dead or frozen rank
    distributed: Literal["ddp", "fsdp"] = "ddp"
    tensorboard: bool = True
    progress: bool = True


@dataclass
class VideoMix:
    """Video steps interleaved with the image steps of ``data``: one tokenizer for both.

    Attributes:
        data: the video source (``kind: video``; real clips and/or camera-motion ``motion`` photos).
        every: every k-th optimiser step is a video step (2 = alternate).
        batch_size: global number of clips per video step.
    """

    data: DataConfig = field(default_factory=lambda: DataConfig(kind="video"))  # kind defaults to video
    every: int = 2
    batch_size: int = 8

    def is_video_step(self, step: int) -> bool:
        return step % self.every == self.every - 1

    def steps_before(self, step: int) -> tuple[int, int]:
        """(image steps, video steps) among steps 0 .. step-1."""
        return step - step // self.every, step // self.every


@dataclass
class TrainConfig:
    """The tokenizer's training run (``vitok train``). Every config that :func:`load_config` reads
    (this one, the DiT's ``DiTTrainConfig``) names the paths in a file that resolve against the
    file's folder (``path_keys``) and checks itself across fields (``checked``)."""

    # Paths to source data in a config file resolve against the file's folder, so a config runs the
    # same from any directory. Run artifacts (run.out_dir, model.init_from: usually another run's
    # output) and command-line overrides resolve against the current directory, where runs write.
    path_keys: ClassVar[tuple[str, ...]] = ("data.train", "data.motion", "video.data.train", "video.data.motion")

    data: DataConfig = field(default_factory=DataConfig)
    video: VideoMix | None = None
    model: ModelSection = field(default_factory=ModelSection)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def checked(self) -> TrainConfig:
        return check_config(self)


# ---------------------------------------------------------------------- dict -> dataclass
def _coerce(value: Any, kind: Any, key: str) -> Any:
    """Check / convert a YAML value to the annotated type."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # an optional value: its own error names the problem
            return _coerce(value, options[0], key)
        for option in options:
            try:
                return _coerce(value, option, key)
            except ValueError:
                continue
        raise ValueError(f"{key}: {value!r} does not fit {kind}")
    if origin is Literal:
        if value not in args:
            import difflib

            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            raise ValueError(f"{key}: {value!r} is not one of {list(args)}"
                             + (f"; did you mean {close[0]!r}?" if close else ""))
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ValueError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if origin is list:
        items = value if isinstance(value, (list, tuple)) else [value]
        return [_coerce(v, args[0], key) for v in items]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(kind):
        return from_dict(kind, value, f"{key}.")
    if kind is float and not isinstance(value, bool) and isinstance(value, (int, float, str)):
        try:  # YAML 1.1 reads "1e-3" as a string
            number = float(value)
        except ValueError:
            number = None
        if number is not None and math.isfinite(number):
            return number
        if number is not None:
            raise ValueError(f"{key}: expected a finite number, got {value!r}")
    if kind is Any or (isinstance(kind, type) and isinstance(value, kind) and not
                       (kind is int and isinstance(value, bool))):
        return value
    raise ValueError(f"{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")


def from_dict(cls: type, data: dict[str, Any] | None, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict; unknown keys, wrong types and values out of
    the ranges of :data:`RANGES` raise ``ValueError`` naming the key."""
    data = data or {}
    if not isinstance(data, dict):
        raise ValueError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        import difflib

        close = difflib.get_close_matches(str(unknown[0]), sorted(names), n=1)
        hint = f"; did you mean {prefix}{close[0]}?" if close else ""
        raise ValueError(f"unknown config keys {[f'{prefix}{k}' for k in unknown]}; "
                         f"{prefix or 'top level'} accepts {sorted(names)}{hint}")
    values = {}
    for k, v in data.items():
        if isinstance(v, dict) and (cls, k) in SECTION_DEFAULTS:
            v = {**SECTION_DEFAULTS[cls, k], **v}
        values[k] = _coerce(v, hints[k], f"{prefix}{k}")
    try:
        section = cls(**values)
    except ValueError as err:  # a section's own __post_init__ check
        message = str(err)
        raise ValueError(message if message.startswith(prefix) else f"{prefix.rstrip('.')}: {message}") from None
    check_ranges(section, prefix)
    return section


# ---------------------------------------------------------------------- ranges
Rule = tuple[Callable[[Any], bool], str]  # (predicate on a type-checked value, what is allowed)
MAX_SIDE = 8192  # largest training crop: beyond this no accelerator holds the activations
DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _sizes(value: int | list[int]) -> list[int]:
    return value if isinstance(value, list) else [value]


RANGES: dict[type, dict[str, Rule]] = {
    DataConfig: {
        "image_size": (lambda v: bool(_sizes(v)) and all(1 <= s <= MAX_SIDE for s in _sizes(v)),
                       f"an int or a non-empty list of ints in [1, {MAX_SIDE}]"),
        "num_frames": (lambda v: 1 <= v <= 4096, "in [1, 4096]"),
        "frame_stride": (lambda v: v >= 1, ">= 1"),
        "scale": (lambda v: 0 < v[0] <= v[1] <= 1, "[lo, hi] with 0 < lo <= hi <= 1"),
        "short_side": (lambda v: v is None or 1 <= v[0] <= v[1] <= 4 * MAX_SIDE,
                       f"null or [lo, hi] with 1 <= lo <= hi <= {4 * MAX_SIDE}"),
        "workers": (lambda v: 0 <= v <= 256, "in [0, 256]"),
        "motion_repeat": (lambda v: v >= 1, ">= 1"),
        "train_repeat": (lambda v: v >= 1, ">= 1"),
    },
    LossConfig: {
        **{name: (lambda v: v >= 0, ">= 0") for name in (
            "reconstruction_weight", "kl_weight", "perceptual_weight", "perceptual_start", "perceptual_ramp",
            "perceptual_shift", "ssim_weight", "gan_weight", "gan_start", "gan_ramp", "disc_warmup")},
        "perceptual_every": (lambda v: v >= 1, ">= 1"),
        "perceptual_crop": (lambda v: 0 < v <= 1, "in (0, 1]"),
        "disc_lr": (lambda v: v > 0, "> 0"),
        "disc_channels": (lambda v: 1 <= v <= 4096, "in [1, 4096]"),
    },
    OptimConfig: {
        "batch_size": (lambda v: v >= 1, ">= 1"),
        "lr": (lambda v: v is None or v > 0, "null (scaled from base_lr) or > 0"),
        "base_lr": (lambda v: v > 0, "> 0"),
        "min_lr": (lambda v: v >= 0, ">= 0"),
        "betas": (lambda v: all(0 <= b < 1 for b in v), "two values in [0, 1)"),
        "weight_decay": (lambda v: v >= 0, ">= 0"),
        "warmup": (lambda v: v >= 0, ">= 0 (a fraction of run.steps below 1, else a step count)"),
        "grad_clip": (lambda v: v > 0, "> 0 (a gradient-norm bound; a large value clips nothing)"),
        "accum": (lambda v: v >= 1, ">= 1"),
    },
    RunConfig: {
        "out_dir": (lambda v: bool(v.strip()), "a non-empty path"),
        "steps": (lambda v: v >= 1, ">= 1"),
        "stop_at": (lambda v: v is None or v >= 1, "null or >= 1"),
        "seed": (lambda v: 0 <= v < 2**31, "in [0, 2^31)"),
        "device": (lambda v: bool(DEVICE.match(v)), "auto, cpu, mps, cuda or cuda:N"),
        "ema": (lambda v: v is None or 0 <= v < 1, "null (no EMA) or a decay in [0, 1)"),
        "log_every": (lambda v: v >= 1, ">= 1"),
        "image_every": (lambda v: v >= 0, ">= 0 (0 = never)"),
        "ckpt_every": (lambda v: v >= 1, ">= 1"),
        "keep_last": (lambda v: v >= 0, ">= 0 (0 = keep all)"),
        "max_bad_steps": (lambda v: v >= 1, ">= 1"),
        "dist_timeout": (lambda v: v > 0, "> 0 (seconds)"),
    },
    VideoMix: {
        "every": (lambda v: v >= 1, ">= 1"),
        "batch_size": (lambda v: v >= 1, ">= 1"),
    },
}
SECTION_DEFAULTS: dict[tuple[type, str], dict[str, Any]] = {
    (VideoMix, "data"): {"kind": "video"},  # a video section's data is video unless it says otherwise
}


def check_ranges(section: object, prefix: str = "") -> None:
    """``ValueError`` "<prefix><key> must be <allowed>, got <value>" for the first field of a
    config section outside its range in :data:`RANGES` (sections without rules pass)."""
    for name, (ok, allowed) in RANGES.get(type(section), {}).items():
        value = getattr(section, name)
        if not ok(value):
            raise ValueError(f"{prefix}{name} must be {allowed}, got {value!r}")


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Set ``a.b.c=value`` (value parsed as YAML) in a nested dict, in place; ``ValueError`` for a
    malformed assignment or value."""
    if "=" not in assignment:
        raise ValueError(f"override {assignment!r} must look like section.key=value")
    key, raw = assignment.split("=", 1)
    *parents, leaf = key.strip().split(".")
    if not all(part.strip() for part in (*parents, leaf)):
        raise ValueError(f"override {assignment!r} must look like section.key=value")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {assignment!r}: {part} is not a section")
    try:
        node[leaf] = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ValueError(f"override {assignment!r}: the value is not valid YAML ({_yaml_problem(err)})") from None


def _yaml_problem(err: yaml.YAMLError) -> str:
    """'line 3, column 7: could not find expected ':'' from a YAML error, on one line."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem


def resolve_relative(data: dict[str, Any], keys: tuple[str, ...], base: Path) -> None:
    """Rewrite the relative local paths (a string or a list of them) under the dotted ``keys`` of
    ``data`` as ``base / path``, in place; absolute paths, URLs (``scheme://``) and WebDataset
    ``pipe:`` sources are kept."""
    for key in keys:
        *parents, last = key.split(".")
        section = data
        for name in parents:
            section = section.get(name) if isinstance(section, dict) else None
        if not isinstance(section, dict) or last not in section:
            continue

        def resolve(value: Any) -> Any:
            if not isinstance(value, str) or "://" in value or value.startswith("pipe:") or Path(value).is_absolute():
                return value
            return str(Path(os.path.normpath(base / value)))

        value = section[last]
        section[last] = [resolve(v) for v in value] if isinstance(value, list) else resolve(value)


def read_yaml(path: str | Path | None, overrides: list[str] = (),
              relative_to_file: tuple[str, ...] = ()) -> dict[str, Any]:
    """The mapping in a YAML config file (empty for None or an empty file) with ``key=value``
    overrides applied; the file's paths under ``relative_to_file`` (dotted keys) resolve against
    the file's folder (:func:`resolve_relative`). ``ValueError`` naming the file (and the line) for
    a missing file, a folder, a YAML syntax error or a top level that is not a mapping."""
    data: Any = {}
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"config {path} is a folder, not a YAML file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ValueError(f"config {path} does not exist") from None
        except yaml.YAMLError as err:
            raise ValueError(f"config {path}: YAML syntax error at {_yaml_problem(err)}") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"config {path} cannot be read: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"config {path}: expected a mapping of sections (data:, model:, ...) at the top "
                             f"level, got {data!r}")
        resolve_relative(data, relative_to_file, path.parent)
    for assignment in overrides:
        apply_override(data, assignment)
    return data


def check_config(cfg: TrainConfig) -> TrainConfig:
    """Checks before any work: every section's :data:`RANGES` (also for a config built in Python),
    then across fields: the model preset and its overrides, batch sizes divisible by
    ``optim.accum``, the LR schedule, the video section,
    image sizes the perceptual loss accepts, ``run.out_dir`` not a file. Returns ``cfg``; raises
    one-line ``ValueError`` naming the key."""
    from vitok.model_config import ViTokConfig, tower_overrides
    from vitok.presets import get_config

    for name in ("data", "loss", "optim", "run"):
        check_ranges(getattr(cfg, name), f"{name}.")
    if cfg.video is not None:
        check_ranges(cfg.video, "video.")
        check_ranges(cfg.video.data, "video.data.")

    if cfg.model.kind == "vitok":
        fields = sorted(f.name for f in dataclasses.fields(ViTokConfig))
        unknown = sorted(set(cfg.model.overrides) - set(fields))
        if unknown:
            raise ValueError(f"model.overrides: unknown keys {unknown} (ViTokConfig fields: {fields})")
        try:
            get_config(cfg.model.preset, **tower_overrides(cfg.model.overrides, "model.overrides."))
        except ValueError as err:
            raise ValueError(f"model.preset={cfg.model.preset!r} / model.overrides: {err}") from None
    accum = cfg.optim.accum
    for key, batch in (("optim.batch_size", cfg.optim.batch_size),
                       ("video.batch_size", cfg.video.batch_size if cfg.video is not None else accum)):
        if batch % accum:
            raise ValueError(f"{key} {batch} must be divisible by optim.accum {accum} (each step is {accum} "
                             f"micro-batches of {key.split('.')[0]} batch_size / accum samples)")
    if cfg.video is not None and cfg.video.data.kind != "video":
        raise ValueError(f"video.data.kind must be 'video', got {cfg.video.data.kind!r}")
    if cfg.loss.perceptual != "none":
        need = 16 if cfg.loss.perceptual == "lpips-vgg" else 31  # the LPIPS networks' smallest input
        sizes = cfg.data.sizes + (cfg.video.data.sizes if cfg.video is not None else [])
        if min(sizes) < need:
            raise ValueError(f"data.image_size {min(sizes)} is below the {need} px that loss.perceptual="
                             f"{cfg.loss.perceptual} needs (or set loss.perceptual=none)")
    if Path(cfg.run.out_dir).exists() and not Path(cfg.run.out_dir).is_dir():
        raise ValueError(f"run.out_dir must be a folder, {cfg.run.out_dir} is a file")
    return cfg


def check_data_paths(cfg: TrainConfig) -> None:
    """Before a run builds anything: ``data.train`` is not empty and every local data path exists
    (globs, URLs and ``pipe:`` sources are left to the loader). One-line ``ValueError`` /
    ``FileNotFoundError`` naming the key."""
    sections = [("data", cfg.data)] + ([("video.data", cfg.video.data)] if cfg.video is not None else [])
    for prefix, data in sections:
        if not data.train and not data.motion:
            raise ValueError(f"{prefix}.train is empty: name image / video folders, files or shards")
        for key in ("train", "motion"):
            for path in getattr(data, key):
                remote = "://" in path or path.startswith("pipe:") or any(c in path for c in "*?[{")
                if not remote and not Path(path).exists():
                    raise FileNotFoundError(f"{prefix}.{key}: {path} does not exist")


def to_yaml(config: dict[str, Any]) -> str:
    """A config dict (``TrainConfig.to_dict()``, tuples as lists) as YAML text, in field order."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value

    return yaml.safe_dump(plain(config), sort_keys=False)


ConfigT = TypeVar("ConfigT")


def load_config(path: str | Path | None, overrides: list[str] = (),
                schema: type[ConfigT] = TrainConfig) -> ConfigT:
    """The one config loader: a checked ``schema`` (:class:`TrainConfig` for ``vitok train``,
    ``vitok.generate.trainer.DiTTrainConfig`` for ``vitok train-dit``) from a YAML file (or the
    defaults) plus ``key=value`` overrides. The file's ``schema.path_keys`` resolve against its
    folder; then ``checked()`` checks across fields. One-line ``ValueError`` naming the key (or the
    file and line) for anything wrong."""
    return from_dict(schema, read_yaml(path, overrides, schema.path_keys)).checked()
