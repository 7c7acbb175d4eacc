"""Training configuration: typed sections, loaded from YAML with ``key=value`` overrides.

    vitok train configs/cpu/stage1_tiny.yaml run.steps=200 data.image_size=64 model.preset=N-N/8

Every field has a type (its annotation) and, where it matters, a range (the section's ``ranges``,
declared beside its fields); both are checked before any work (:mod:`vitok.train.schema`). Unknown
keys, values of the wrong type or out of range, YAML syntax errors (with the file and line) and
inconsistent combinations (:func:`check_config`) raise a one-line ``ValueError`` naming the key,
the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from vitok.checks import Rule, check_ranges
from vitok.data.config import DataConfig
from vitok.losses.config import LossConfig
from vitok.train.schema import from_dict, read_yaml

DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")  # run.device


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

    ranges: ClassVar[dict[str, Rule]] = {
        "batch_size": (lambda v: v >= 1, ">= 1"),
        "lr": (lambda v: v is None or v > 0, "null (scaled from base_lr) or > 0"),
        "base_lr": (lambda v: v > 0, "> 0"),
        "min_lr": (lambda v: v >= 0, ">= 0"),
        "betas": (lambda v: all(0 <= b < 1 for b in v), "two values in [0, 1)"),
        "weight_decay": (lambda v: v >= 0, ">= 0"),
        "warmup": (lambda v: v >= 0, ">= 0 (a fraction of run.steps below 1, else a step count)"),
        "grad_clip": (lambda v: v > 0, "> 0 (a gradient-norm bound; a large value clips nothing)"),
        "accum": (lambda v: v >= 1, ">= 1"),
    }

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

    ranges: ClassVar[dict[str, Rule]] = {
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
    }


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

    ranges: ClassVar[dict[str, Rule]] = {
        "every": (lambda v: v >= 1, ">= 1"),
        "batch_size": (lambda v: v >= 1, ">= 1"),
    }
    # a video mix's data is video unless it says otherwise (vitok.train.schema.from_dict)
    section_defaults: ClassVar[dict[str, dict[str, Any]]] = {"data": {"kind": "video"}}

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

    @property
    def crop_sizes(self) -> list[int]:
        """Every training crop side in pixels: the image sizes, then the video section's."""
        return self.data.sizes + (self.video.data.sizes if self.video is not None else [])


def check_config(cfg: TrainConfig) -> TrainConfig:
    """Checks before any work: every section's ``ranges`` (also for a config built in Python),
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
        if min(cfg.crop_sizes) < need:
            raise ValueError(f"data.image_size {min(cfg.crop_sizes)} is below the {need} px that loss.perceptual="
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


ConfigT = TypeVar("ConfigT")


def load_config(path: str | Path | None, overrides: list[str] = (),
                schema: type[ConfigT] = TrainConfig) -> ConfigT:
    """The one config loader: a checked ``schema`` (:class:`TrainConfig` for ``vitok train``,
    ``vitok.generate.config.DiTTrainConfig`` for ``vitok train-dit``) from a YAML file (or the
    defaults) plus ``key=value`` overrides. The file's ``schema.path_keys`` resolve against its
    folder; then ``checked()`` checks across fields. One-line ``ValueError`` naming the key (or the
    file and line) for anything wrong."""
    return from_dict(schema, read_yaml(path, overrides, schema.path_keys)).checked()
