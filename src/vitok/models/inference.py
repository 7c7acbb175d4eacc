"""Inference precision and compilation: what ``--precision`` and ``--compile`` do.

Three ways to run an autoencoder, measured side by side by ``vitok bench``:

- ``fp32``: float32 weights and activations.
- ``bf16-autocast``: float32 weights under ``torch.autocast(bfloat16)``. Every matmul casts its
  weight to bf16 again on every call; on CPUs this copying is a large share of the time.
- ``bf16``: the weights cast to bf16 once (:func:`cast_for_inference`), activations in bf16.
  This is what ``--precision bf16`` and ``from_pretrained(..., dtype=torch.bfloat16)`` give.

A model names the parts that stay in float32 in its ``fp32_modules`` attribute. For
:class:`vitok.models.vitok.ViTok` these are the bottleneck (the latent a generative model
trains on, and its log-variance, keep full precision), the linear pixel head (pixels in bf16
have an 8-bit mantissa: steps of up to half a uint8 level near +-1) and the conv tail (bf16
3x3 convs with few channels are slower than fp32 on CPUs). Together they are under 1% of the
MACs. Buffers (the latent statistics) stay float32 too. Norms keep bf16 weights: PyTorch
computes LayerNorm and RMSNorm statistics in float32 for bf16 inputs. RoPE angles are float32
and rounded to bf16 only when applied.

``--compile`` runs ``torch.compile`` on the model's ``compile_targets``: the untiled encoder and
decoder, which tiling calls once per window. Large inputs are cut into windows of one size, and
PyTorch's automatic dynamic shapes turn the graph for a second distinct size into one with
symbolic sizes. A folder of mixed sizes therefore compiles about twice, not once per image.
:class:`CompileStats` counts the graphs and the seconds spent in calls that compiled, so
commands report compile time apart from run time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from vitok.models.precisions import BENCH_PRECISIONS as BENCH_PRECISIONS  # their home is precisions.py
from vitok.models.precisions import PRECISIONS as PRECISIONS
from vitok.models.precisions import check_precision


def weight_dtype(precision: str) -> torch.dtype:
    """The dtype of the weights for a precision: bf16 for ``bf16``, float32 otherwise."""
    check_precision(precision)
    return torch.bfloat16 if precision == "bf16" else torch.float32


def compute_dtype(precision: str) -> torch.dtype:
    """The dtype of the matmuls for a precision (whose matmul peak the benchmark compares with)."""
    check_precision(precision)
    return torch.float32 if precision == "fp32" else torch.bfloat16


def cast_parameters(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast the parameters of ``model`` to ``dtype`` in place, except those under the module
    names in ``model.fp32_modules`` (kept float32) when ``dtype`` is a reduced precision; buffers
    keep their dtype, and the training mode and ``requires_grad`` are left as they are. Returns
    ``model``.

    Raises:
        TypeError: ``dtype`` is not a floating-point ``torch.dtype``.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    reduced = torch.finfo(dtype).bits < 32
    keep = tuple(getattr(model, "fp32_modules", ())) if reduced else ()
    for name, module in model.named_modules():
        kept = any(name == k or name.startswith(k + ".") for k in keep)
        for param in module.parameters(recurse=False):
            param.data = param.data.to(torch.float32 if kept else dtype)
    return model


def cast_for_inference(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """:func:`cast_parameters` (the ``fp32_modules`` stay float32 in a reduced precision, buffers
    keep their dtype), then eval mode with gradients off. Returns ``model``.

    Raises:
        TypeError: ``dtype`` is not a floating-point ``torch.dtype``.
    """
    return cast_parameters(model, dtype).eval().requires_grad_(False)


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """``torch.autocast(bfloat16)`` for ``bf16-autocast``; a no-op for the other precisions."""
    check_precision(precision)
    device = torch.device(device)
    if precision != "bf16-autocast":
        return contextlib.nullcontext()
    return torch.autocast(device.type, torch.bfloat16)


def compile_model(model: nn.Module, dynamic: bool | None = None) -> nn.Module:
    """``torch.compile`` the model's ``compile_targets`` in place and return the model.

    A target names a method (replaced on the instance by its compiled version) or a submodule
    (compiled with ``nn.Module.compile``). ``dynamic=None`` is PyTorch's automatic dynamic
    shapes: a static graph for the first size, one graph with symbolic sizes after a second.

    Raises:
        TypeError: the model names no ``compile_targets``.
    """
    targets = getattr(model, "compile_targets", None)
    if not targets:
        raise TypeError(f"{type(model).__name__} names no compile_targets; cannot compile it")
    for target in targets:
        owner_name, _, attr = target.rpartition(".")
        owner = model.get_submodule(owner_name) if owner_name else model
        value = getattr(owner, attr)
        if isinstance(value, nn.Module):
            value.compile(dynamic=dynamic)
        else:
            setattr(owner, attr, torch.compile(value, dynamic=dynamic))
    return model


def prepare_for_inference(model: nn.Module, precision: str = "fp32", device: torch.device | str = "cpu",
                          compile: bool = False) -> nn.Module:
    """``model`` on ``device`` in eval mode, with bf16 weights for ``precision="bf16"``
    (:func:`cast_for_inference`; float32 otherwise) and compiled if asked. In place.

    Raises:
        ValueError: an unknown ``precision``.
    """
    check_precision(precision)
    model = model.to(device)
    cast_for_inference(model, weight_dtype(precision))
    return compile_model(model) if compile else model


def _graphs() -> int:
    """Graphs compiled so far in this process (dynamo's own counter); 0 while dynamo has not been
    imported, so an uncompiled run never pays its import (1-2 s on a small CPU)."""
    import sys

    utils = sys.modules.get("torch._dynamo.utils")
    return int(utils.counters["stats"]["unique_graphs"]) if utils is not None else 0


@dataclass
class CompileStats:
    """Compilation seen around model calls: ``with stats.track(): model(x)``.

    Attributes:
        graphs: graphs compiled inside tracked calls.
        seconds: wall time of the tracked calls that compiled (compilation plus that one run).
    """

    graphs: int = 0
    seconds: float = 0.0

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        before, start = _graphs(), time.perf_counter()
        yield
        new = _graphs() - before
        if new:
            self.graphs += new
            self.seconds += time.perf_counter() - start

    def summary(self) -> str:
        """'compiled 2 graphs in 41.3 s' (empty when nothing compiled)."""
        if not self.graphs:
            return ""
        return f"compiled {self.graphs} graph{'s' if self.graphs != 1 else ''} in {self.seconds:.1f} s"
