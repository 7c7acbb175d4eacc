"""Typed configs from YAML: a nested mapping -> checked dataclasses, with ``key=value`` overrides.

The one mechanism behind every run config (``vitok train``'s :class:`~vitok.train.config.TrainConfig`,
``vitok train-dit``'s ``DiTTrainConfig``, the sweep specs). A config is a tree of dataclasses:

- each field's annotation is its type; a YAML value is checked and converted against it
  (:func:`from_dict`: unknown keys, wrong types, non-finite numbers -> ``ValueError`` naming the key);
- a section may declare ``ranges`` (a ``ClassVar`` mapping field -> (predicate, what is allowed))
  beside its fields, checked by :func:`vitok.checks.check_ranges`, and ``section_defaults`` (defaults for a nested
  section's mapping, e.g. a video mix's data is video unless it says otherwise);
- :func:`read_yaml` reads a file, resolves the file's relative data paths and applies overrides.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from vitok.checks import check_ranges, conform, describe, describe_type


def coerce(value: Any, kind: Any, key: str) -> Any:
    """Check / convert a YAML value to the annotated type: the structure a YAML file has (sections,
    lists, mappings, a scalar where a list is allowed, "1e-3" read as a string by YAML 1.1) here,
    the scalars through :func:`vitok.checks.conform`, the one definition shared with the model
    configs. ``ValueError`` "<key>: ..." naming what is allowed."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # an optional value: its own error names the problem
            return coerce(value, options[0], key)
        for option in options:
            try:
                return coerce(value, option, key)
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
        return tuple(coerce(v, a, key) for v, a in zip(value, args))
    if origin is list:
        items = value if isinstance(value, (list, tuple)) else [value]
        return [coerce(v, args[0], key) for v in items]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(kind):
        return from_dict(kind, value, f"{key}.")
    if kind is Any:
        return value
    if kind is float and isinstance(value, str):
        with contextlib.suppress(ValueError):  # YAML 1.1 reads "1e-3" as a string
            value = float(value)
    ok, converted = conform(value, kind)
    if not ok:
        raise ValueError(f"{key}: expected {describe_type(kind)}, got {value!r}")
    return converted


def from_dict(cls: type, data: dict[str, Any] | None, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict; unknown keys, wrong types and values out of
    a section's ``ranges`` raise ``ValueError`` naming the key (``prefix`` + the field)."""
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
        defaults = getattr(cls, "section_defaults", {}).get(k)
        if isinstance(v, dict) and defaults:
            v = {**defaults, **v}
        values[k] = coerce(v, hints[k], f"{prefix}{k}")
    try:
        section = cls(**values)
    except ValueError as err:  # a section's own __post_init__ check
        message = str(err)
        raise ValueError(message if message.startswith(prefix) else f"{prefix.rstrip('.')}: {message}") from None
    check_ranges(section, prefix)
    return section


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
        raise ValueError(f"override {assignment!r}: the value is not valid YAML ({yaml_problem(err)})") from None


def yaml_problem(err: yaml.YAMLError) -> str:
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
            raise ValueError(f"config {path}: YAML syntax error at {yaml_problem(err)}") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"config {path} cannot be read: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"config {path}: expected a mapping of sections (data:, model:, ...) at the top "
                             f"level, got {describe(data)}")
        resolve_relative(data, relative_to_file, path.parent)
    for assignment in overrides:
        apply_override(data, assignment)
    return data


def to_yaml(config: dict[str, Any]) -> str:
    """A config dict (``TrainConfig.to_dict()``, tuples as lists) as YAML text, in field order."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value

    return yaml.safe_dump(plain(config), sort_keys=False)
