"""Argument checks for the public API: one-line ``TypeError`` / ``ValueError`` naming the argument.

Every public function that takes numbers, shapes or tensors checks them at the door with these
helpers, so a wrong call fails with "``<name>`` must be ..., got ..." instead of a traceback from
deep inside torch, numpy or Pillow. Values are described briefly (:func:`describe`): a tensor by
its shape and dtype, never by its contents, so a message stays on one line.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # torch is imported where a check needs it: reading a config does not load it
    import torch
    from torch import Tensor

# A config field's range: (predicate on the type-checked value, what is allowed). Every config
# dataclass declares its rules beside its fields as a ``ranges`` ClassVar (field name -> Rule):
# model configs are checked on construction (check_fields), run configs as they are read
# (vitok.train.schema).
Rule = tuple[Callable[[Any], bool], str]


def describe(value: object) -> str:
    """A short, one-line description of ``value`` for an error message."""
    torch = sys.modules.get("torch")  # not imported yet: value cannot be a tensor
    if torch is not None and isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).replace('torch.', '')} tensor of shape {tuple(value.shape)}"
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # numpy arrays
        return f"a {value.dtype} array of shape {tuple(value.shape)}"
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def is_int(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value: object, minimum: int, optional: bool = False) -> None:
    """``TypeError`` / ``ValueError`` naming the argument unless ``value`` is an int >= ``minimum``
    (or None when ``optional``)."""
    if value is None and optional:
        return
    if not is_int(value):
        raise TypeError(f"{name} must be an int{' or None' if optional else ''}, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def check_number(name: str, value: object, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float; ``TypeError`` unless it is a real number (not a bool), ``ValueError``
    unless it is finite and within the bounds (``low_open`` / ``high_open``: strict)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {describe(value)}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or below or above:
        lo = "" if low is None else f"{'(' if low_open else '['}{low}"
        hi = "" if high is None else f"{high}{')' if high_open else ']'}"
        allowed = f"in {lo}, {hi}" if low is not None and high is not None else (
            f"{'>' if low_open else '>='} {low}" if low is not None else
            f"{'<' if high_open else '<='} {high}" if high is not None else "finite")
        raise ValueError(f"{name} must be a finite number" + ("" if allowed == "finite" else f" {allowed}")
                         + f", got {value}")
    return value


def check_shape(name: str, shape: object, length: int, minimum: int = 1, what: str = "") -> tuple[int, ...]:
    """``shape`` as a tuple of ``length`` ints >= ``minimum`` (a tuple, list or ``torch.Size``, which is a tuple)."""
    if not isinstance(shape, (tuple, list)) or len(shape) != length or not all(map(is_int, shape)):
        raise TypeError(f"{name} must be {what or f'{length} ints'}, got {describe(shape)}")
    if min(shape, default=minimum) < minimum:
        raise ValueError(f"{name} must be {what or f'{length} ints'} >= {minimum}, got {tuple(shape)}")
    return tuple(shape)


def check_tensor(name: str, x: object, ndims: Sequence[int] | None = None, floating: bool = False,
                 channels: int | None = None, layout: str = "", nonempty: bool = True, channel_dim: int = 1) -> Tensor:
    """``x`` itself; ``TypeError`` unless it is a tensor (of a floating dtype with ``floating``),
    ``ValueError`` unless its rank is in ``ndims``, dim ``channel_dim`` has ``channels`` entries,
    and it is not empty (``nonempty``). ``layout`` ("(B, 3, H, W)") is quoted in the message."""
    import torch

    expected = f"{layout} " if layout else ""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a {expected}tensor, got {describe(x)}")
    if x.is_complex():
        raise TypeError(f"{name} must be a real-valued {expected}tensor, got {describe(x)}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point {expected}tensor, got {describe(x)}")
    if ndims is not None and x.ndim not in ndims:
        raise ValueError(f"{name} must be a {expected}tensor, got {describe(x)}")
    if channels is not None and (x.ndim <= channel_dim or x.shape[channel_dim] != channels):
        raise ValueError(f"{name} must be a {expected}tensor ({channels} channels), got {describe(x)}")
    if nonempty and x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got {describe(x)}")
    return x


def check_pair(names: tuple[str, str], x: object, y: object, ndims: Sequence[int], layout: str = "") -> None:
    """Two tensors of the same shape (and rank in ``ndims``), e.g. originals and reconstructions."""
    check_tensor(names[0], x, ndims, layout=layout)
    check_tensor(names[1], y, ndims, layout=layout)
    if x.shape != y.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")


def check_device(name: str, device: object) -> torch.device:
    """``device`` as a ``torch.device``; ``TypeError`` unless it is a string or a device,
    ``ValueError`` naming the argument for a string torch does not know ("tpu")."""
    import torch

    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be a device name (cpu, cuda, cuda:N, mps) or a torch.device, got "
                        f"{describe(device)}")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"{name} must be cpu, cuda, cuda:N, mps or meta, got {device!r}") from None


# ---------------------------------------------------------------- typed config dataclasses
def describe_type(kind: object) -> str:
    """What a type annotation allows, in words: 'an int', 'one of 'a', 'b'', 'a list of 2 values, each ...'."""
    origin = typing.get_origin(kind)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(kind))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(kind))
    if origin is tuple:
        args = typing.get_args(kind)
        if args[-1] is not Ellipsis and len(set(args)) > 1:  # tuple[int, str]: one type per position
            return f"a list of {len(args)} values: " + ", ".join(describe_type(a) for a in args)
        count = "" if args[-1] is Ellipsis else f"{len(args)} "
        return f"a list of {count}values, each {describe_type(args[0])}"
    return {int: "an int", float: "a finite number", bool: "true or false", str: "a string",
            type(None): "null"}.get(kind, getattr(kind, "__name__", str(kind)))


def conform(value: Any, kind: object) -> tuple[bool, Any]:
    """(matches, value converted) for a value against a type annotation: ints are not bools,
    floats accept finite ints and floats, tuples accept lists (of the right length)."""
    origin = typing.get_origin(kind)
    if origin is Literal:
        return value in typing.get_args(kind) and isinstance(value, str), value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(kind):
            ok, converted = conform(value, option)
            if ok:
                return True, converted
        return False, value
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(value, (list, tuple)) or (args[-1] is not Ellipsis and len(value) != len(args)):
            return False, value
        kinds = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)  # tuple[int, ...] or tuple[int, str]
        items = [conform(v, k) for v, k in zip(value, kinds)]
        return all(ok for ok, _ in items), tuple(v for _, v in items)
    if kind is type(None):
        return value is None, value
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else value
    if kind is str:
        return isinstance(value, str), value
    return isinstance(value, kind), value


def check_fields(config: object) -> None:
    """Check (and normalise: lists -> tuples, ints -> floats) every field of a frozen config
    dataclass against its annotation and the ``ranges`` its class declares (field -> :data:`Rule`);
    ``ValueError`` "key must be ..., got ..."."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        ok, converted = conform(value, hints[f.name])
        if not ok:
            raise ValueError(f"{f.name} must be {describe_type(hints[f.name])}, got {value!r}")
        object.__setattr__(config, f.name, converted)
    check_ranges(config)


def check_ranges(config: object, prefix: str = "") -> None:
    """``ValueError`` "<prefix><key> must be <allowed>, got <value>" for the first field of a config
    dataclass outside the ``ranges`` its class declares (field -> :data:`Rule`; none: it passes).
    The one range check of every config: model configs on construction (:func:`check_fields`), run
    configs as they are read (``vitok.train.schema``)."""
    for name, (ok, allowed) in getattr(type(config), "ranges", {}).items():
        value = getattr(config, name)
        if not ok(value):
            raise ValueError(f"{prefix}{name} must be {allowed}, got {value!r}")


def known_keys(cls: type, data: object, what: str) -> dict[str, Any]:
    """``data`` as keyword arguments of the dataclass ``cls``: ``ValueError`` for a non-dict, unknown
    keys or missing required keys (``what`` names the section in the message)."""
    fields = dataclasses.fields(cls)
    if not isinstance(data, dict):
        raise ValueError(f"{what}: expected an object with keys {[f.name for f in fields]}, got {data!r}")
    unknown = sorted(set(data) - {f.name for f in fields})
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown} (allowed: {[f.name for f in fields]})")
    required = [f.name for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        raise ValueError(f"{what}: missing keys {missing}")
    return dict(data)
