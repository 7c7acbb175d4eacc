"""The command line's one vocabulary: the parser class and the option builders every subcommand uses.

Every subcommand that needs a thing spells it the same way: ``--model`` (default: the shipped
tokenizer), input paths as positional arguments, ``--size N|HxW``, ``--batch-size``, ``--precision
fp32|bf16``, ``--device auto|cpu|cuda[:N]|mps`` (checked before any work), ``--kind
auto|image|video``, ``--baseline sd-vae``, ``--out``. Old spellings (``--bf16``, ``--data``,
``--tokenizer``, ``--batch``, ``--sizes``, ``--vs``, ``--precisions``) still parse, hidden from
``--help``, with a deprecation warning; they go in the next release.

The parser is argparse with abbreviations off (``--si`` is an error, not ``--size``) and a "did
you mean" suggestion (difflib) for a mistyped subcommand, flag or choice. argparse rather than
click/typer: it is in the standard library, every subcommand already uses it, and the two things
it lacks (suggestions, options after positionals) are a few lines here.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from typing import Any

from vitok.cli.argtypes import DEVICES, parse_device, parse_size, path, positive_int
from vitok.models.precisions import BENCH_PRECISIONS, PRECISIONS

KINDS = ("auto", "image", "video")
BASELINES = ("sd-vae",)


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with abbreviations off and errors that suggest the closest
    subcommand, flag or choice (``did you mean '--size'?``). Exit status 2, one line after the usage."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = self.suggestion(message)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}{hint}\n")

    def suggestion(self, message: str) -> str:
        """``"; did you mean X?"`` for an invalid choice or an unknown flag in ``message``, else ''."""
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            options = re.findall(r"'([^']*)'", choice.group(2))
            return closest(choice.group(1), options)
        unknown = re.search(r"unrecognized arguments: (.*)", message)
        if unknown:
            for token in unknown.group(1).split():
                flag = token.split("=")[0]  # '--help' only for a typo of it: never "--model: did you mean --help"
                flags = [option for option in self._option_string_actions
                         if option.startswith("--") and (option != "--help" or flag.startswith("--h"))]
                if flag in OLD_SPELLINGS:  # another subcommand's old spelling: name the one all of them take
                    return f"; {flag} is an old spelling: use {OLD_SPELLINGS[flag]}"
                if token.startswith("-"):
                    hint = closest(flag, flags)
                    if hint:
                        return hint
        return ""


def closest(word: str, options: list[str]) -> str:
    """``"; did you mean 'X'?"`` for the closest of ``options`` (difflib), or '' when none is close."""
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


class DeprecatedAlias(argparse.Action):
    """A hidden old spelling: stores into the new option's ``dest`` and warns once on stderr."""

    def __init__(self, option_strings: list[str], dest: str, replacement: str, nargs: Any = None,
                 const: Any = None, type: Any = None, choices: Any = None, metavar: Any = None) -> None:
        super().__init__(option_strings, dest, nargs=nargs, const=const, default=argparse.SUPPRESS, type=type,
                         choices=choices, help=argparse.SUPPRESS, metavar=metavar)
        self.replacement = replacement

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"warning: {option_string} is deprecated and goes in the next release; use {self.replacement}",
              file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


# every subcommand's deprecated spellings and what replaced them (README, "vocabulary"), filled by
# alias() as the parser is built: an old spelling given to a subcommand that never had it is named
OLD_SPELLINGS: dict[str, str] = {}


def alias(p: argparse.ArgumentParser, old: str, dest: str, replacement: str, **kwargs: Any) -> None:
    """Register ``old`` as a hidden, deprecated spelling of the option stored in ``dest``."""
    OLD_SPELLINGS[old] = replacement
    p.add_argument(old, dest=dest, action=DeprecatedAlias, replacement=replacement, **kwargs)


# ---------------------------------------------------------------------- option builders
def add_model(p: argparse.ArgumentParser, default: str | None, what: str = "tokenizer",
              old: str | None = None, otherwise: str | None = None) -> None:
    """``--model``: a saved model directory, a shipped name, a hub id or a preset (random weights).
    ``default="shipped"``: the shipped tokenizer; None: required unless ``otherwise`` says what
    a missing ``--model`` means."""
    from vitok.cli.common import DEMO_MODEL

    default = DEMO_MODEL if default == "shipped" else default
    hint = f" (default: {default})" if default else f" (default: {otherwise})" if otherwise else ""
    p.add_argument("--model", default=default, required=default is None and otherwise is None,
                   help=f"{what}: a saved model directory, a shipped name (e.g. {DEMO_MODEL}), a Hugging Face "
                        f"hub id or a preset name (random weights){hint}")
    if old:
        alias(p, old, "model", "--model")


