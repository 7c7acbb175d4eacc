"""PyTorch distributed set-up for ``torchrun``: process group, device, DDP / FSDP wrapping.

Single process when ``WORLD_SIZE`` is unset or 1. Backend: NCCL on CUDA, gloo on CPU.
Multi-node: ``torchrun --nnodes N --node_rank R --rdzv_endpoint HOST:PORT --nproc_per_node G -m vitok train ...``.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("run.device=cuda but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device(preference)


def init_distributed(device: str = "auto", timeout: float = 600.0) -> DistInfo:
    """Join the torchrun process group if there is one; pick this process's device. A collective
    that waits longer than ``timeout`` seconds (a dead or frozen rank) fails instead of hanging
    for torch's default 30 minutes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(seconds=timeout))
    return DistInfo(rank, world, local_rank, dev)


def wrap(model: nn.Module, info: DistInfo, strategy: str) -> nn.Module:
    """DDP (replicated) or FSDP2 (``fully_shard`` per transformer block, then the root). The blocks
    are the modules whose class is named in the model's ``fsdp_units`` (default ``("Block",)``, the
    ViTok towers' blocks; the DiT names ``DiTBlock``)."""
    if not info.enabled:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        units = getattr(model, "fsdp_units", ("Block",))
        for module in model.modules():
            if module.__class__.__name__ in units:
                fully_shard(module)
        return fully_shard(model)
    from torch.nn.parallel import DistributedDataParallel as DDP

    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return DDP(model, device_ids=device_ids)


def micro_batch_sync(module: nn.Module | None, last: bool) -> contextlib.AbstractContextManager:
    """Gradient accumulation under DDP: skip the gradient all-reduce on all but the ``last``
    micro-batch of a step (``no_sync``); a no-op for other modules."""
    if not last and module is not None and hasattr(module, "no_sync"):
        return module.no_sync()
    return contextlib.nullcontext()


def all_reduce_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values)
        values /= info.world
    return values


def reduce_scalars(scalars: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average logged scalars over all ranks (finite ones kept)."""
    import math

    keys = sorted(scalars)
    values = all_reduce_mean(torch.tensor([scalars[k] for k in keys], dtype=torch.float64, device=info.device), info)
    return {k: float(v) for k, v in zip(keys, values.tolist()) if math.isfinite(v)}


def gather_strings(items: list[str], info: DistInfo) -> list[str]:
    """The concatenation of every rank's ``items`` (a collective: call on all ranks); unchanged
    on one process."""
    if not info.enabled:
        return list(items)
    parts: list[list[str]] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(parts, list(items))
    return [item for part in parts for item in part]


def all_reduce_min(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return value


def cleanup(info: DistInfo, barrier: bool = False) -> None:
    """Destroy the process group (if any), after a barrier when ``barrier`` (all ranks are known to
    reach this point)."""
    if info.enabled and dist.is_initialized():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()


# ---------------------------------------------------------------------- full (gathered) state
def _options(**kwargs: bool):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True, **kwargs)


def full_model_state(model: nn.Module, sharded: bool) -> dict[str, torch.Tensor]:
    """The whole model's state dict on the CPU; under FSDP a collective (call on every rank)."""
    if not sharded:
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(model, options=_options())


def full_optimizer_state(model: nn.Module, opt: torch.optim.Optimizer, sharded: bool) -> dict:
    if not sharded:
        return opt.state_dict()
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(model, opt, options=_options())


SETTINGS = ("weight_decay", "betas", "eps")  # the AdamW settings a resumed run takes from its config


@contextlib.contextmanager
def keeping_settings(opt: torch.optim.Optimizer) -> Iterator[None]:
    """Load a checkpoint's optimiser state inside this: the moments and step counts come from the
    checkpoint, the :data:`SETTINGS` (weight decay, betas, eps) stay those of ``opt``, built from
    the current config. ``Optimizer.load_state_dict`` alone would silently bring back the ones the
    run started with, so a resumed run given a new ``optim.weight_decay`` would ignore it. The
    learning rate is not kept (the schedule sets it every step), nor how the update runs
    (``fused``, ``capturable``: the checkpoint's state was loaded to match the checkpoint's)."""
    settings = [{k: group[k] for k in SETTINGS if k in group} for group in opt.param_groups]
    yield
    for group, kept in zip(opt.param_groups, settings):
        group.update(kept)


def load_optimizer_state(model: nn.Module, opt: torch.optim.Optimizer, state: dict, sharded: bool) -> None:
    """Restore ``opt``'s moments and step counts from ``state`` (a collective under FSDP), keeping
    its settings (:func:`keeping_settings`)."""
    with keeping_settings(opt):
        if not sharded:
            opt.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        set_optimizer_state_dict(model, opt, state, options=_options())


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """A full CPU copy of a possibly sharded (DTensor) tensor; a collective for DTensors."""
    full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
    return full.detach().cpu()


def shard_like(full: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Shard a full tensor the way ``reference`` (a DTensor parameter) is sharded."""
    if not hasattr(reference, "device_mesh"):
        return full.to(reference.device)
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full.to(reference.device), reference.device_mesh, reference.placements)
