"""The one training engine: a loop driven by a step function, for the tokenizer and the DiT alike.

A trainer subclasses :class:`Engine` and provides what differs: building its model and
optimisers (in ``__init__``, calling :meth:`Engine.resume_state` for the checkpoint to continue
from), :meth:`Engine.train_step` (one optimiser step over the micro-batches of one step) and
:meth:`Engine.batches` (those micro-batches, from ``self.step`` on). The engine owns everything
else, once:

- the run folder: a lock against a second run, temp files of interrupted writes removed, the
  newest loadable checkpoint found (``vitok.train.checkpoint``);
- the checkpoint state: step, weights, optimiser, EMA, counters, RNG, config, plus the trainer's
  :meth:`Engine.extra_state`; exact resume restores all of it;
- non-finite steps: :meth:`Engine.step_is_finite` agrees across ranks, skips the step and stops
  the run after ``run.max_bad_steps`` in a row;
- the loop (:meth:`Engine.fit`): logging (reduced over ranks), unreadable files named once,
  pictures (of the trainer's :meth:`Engine.pictures`), checkpoints, and the export of ``model/``
  and ``model-ema/`` at the end;
- stopping on a scheduler's ``SIGTERM`` / ``SIGUSR1``: finish the step, save, raise
  :class:`vitok.train.preemption.RunInterruptedError` (``vitok.train.preemption``).

``vitok.train.trainer`` (the tokenizer, stage 1 and 2) and ``vitok.generate.trainer`` (the DiT)
are the two trainers.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vitok.files import acquire_run_lock, check_writable, is_fresh_dir, release_run_lock, remove_stale_temp_files
from vitok.train import checkpoint as ckpt
from vitok.train.config import OptimConfig, RunConfig
from vitok.train.distributed import (
    DistInfo,
    all_reduce_min,
    cleanup,
    full_model_state,
    full_optimizer_state,
    gather_strings,
    init_distributed,
    load_optimizer_state,
    reduce_scalars,
    wrap,
)
from vitok.train.ema import EMA
from vitok.train.monitor import open_run
from vitok.train.preemption import RunInterruptedError, stop_signals
from vitok.train.schedule import cosine_lr, warmup_steps
from vitok.train.schema import from_dict


class NonFiniteLossError(RuntimeError):
    """Too many consecutive steps with a NaN/inf loss or gradient."""


def changed_settings(before: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    """``"key: old -> new"`` for every (dotted) key whose value differs between two nested config
    dicts, in sorted order. Keys in only one of them are left out (complete the older config with
    the defaults first: :meth:`Engine.saved_config`)."""
    lines = []
    for key in sorted(set(before) & set(now)):
        old, new = before[key], now[key]
        if isinstance(old, dict) and isinstance(new, dict):
            lines += changed_settings(old, new, f"{prefix}{key}.")
        elif old != new:
            lines.append(f"{prefix}{key}: {old} -> {new}")
    return lines


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on matrices, none on norms, biases and other vectors."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Engine:
    """The shared part of a trainer (see the module docstring). Subclasses set ``model`` and ``opt``
    in their ``__init__`` after ``super().__init__``, and wrap the model with :meth:`wrap_model`
    (which sets ``ema``, ``trainable`` and ``sharded``); their :meth:`train_step` ends in
    :meth:`optimizer_step`."""

    model: nn.Module
    opt: torch.optim.Optimizer
    ema: EMA | None = None
    trainable: dict[str, nn.Parameter]  # what the optimiser steps (set by wrap_model)
    warmup: int  # warm-up steps of the LR schedule (schedule_lr)
    sharded: bool = False  # parameters sharded by FSDP (their full state is a collective)

    def __init__(self, run: RunConfig, config: Any) -> None:
        """``run``: the config's run section; ``config``: the whole typed config (a dataclass with
        ``to_dict``, e.g. :class:`~vitok.train.config.TrainConfig`)."""
        self.run = run
        # the whole config as plain JSON values (tuples as lists): saved in checkpoints and the run folder
        self.config: dict[str, Any] = json.loads(json.dumps(config.to_dict()))
        self.config_type = type(config)  # fills a checkpoint's config with today's defaults (saved_config)
        self.dist: DistInfo = init_distributed(run.device, run.dist_timeout)
        self.run_dir = Path(run.out_dir)
        self.step, self.bad_steps = 0, 0
        self.skipped_paths: set[str] = set()  # distinct unreadable files seen by this run (all ranks)
        torch.manual_seed(run.seed)

    # ------------------------------------------------------------------ what a trainer provides
    def train_step(self, batches: list[dict[str, Any]]) -> dict[str, float] | None:
        """One optimiser step over the micro-batches; the scalars to log, None if it was skipped."""
        raise NotImplementedError

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        """Lists of micro-batches, one per optimiser step from ``self.step`` on."""
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        """Trainer-specific checkpoint entries (e.g. a discriminator); a collective under FSDP."""
        return {}

    def restore_extra(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` saved (weights were loaded before wrapping)."""

    def export_files(self, directory: Path) -> None:
        """Write trainer-specific files beside an exported model (e.g. the DiT's generation.json)."""

    def pictures(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(originals, reconstructions) of the last step for the ``run.image_every`` pictures, or None
        (the default: a trainer without reconstructions, such as the DiT's, logs no pictures)."""
        return None

    # ------------------------------------------------------------------ checkpoints
    def resume_state(self, required: tuple[str, ...] = ("step", "model", "opt")) -> dict[str, Any] | None:
        """The newest loadable checkpoint of the run folder, if any. On the main rank first: check
        that ``run.out_dir`` is writable, lock it against a second run, remove the temp files of
        interrupted writes."""
        if self.dist.is_main:
            check_writable(self.run_dir, "run.out_dir")
            self.lock = acquire_run_lock(self.run_dir)
            for path in remove_stale_temp_files(self.run_dir):
                print(f"removed {path} (left by an interrupted write)")
        found = ckpt.load_latest(self.run_dir, required=required)
        if found is None:
            return None
        if self.dist.is_main:
            print(f"resuming from {found[0]}")
        return found[1]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (a collective under FSDP: call on every rank)."""
        state = {"step": self.step, "model": full_model_state(self.model, self.sharded),
                 "opt": full_optimizer_state(self.model, self.opt, self.sharded),
                 "bad_steps": self.bad_steps, "skipped_files": len(self.skipped_paths),
                 "skipped_paths": sorted(self.skipped_paths),
                 "rng": torch.get_rng_state(), "config": json.dumps(self.config)}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return {**state, **self.extra_state()}

    def restore(self, state: dict[str, Any]) -> None:
        """Optimiser, counters and RNG from a checkpoint (weights and the EMA averages were loaded
        before wrapping, since FSDP shards both)."""
        load_optimizer_state(self.model, self.opt, state["opt"], self.sharded)
        if self.dist.is_main and "config" in state:
            for line in changed_settings(self.saved_config(state["config"]), self.config):
                print(f"resuming with a changed setting: {line}")
        if "rng" in state:
            torch.set_rng_state(state["rng"])
        self.step, self.bad_steps = state["step"], state.get("bad_steps", 0)
        self.skipped_paths = set(state.get("skipped_paths", []))
        self.restore_extra(state)

    def saved_config(self, saved: str) -> dict[str, Any]:
        """A checkpoint's config (JSON) as a dict, completed through :attr:`config_type` so that an
        option added since it was written shows its default (and a changed one shows as changed);
        as saved when it no longer parses (an option since removed)."""
        config = json.loads(saved)
        with contextlib.suppress(ValueError):
            config = json.loads(json.dumps(from_dict(self.config_type, config).to_dict()))
        return config

    def save(self) -> None:
        state = self.state_dict()
        if self.dist.is_main:
            ckpt.save_checkpoint(self.run_dir, self.step, state, self.run.keep_last)

    def export(self) -> None:
        """Write the trained model, and its EMA, as ``save_pretrained`` folders ``model`` and
        ``model-ema`` (plus :meth:`export_files`); a collective under FSDP."""
        weights = full_model_state(self.model, self.sharded)
        averages = self.ema.state_dict() if self.ema is not None else None
        if not self.dist.is_main:
            return
        model = self.model.fresh_copy()
        model.load_state_dict(weights)
        model.save_pretrained(self.run_dir / "model")
        self.export_files(self.run_dir / "model")
        if averages is not None:
            self.ema.copy_to(model, averages).save_pretrained(self.run_dir / "model-ema")
            self.export_files(self.run_dir / "model-ema")

    # ------------------------------------------------------------------ one step
    def wrap_model(self, state: dict[str, Any] | None) -> nn.Module:
        """The EMA of the trainable weights (its averages restored from ``state``), then the model
        wrapped for ``run.distributed`` (DDP, or FSDP shards), then the EMA rebound to the possibly
        sharded parameters (``self.trainable``). Call it after loading ``state``'s weights; returns
        the wrapped model to run the forward pass through."""
        def trainable() -> dict[str, nn.Parameter]:
            return {k: p for k, p in self.model.named_parameters() if p.requires_grad}

        self.sharded = self.dist.enabled and self.run.distributed == "fsdp"
        self.ema = EMA(trainable(), self.run.ema) if self.run.ema is not None else None
        if self.ema is not None and state is not None:
            if "ema" in state:
                self.ema.load_state_dict(state["ema"])  # before rebind: FSDP shards the averages alike
            elif self.dist.is_main:
                print("note: run.ema is new since the checkpoint: the average starts from its weights")
        wrapped = wrap(self.model, self.dist, self.run.distributed)
        self.trainable = trainable()  # FSDP replaced the parameters
        if self.ema is not None:
            self.ema.rebind(self.trainable)
        return wrapped

    def build_optimizer(self, optim: OptimConfig) -> None:
        """``self.opt``: AdamW over the model's trainable parameters (weight decay on matrices only,
        :func:`param_groups`; fused on CUDA) at the peak learning rate, and ``self.warmup`` for
        :meth:`schedule_lr`. Call it after :meth:`wrap_model` (FSDP replaces the parameters)."""
        self.opt = torch.optim.AdamW(param_groups(self.model, optim.weight_decay), lr=optim.peak_lr,
                                     betas=optim.betas, fused=self.dist.device.type == "cuda")
        self.warmup = warmup_steps(optim.warmup, self.run.steps)
        if self.warmup >= self.run.steps and self.dist.is_main:
            print(f"warning: optim.warmup is {self.warmup} steps, not below run.steps {self.run.steps}: the learning "
                  f"rate never reaches optim.lr and never decays (a fraction below 1, e.g. 0.03, scales with the run)",
                  file=sys.stderr)

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on the run's device when ``run.precision`` is bf16, else a no-op."""
        return torch.autocast(self.dist.device.type, torch.bfloat16, enabled=self.run.precision == "bf16")

    def schedule_lr(self, optim: OptimConfig) -> float:
        """Set the optimiser's learning rate for ``self.step`` (linear warm-up over ``self.warmup``
        steps, then cosine to ``optim.min_lr`` at ``run.steps``) and return it."""
        lr = cosine_lr(self.step, optim.peak_lr, self.run.steps, self.warmup, optim.min_lr)
        for group in self.opt.param_groups:
            group["lr"] = lr
        return lr

    def optimizer_step(self, grad_clip: float, finite: Tensor) -> Tensor | None:
        """The end of every trainer's step: clip the gradient norm of ``self.trainable`` to
        ``grad_clip``, agree across ranks that the loss (``finite``: 1.0 or 0.0 here) and the
        gradient are finite (:meth:`step_is_finite`), then step the optimiser and the EMA. Returns
        the gradient norm before clipping, or None when the step was skipped."""
        grad_norm = torch.nn.utils.clip_grad_norm_(list(self.trainable.values()), grad_clip)
        grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
        if not self.step_is_finite(finite * torch.isfinite(grad_norm).float()):
            return None
        self.opt.step()
        if self.ema is not None:
            self.ema.update()
        return grad_norm

    def step_is_finite(self, finite: Tensor) -> bool:
        """Whether every rank's loss and gradient were finite (``finite``: 1.0 or 0.0 here). When not,
        the gradients are dropped and the step counts as bad; ``NonFiniteLossError`` after
        ``run.max_bad_steps`` bad steps in a row."""
        if all_reduce_min(finite, self.dist).item() >= 1:
            self.bad_steps = 0
            return True
        self.opt.zero_grad(set_to_none=True)
        self.bad_steps += 1
        if self.bad_steps >= self.run.max_bad_steps:
            raise NonFiniteLossError(
                f"{self.bad_steps} consecutive steps had a non-finite loss or gradient (last at step "
                f"{self.step}); lower optim.lr, use run.precision=fp32, or check the data")
        return False

    # ------------------------------------------------------------------ the loop
    def fit(self, received: list[int] | None = None) -> dict[str, float]:
        """Train until ``run.steps`` (or ``run.stop_at``); returns the last logged scalars.
        ``received``: the list a caller's :func:`vitok.train.preemption.stop_signals` fills (as
        :func:`run_cleanly` passes, so that no signal falls between two handlers); by default fit
        catches the stop signals itself.

        Raises:
            RunInterruptedError: a SIGTERM / SIGUSR1 arrived (on any rank): the step in progress was
                finished and saved first, or, during the last step or the export, those were
                completed (``vitok.train.preemption``).
        """
        if received is None:
            with stop_signals() as received:
                return self.fit(received)
        from vitok.data.datasets import describe_skipped

        run = self.run
        end, monitor = open_run(self.run_dir, run, self.config, self.step, self.dist.is_main)
        last: dict[str, float] = {}
        skipped_steps = 0
        logged_skips = set(self.skipped_paths)  # unreadable files already named in metrics.jsonl
        with contextlib.closing(monitor):
            data = self.batches()
            while self.step < end:
                batches = next(data)
                self.skipped_paths.update(p for b in batches for p in b.get("skipped", ()))
                scalars = self.train_step(batches)
                self.step += 1
                skipped_steps += scalars is None
                monitor.advance(self.step)
                if scalars is not None and (self.step % run.log_every == 0 or self.step == end):
                    last = reduce_scalars(scalars, self.dist)
                    self.skipped_paths.update(gather_strings(sorted(self.skipped_paths - logged_skips), self.dist))
                    new = sorted(self.skipped_paths - logged_skips)
                    logged_skips.update(new)
                    monitor.log(self.step, {**last, "skipped_files": len(self.skipped_paths),
                                            "skipped_steps": skipped_steps, **({"skipped_new": new} if new else {})})
                pair = self.pictures() if run.image_every and self.step % run.image_every == 0 else None
                if pair is not None:
                    monitor.images(self.step, *pair)
                if self.step < end and (signum := self.stop_signal(received)):
                    data.close()  # shut the loader's workers down before the save (they outlive a SIGTERM briefly)
                    self.save()
                    raise RunInterruptedError(signum, self.step, self.run_dir)
                if self.step % run.ckpt_every == 0 or self.step == end:
                    self.save()
            data.close()
            if self.step >= run.steps:
                self.export()
        if self.skipped_paths:
            monitor.message(describe_skipped(sorted(self.skipped_paths)) + " (all named in metrics.jsonl, skipped_new)")
        if signum := self.stop_signal(received):  # it came during the last step or the export
            raise RunInterruptedError(signum, self.step, self.run_dir,
                                      "finished" if self.step >= run.steps else "training")
        return last

    def stop_signal(self, received: list[int]) -> int:
        """The stop signal that reached any rank (``received``: this rank's, from
        :func:`vitok.train.preemption.stop_signals`; the largest number when ranks got different
        ones), or 0. Agreed across ranks, so that all save the same step and stop together."""
        signum = max(received, default=0)
        if not self.dist.enabled:
            return signum
        return -int(all_reduce_min(torch.tensor(-float(signum), device=self.dist.device), self.dist).item())

    def close(self) -> None:
        release_run_lock(getattr(self, "lock", None))
        # ranks in step (finished, or stopping together) wait for each other before the process group
        # goes: a rank that tore its gloo connections down while another still used them aborted at
        # exit ("terminate called without an active exception"); a failed rank does not wait (the
        # others may be inside a collective, and a barrier there could hang)
        cleanup(self.dist, barrier=getattr(self, "in_step", False))


def run_cleanly(make: Callable[[], Engine], run_dir: str | Path) -> dict[str, float]:
    """``make()`` a trainer, fit it, close it; when it fails before completing a step and
    ``run_dir`` was new or empty, remove ``run_dir`` (rank 0): a failed start leaves nothing behind.

    Raises:
        RunInterruptedError: a SIGTERM / SIGUSR1 arrived while the trainer was built (before any
            step) or while it trained (:meth:`Engine.fit`).
    """
    from vitok.files import undo_fresh_dir

    fresh = is_fresh_dir(run_dir)
    trainer, first, done = None, None, False
    # one handler from building to closing: a signal while building stops before step 1, and a
    # repeat while closing cannot kill the process before it releases the run's lock
    with stop_signals() as received:
        try:
            trainer = make()
            first = trainer.step
            if signum := trainer.stop_signal(received):
                raise RunInterruptedError(signum, first, run_dir, "starting")
            result = trainer.fit(received)
            done = True
            return result
        except RunInterruptedError:
            done = None  # every rank agreed to stop (``stop_signal``): they are in step, as when done
            raise
        finally:
            stepped = trainer is not None and trainer.step != first
            if trainer is not None:
                trainer.in_step = done is not False
                trainer.close()
            if not done and fresh and not stepped and os.environ.get("RANK", "0") == "0":
                undo_fresh_dir(run_dir)