def add_inputs(p: argparse.ArgumentParser, what: str = "image / video files or folders of them",
               old: str | None = None) -> None:
    """Positional input paths (one or more; a folder is searched recursively)."""
    p.add_argument("inputs", nargs="*", type=path, default=[], metavar="PATH", help=what)
    if old:  # merged into inputs after parsing (a positional's default would overwrite it)
        alias(p, old, "legacy_inputs", "positional paths", nargs="+", type=path)


def add_size(p: argparse.ArgumentParser, default: int | None, many: bool = False) -> None:
    """``--size N|HxW`` (resize the shorter side, then centre-crop); ``many``: a list of sizes of
    random inputs (``bench``, which reads no files)."""
    shown = "native size" if default is None else f"{default}"
    what = ("input sizes to time, one or more (random inputs)" if many
            else "input size: resize the shorter side, then centre-crop")
    p.add_argument("--size", type=parse_size, nargs="+" if many else None,
                   default=None if default is None else ([(default, default)] if many else (default, default)),
                   metavar="N|HxW", help=f"{what} (default: {shown})")
    if many:
        alias(p, "--sizes", "size", "--size", nargs="+", type=parse_size)


def add_batch_size(p: argparse.ArgumentParser, default: int, old: bool = False) -> None:
    p.add_argument("--batch-size", type=positive_int, default=default, help=f"items per batch (default {default})")
    if old:
        alias(p, "--batch", "batch_size", "--batch-size", type=positive_int)


def add_precision(p: argparse.ArgumentParser, many: bool = False) -> None:
    """``--precision fp32|bf16`` (``many``: one or more of fp32, bf16-autocast, bf16, for the
    benchmark) and ``--compile``; ``--bf16`` is the deprecated spelling of ``--precision bf16``.
    See :mod:`vitok.models.inference` for what each precision does."""
    if many:
        p.add_argument("--precision", nargs="+", choices=BENCH_PRECISIONS, default=list(BENCH_PRECISIONS),
                       help="precisions to measure: fp32, bf16-autocast (fp32 weights under autocast), bf16 "
                            "(weights cast once) (default: all three)")
        alias(p, "--precisions", "precision", "--precision", nargs="+", choices=BENCH_PRECISIONS)
        p.add_argument("--compile", action="store_true",
                       help="also measure each precision compiled with torch.compile (compile time reported apart)")
        return
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32, or bf16: the weights cast to bf16 once, fast on GPUs and AMX CPUs (default: fp32)")
    alias(p, "--bf16", "precision", "--precision bf16", nargs=0, const="bf16")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the encoder and decoder (the compile time is said at the end; the "
                        "times of the items that triggered a compile include it)")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=parse_device, default="auto", metavar="DEVICE",
                   help=f"{DEVICES} (default: auto = cuda when available, else cpu)")


def add_kind(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=KINDS, default="auto",
                   help="image or video inputs (default: auto = from the files found)")


def add_input_kind(p: argparse.ArgumentParser, verb: str) -> None:
    """``--kind`` of the commands that make their own input (``flops`` counts it, ``bench`` times
    it): one image or a clip; see :func:`vitok.cli.common.input_frames`."""
    p.add_argument("--kind", choices=KINDS, default="auto",
                   help=f"{verb} an image (T = 1) or a clip (default: auto = the model's own input, a clip for a "
                        "video tokenizer)")


def add_baseline(p: argparse.ArgumentParser, old: bool = False) -> None:
    p.add_argument("--baseline", choices=BASELINES, default=None,
                   help="also run a diffusers AutoencoderKL (the SD VAE) side by side")
    p.add_argument("--baseline-weights", default=None, help="local diffusers AutoencoderKL directory")
    if old:
        alias(p, "--vs", "baseline", "--baseline", choices=BASELINES)


def add_out(p: argparse.ArgumentParser, default: str | None, what: str = "output folder") -> None:
    from pathlib import Path

    p.add_argument("--out", type=path, default=None if default is None else Path(default), required=default is None,
                   help=f"{what}" + (f" (default: {default})" if default else ""))
