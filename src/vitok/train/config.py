"""Training configuration: typed sections, loaded from YAML with ``key=value`` overrides.

    vitok train configs/cpu/stage1_tiny.yaml run.steps=200 data.image_size=64 model.preset=N-N/8

Unknown keys and values of the wrong type raise ``ValueError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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

    data: DataConfig = field(default_factory=lambda: DataConfig(kind="video"))
    every: int = 2
    batch_size: int = 8

    def is_video_step(self, step: int) -> bool:
        return step % self.every == self.every - 1

    def steps_before(self, step: int) -> tuple[int, int]:
        """(image steps, video steps) among steps 0 .. step-1."""
        return step - step // self.every, step // self.every


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    video: VideoMix | None = None
    model: ModelSection = field(default_factory=ModelSection)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------- dict -> dataclass
def _coerce(value: Any, kind: Any, key: str) -> Any:
    """Check / convert a YAML value to the annotated type."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, key)
            except ValueError:
                continue
        raise ValueError(f"{key}: {value!r} does not fit {kind}")
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{key}: {value!r} is not one of {list(args)}")
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
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if kind is Any or (isinstance(kind, type) and isinstance(value, kind) and not
                       (kind is int and isinstance(value, bool))):
        return value
    raise ValueError(f"{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")


def from_dict(cls: type, data: dict[str, Any] | None, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict; unknown keys raise ``ValueError``."""
    data = data or {}
    if not isinstance(data, dict):
        raise ValueError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown config keys {[f'{prefix}{k}' for k in unknown]}; "
                         f"{prefix or 'top level'} accepts {sorted(names)}")
    return cls(**{k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in data.items()})


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Set ``a.b.c=value`` (value parsed as YAML) in a nested dict, in place."""
    if "=" not in assignment:
        raise ValueError(f"override {assignment!r} must look like section.key=value")
    key, raw = assignment.split("=", 1)
    *parents, leaf = key.strip().split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {assignment!r}: {part} is not a section")
    node[leaf] = yaml.safe_load(raw)


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file (or defaults) plus ``key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        data = yaml.safe_load(Path(path).read_text()) or {}
    for assignment in overrides:
        apply_override(data, assignment)
    return from_dict(TrainConfig, data)
