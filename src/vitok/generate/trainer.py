"""Training a DiT on cached latents (``vitok train-dit``) on the shared engine
(:mod:`vitok.train.engine`): typed YAML config + overrides, EMA, atomic checkpoints, exact resume,
a run lock, non-finite steps skipped, torchrun DDP or FSDP, progress, TensorBoard and ``metrics.jsonl``.

Randomness per sample (timestep, noise, label dropout) comes from the sample's seed, so a step
is the same on one process or many and after a resume.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from vitok.diffusion import TIME_SCALE, alphas_cumprod, ddpm_loss, flow_loss, linear_betas
from vitok.files import atomic_write
from vitok.generate.config import DiTSection as DiTSection  # its old home
from vitok.generate.config import DiTTrainConfig
from vitok.models.dit import DiT
from vitok.presets import dit_config
from vitok.train.distributed import micro_batch_sync
from vitok.train.engine import Engine, run_cleanly


def per_sample(seeds: Tensor, shape: tuple[int, ...]) -> tuple[Tensor, Tensor, Tensor]:
    """(u for the time, u for label dropout, standard-normal noise of ``shape``) per sample seed."""
    us, drops, noises = [], [], []
    for seed in seeds.tolist():
        g = torch.Generator().manual_seed(int(seed) + 12345)
        us.append(torch.rand((), generator=g))
        drops.append(torch.rand((), generator=g))
        noises.append(torch.randn(shape, generator=g))
    return torch.stack(us), torch.stack(drops), torch.stack(noises)


class DiTTrainer(Engine):
    """Trains a DiT from a :class:`DiTTrainConfig`: ``DiTTrainer(cfg).fit()``."""

    def __init__(self, cfg: DiTTrainConfig) -> None:
        from vitok.generate.latents import LatentDataset

        self.cfg = cfg
        super().__init__(cfg.run, cfg)
        self.data = LatentDataset(cfg.latents)
        latent_shape = tuple(self.data.latents.shape[1:])
        overrides = {"latent_channels": latent_shape[0], "num_classes": self.data.stats["num_classes"],
                     **cfg.model.overrides}
        if overrides["num_classes"] < self.data.stats["num_classes"]:  # the last labels would be the null class
            raise ValueError(f"model.overrides.num_classes {overrides['num_classes']} is below the "
                             f"{self.data.stats['num_classes']} classes of {cfg.latents}")
        self.model = DiT(dit_config(cfg.model.preset, **overrides)).to(self.dist.device)
        self.latent_shape = latent_shape
        self.abar = alphas_cumprod(linear_betas())
        state = self.resume_state()
        if state is not None:
            self.model.load_state_dict(state["model"])
        self.ddp_model = self.wrap_model(state)
        self.build_optimizer(cfg.optim)
        if state is not None:
            self.restore(state)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        x, y = batch["x"].to(self.dist.device), batch["y"].to(self.dist.device)
        u, drop, noise = per_sample(batch["seed"], tuple(x.shape[1:]))
        y = torch.where(drop.to(y.device) < self.model.config.class_dropout, self.model.null_label, y)
        if self.cfg.objective == "ddpm":
            return ddpm_loss(lambda xt, t: self.ddp_model(xt, t, y), x, self.abar, u, noise)
        return flow_loss(lambda xt, t: self.ddp_model(xt, t * TIME_SCALE, y), x, u, noise)

    def train_step(self, batches: list[dict[str, Tensor]]) -> dict[str, float] | None:
        o = self.cfg.optim
        lr = self.schedule_lr(o)
        self.opt.zero_grad(set_to_none=True)
        total = 0.0
        for i, batch in enumerate(batches):
            with micro_batch_sync(self.ddp_model, i == len(batches) - 1):
                with self.autocast():
                    loss = self.loss(batch)
                (loss / len(batches)).backward()
            total += float(loss.detach()) / len(batches)
        grad_norm = self.optimizer_step(o.grad_clip, torch.isfinite(torch.tensor(total)).float())
        if grad_norm is None:
            return None
        return {"loss": total, "lr": lr, "grad_norm": float(grad_norm)}

    def batches(self) -> Iterator[list[dict[str, Tensor]]]:
        from torch.utils.data import DataLoader

        from vitok.data.sampler import StepBatchSampler
        from vitok.generate.latents import collate_latents

        o = self.cfg.optim
        sampler = StepBatchSampler(len(self.data), o.batch_size, self.dist.rank, self.dist.world,
                                   self.cfg.run.seed, self.step, o.accum)
        # the loader's own generator: a new iterator (one per resume) must not draw from the global RNG
        generator = torch.Generator().manual_seed(self.cfg.run.seed * 1_000_003 + self.dist.rank)
        it = iter(DataLoader(self.data, batch_sampler=sampler, collate_fn=collate_latents, generator=generator))
        while True:
            yield [next(it) for _ in range(o.accum)]

    def export_files(self, directory: Path) -> None:
        """``generation.json`` beside the exported DiT: what ``vitok sample`` needs to decode."""
        info = {"objective": self.cfg.objective, "latent_shape": list(self.latent_shape),
                "classes": self.data.stats["classes"],
                "latents": str(Path(self.cfg.latents).resolve())}  # absolute: sample from any folder
        text = json.dumps(info, indent=2)
        atomic_write(directory / "generation.json", lambda path: path.write_text(text))


def train_dit(cfg: DiTTrainConfig) -> dict[str, float]:
    """Train a DiT; like :func:`vitok.train.trainer.train`, a failed start leaves no run folder."""
    return run_cleanly(lambda: DiTTrainer(cfg), cfg.run.out_dir)
