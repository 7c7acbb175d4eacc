"""The config of ``vitok train-dit`` (:class:`DiTTrainConfig`), kept free of torch so that the
command checks a config file, and prints it with ``--print-config``, before torch loads; the
trainer is :mod:`vitok.generate.trainer`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from vitok.train.config import OptimConfig, RunConfig


@dataclass
class DiTSection:
    """``preset``: a DiT size from ``vitok presets`` (DiT-T for CPU tests, DiT-S ... DiT-XL as in
    the paper, arXiv 2501.09755);
    ``overrides``: fields of its :class:`vitok.model_config.DiTConfig` to change."""

    preset: str = "DiT-T"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class DiTTrainConfig:
    """``latents``: a folder written by ``vitok cache-latents``; ``objective``: "ddpm" (noise
    prediction, 1000 linear-beta steps, the paper's) or "flow" (rectified flow, velocity)."""

    latents: str = ""
    model: DiTSection = field(default_factory=DiTSection)
    objective: Literal["ddpm", "flow"] = "ddpm"
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(batch_size=256, lr=1e-4, min_lr=1e-4,
                                                                      weight_decay=0.0, warmup=0))
    run: RunConfig = field(default_factory=lambda: RunConfig(out_dir="runs/dit", ema=0.9999))

    path_keys: ClassVar[tuple[str, ...]] = ()  # ``latents`` is a run artifact: it resolves against the cwd

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def checked(self) -> DiTTrainConfig:
        """Every field is checked as it is read (:func:`vitok.train.schema.from_dict`)."""
        return self


def check_latents(cfg: DiTTrainConfig) -> None:
    """Before a run builds anything (and before torch loads): ``latents`` names a latent cache, a
    folder with the ``stats.json`` that ``vitok cache-latents`` writes. One-line ``ValueError`` /
    ``FileNotFoundError`` naming the key; the shards are checked when the run reads them."""
    if not cfg.latents:
        raise ValueError("latents is empty: name a folder written by `vitok cache-latents`")
    folder = Path(cfg.latents)
    if not folder.is_dir():
        raise FileNotFoundError(f"latents: {folder} does not exist (or is not a folder)")
    if not (folder / "stats.json").is_file():
        raise FileNotFoundError(f"latents: {folder} is not a latent cache (no stats.json); run `vitok cache-latents`")
