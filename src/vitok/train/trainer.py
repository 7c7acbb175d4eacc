"""The tokenizer trainer (stage 1 and stage 2 of the paper's recipe) on the shared engine.

Wiring (model, loss, optimisers, data, resume) is in :class:`Trainer.__init__`; one optimiser
step (autoencoder, then discriminator) is :meth:`Trainer.train_step`; the loop, checkpoints,
resume and export are :class:`vitok.train.engine.Engine`'s. Works on one CPU, one GPU, or many
processes under ``torchrun`` (DDP / FSDP).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vitok.losses.autoencoder import AutoencoderLoss, discriminator_loss
from vitok.losses.config import LossConfig
from vitok.losses.gan import Discriminator
from vitok.model_config import tower_overrides
from vitok.models.vitok import ViTok
from vitok.train import checkpoint as ckpt
from vitok.train.config import TrainConfig, check_config, check_data_paths
from vitok.train.distributed import load_optimizer_state, micro_batch_sync, wrap
from vitok.train.engine import Engine, run_cleanly
from vitok.train.schedule import linear_warmup


def next_batch(loader: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """The next batch of a data loader; an :class:`UnreadableDataError` raised in a worker process
    (which DataLoader re-raises with the worker's traceback in its message) comes back as the
    one-line error the dataset wrote."""
    from vitok.data.datasets import UnreadableDataError

    try:
        return next(loader)
    except UnreadableDataError as err:
        line = str(err).strip().splitlines()[-1]
        raise UnreadableDataError(line.partition("UnreadableDataError: ")[2] or line) from None


def build_model(cfg: TrainConfig) -> nn.Module:
    """The model of ``cfg.model`` (a ViTok, or a diffusers AutoencoderKL baseline), initialised from
    ``init_from`` (model dir or training checkpoint) if set, encoder frozen if asked."""
    section = cfg.model
    if section.kind == "autoencoder-kl":
        from vitok.models.baselines import build_autoencoder_kl

        model = build_autoencoder_kl(section.autoencoder_kl, section.init_from)
    elif section.init_from is None:
        model = ViTok.from_preset(section.preset, **tower_overrides(section.overrides))
    elif Path(section.init_from).is_file():
        state = ckpt.load_checkpoint(section.init_from)
        model = ViTok(ViTok.from_preset(section.preset, **tower_overrides(section.overrides)).config)
        model.load_state_dict(state["model"])
    else:
        model = ViTok.from_pretrained(section.init_from)
    model.set_grad_checkpointing(section.grad_checkpointing)
    if section.freeze_encoder:
        for name, param in model.named_parameters():
            if name.startswith(model.encoder_prefixes):
                param.requires_grad_(False)
    return model


def with_model_period(loss: LossConfig, model: nn.Module, sizes: list[int] = ()) -> LossConfig:
    """``loss`` with ``lattice_period`` 0 replaced by the model's lattice period (its patch size p,
    a conv VAE's downsampling factor: ``vitok.metrics.grid.lattice_period``). With the lattice
    penalty on, every training crop size in ``sizes`` must exceed the period (a crop with no
    patch border inside has no grid to measure): one-line ``ValueError`` naming the keys otherwise,
    before the first step rather than at the step that draws a small size."""
    from vitok.metrics.grid import lattice_period

    resolved = dataclasses.replace(loss, lattice_period=loss.lattice_period or lattice_period(model))
    if loss.lattice_weight > 0 and sizes and min(sizes) <= resolved.lattice_period:
        raise ValueError(f"loss.lattice_weight needs crops larger than its period ({resolved.lattice_period} px, "
                         f"loss.lattice_period or the model's patch size), got data.image_size {min(sizes)}")
    return resolved


NOISE_STREAM = 0x9E3779B97F4A7C15  # odd 64-bit constant (the golden ratio's): the noise's own stream


def noise_seed(seed: int) -> int:
    """The generator seed of a sample's posterior noise, in [0, 2**63): a different stream from
    the one its crop and flip are drawn from (``torch.Generator().manual_seed(seed)`` in
    :mod:`vitok.data.datasets`), which would otherwise start with the same numbers and tie the
    noise to the crop."""
    return (int(seed) * NOISE_STREAM + 1) % 2**63


def posterior_noise(shape: tuple[int, ...], seeds: Tensor, device: torch.device) -> Tensor:
    """Standard-normal latent noise (``shape`` = (B, ...), the latent's), one stream per sample
    seed: identical for a sample whatever the batch split, rank or worker, and independent of its
    crop (:func:`noise_seed`)."""
    per_sample = [torch.randn(shape[1:], generator=torch.Generator().manual_seed(noise_seed(s))) for s in seeds]
    return torch.stack(per_sample).to(device)


class Trainer(Engine):
    """Trains a ViTok tokenizer from a :class:`TrainConfig`; ``Trainer(cfg).fit()``."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = check_config(cfg)
        check_data_paths(cfg)  # before the model or the run folder is built
        super().__init__(cfg.run, cfg)
        device = self.dist.device
        self.model = build_model(cfg).to(device).train()  # from_pretrained returns eval mode
        self.loss = AutoencoderLoss(with_model_period(cfg.loss, self.model, cfg.crop_sizes)).to(device)
        self.disc = Discriminator(min(cfg.data.sizes), cfg.loss.disc_channels).to(device) if cfg.loss.uses_gan else None
        state = self.resume_state(required=("step", "model", "opt", "rng"))
        if state is not None:  # weights go in before sharding / replication
            self.model.load_state_dict(state["model"])
            if self.disc is not None and "disc" in state:
                self.disc.load_state_dict(state["disc"])
            elif self.disc is not None and self.dist.is_main:
                print("note: the GAN loss is new since the checkpoint: the discriminator starts fresh")
        self.ddp_model = self.wrap_model(state)
        self.ddp_disc = wrap(self.disc, self.dist, "ddp") if self.disc is not None else None
        self.build_optimizer(cfg.optim)
        self.d_opt = None
        if self.disc is not None:
            self.d_opt = torch.optim.AdamW(self.disc.parameters(), lr=cfg.loss.disc_lr, betas=cfg.optim.betas,
                                           weight_decay=cfg.optim.weight_decay)
        if state is not None:
            self.restore(state)
        if cfg.model.compile:
            self.ddp_model = torch.compile(self.ddp_model)
        self.last_batch: tuple[Tensor, Tensor] | None = None  # (x, recon) of the last step's first micro-batch

    # ------------------------------------------------------------------ state beyond the engine's
    def extra_state(self) -> dict[str, Any]:
        if self.disc is None:
            return {}
        return {"disc": self.disc.state_dict(), "d_opt": self.d_opt.state_dict()}

    def restore_extra(self, state: dict[str, Any]) -> None:
        if self.d_opt is not None and "d_opt" in state:
            load_optimizer_state(self.disc, self.d_opt, state["d_opt"], sharded=False)  # DDP only, never FSDP

    def pictures(self) -> tuple[Tensor, Tensor] | None:
        return self.last_batch

    # ------------------------------------------------------------------ one step
    def set_lr(self) -> float:
        lr = self.schedule_lr(self.cfg.optim)
        if self.d_opt is not None:
            d_lr = linear_warmup(self.step, self.cfg.loss.disc_lr, self.cfg.loss.disc_warmup)
            for group in self.d_opt.param_groups:
                group["lr"] = d_lr
        return lr

    def generator_pass(self, batches: list[dict[str, Any]]) -> tuple[dict[str, float], list[Tensor], Tensor]:
        """Forward + backward of the autoencoder over the micro-batches; returns mean terms,
        the reconstructions (for D) and whether everything was finite."""
        terms: dict[str, float] = {}
        recons = []
        finite = torch.ones((), device=self.dist.device)
        if self.disc is not None:
            self.disc.requires_grad_(False)
        for i, batch in enumerate(batches):
            x = batch["x"].to(self.dist.device, non_blocking=True)
            noise = posterior_noise(self.model.latent_shape(tuple(x.shape)), batch["seed"], self.dist.device)
            with micro_batch_sync(self.ddp_model, i == len(batches) - 1), self.autocast():
                out = self.ddp_model(x, sample=True, noise=noise)
                loss, parts = self.loss(x, out.recon, out.posterior, self.step, self.disc)
                (loss / len(batches)).backward()
            finite *= torch.isfinite(loss.detach()).float()
            recons.append(out.recon.detach())
            for k, v in {"loss": float(loss.detach()), **parts}.items():
                terms[k] = terms.get(k, 0.0) + v / len(batches)
        if self.disc is not None:
            self.disc.requires_grad_(True)
        return terms, recons, finite

    def discriminator_pass(self, batches: list[dict[str, Any]], recons: list[Tensor]) -> dict[str, float]:
        self.d_opt.zero_grad(set_to_none=True)
        terms: dict[str, float] = {}
        for i, (batch, recon) in enumerate(zip(batches, recons)):
            x = batch["x"].to(self.dist.device, non_blocking=True)
            with micro_batch_sync(self.ddp_disc, i == len(batches) - 1), self.autocast():
                loss, parts = discriminator_loss(self.ddp_disc, x, recon)
                (loss / len(batches)).backward()
            for k, v in parts.items():
                terms[k] = terms.get(k, 0.0) + v / len(batches)
        torch.nn.utils.clip_grad_norm_(self.disc.parameters(), self.cfg.optim.grad_clip)
        self.d_opt.step()
        return terms

    def train_step(self, batches: list[dict[str, Any]]) -> dict[str, float] | None:
        """One optimiser step over ``accum`` micro-batches; None if the step was skipped (non-finite)."""
        lr = self.set_lr()
        self.opt.zero_grad(set_to_none=True)
        terms, recons, finite = self.generator_pass(batches)
        grad_norm = self.optimizer_step(self.cfg.optim.grad_clip, finite)
        if grad_norm is None:
            return None
        if self.disc is not None:
            terms.update(self.discriminator_pass(batches, recons))
        self.last_batch = (batches[0]["x"], recons[0])
        return {**terms, "lr": lr, "grad_norm": float(grad_norm)}

    # ------------------------------------------------------------------ the loop
    def batches(self) -> Iterator[list[dict[str, Any]]]:
        """Micro-batch lists, one per optimiser step from ``self.step`` on; with ``cfg.video``, every
        k-th step draws clips from the video loader (each loader resumes at its own position)."""
        from vitok.data.loader import build_train_loader

        o, video, seed = self.cfg.optim, self.cfg.video, self.cfg.run.seed
        image_start, video_start = video.steps_before(self.step) if video else (self.step, 0)
        images = iter(build_train_loader(self.cfg.data, o.batch_size, self.dist.rank, self.dist.world, seed,
                                         image_start, o.accum))
        clips = None
        if video is not None:
            clips = iter(build_train_loader(video.data, video.batch_size, self.dist.rank, self.dist.world,
                                            seed + 7919, video_start, o.accum))
        step = self.step
        try:
            while True:
                source = clips if video is not None and video.is_video_step(step) else images
                yield [next_batch(source) for _ in range(o.accum)]
                step += 1
        finally:  # closed: the workers are joined now, not whenever the iterators are collected
            for loader in (images, clips):
                # torch has no public way to end an iterator's workers: _shutdown_workers is what the
                # multi-process iterator's own __del__ calls (absent on a single-process one)
                getattr(loader, "_shutdown_workers", lambda: None)()
                for worker in getattr(loader, "_workers", []):  # one torch had to terminate: reap it
                    worker.join(timeout=10)


def train(cfg: TrainConfig) -> dict[str, float]:
    """Train from a config and clean up the process group; returns the last logged scalars. A run
    that fails (or is interrupted) before its first step in a new or empty ``run.out_dir``
    removes that folder again: a failed start leaves nothing behind."""
    return run_cleanly(lambda: Trainer(cfg), cfg.run.out_dir)
