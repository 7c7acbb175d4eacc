"""The ``vitok`` command line: one subcommand per job, grouped by concept.

Each subcommand is a ``register_*`` function (its arguments) and a ``run_*`` function (the job),
so ``vitok --help`` lists them all and each has its own ``--help``:

- ``tokenizer_commands.py``   presets, flops, reconstruct, demo, export (using a tokenizer)
- ``training_commands.py``    train, sweep
- ``measuring_commands.py``   eval, bench
- ``resource_commands.py``    data, weights (offline resources)
- ``generation_commands.py``  cache-latents, train-dit, sample, eval-gen (a DiT on the latents)
- ``options.py``   the one vocabulary of flags (``--model``, ``--size``, ``--device``, ...) and the parser
- ``argtypes.py``  checked ``type=`` converters (sizes, devices, ranges)
- ``common.py``    helpers they share

The command modules are named ``*_commands`` so that none shares a name with the library package
it drives (``cli/training_commands.py`` runs ``vitok.train``).

Options may come before or after positional arguments (``vitok train CFG --print-config
run.steps=5``); ``vitok`` alone prints this help.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vitok.cli import (
    generation_commands,
    measuring_commands,
    resource_commands,
    tokenizer_commands,
    training_commands,
)
from vitok.cli.common import DEMO_MODEL, SAMPLES, SHIPPED
from vitok.cli.options import Parser

__all__ = ["DEMO_MODEL", "SAMPLES", "SHIPPED", "build_parser", "main"]

tokenizer, training, measuring, resource = tokenizer_commands, training_commands, measuring_commands, resource_commands
COMMANDS = (
    tokenizer.register_presets, tokenizer.register_flops, tokenizer.register_reconstruct, tokenizer.register_demo,
    resource.register_weights, training.register_train, measuring.register_eval, measuring.register_bench,
    resource.register_data, training.register_sweep, tokenizer.register_export, *generation_commands.COMMANDS,
)


def build_parser() -> argparse.ArgumentParser:
    from vitok import __version__

    parser = Parser(prog="vitok", description="ViTok visual tokenizers: build, train, evaluate and use ViT "
                    "autoencoders. `vitok COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"vitok {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers by name."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | None:
    """The namespace of ``vitok COMMAND ...``, options and positionals in any order (the subcommand
    parses intermixed); None after printing the help for a bare ``vitok``. Exits 2 with a "did you
    mean" for an unknown subcommand and with the subcommand's own usage for an unknown flag."""
    if not argv:
        parser.print_help()
        return None
    if argv[0].startswith("-"):  # --help / --version exit here; anything else is an error
        if argv[0] not in ("-h", "--help", "--version"):
            parser.error(f"unrecognized arguments: {argv[0]}")
        parser.parse_args(argv[:1])
    commands = subcommands(parser)
    if argv[0] not in commands:
        parser.error(f"argument COMMAND: invalid choice: {argv[0]!r} (choose from "
                     f"{', '.join(repr(c) for c in commands)})")
    command = commands[argv[0]]
    rest, after = argv[1:], []
    if "--" in rest:  # everything after "--" is a path, even "-name.jpg"
        rest, after = rest[:rest.index("--")], rest[rest.index("--") + 1:]
    for token in rest:  # an unknown flag first, so a typo of a required one is named as the typo
        if token.startswith("--") and token.split("=")[0] not in command._option_string_actions:
            command.error(f"unrecognized arguments: {token}")
    args = command.parse_intermixed_args(rest)
    args.command = argv[0]
    if after:
        if not isinstance(getattr(args, "inputs", None), list):
            command.error(f"unrecognized arguments: {' '.join(after)}")
        args.inputs += [Path(a) for a in after]
    if hasattr(args, "legacy_inputs"):  # the deprecated --data PATH ... (vitok.cli.options.add_inputs)
        args.inputs = [*args.legacy_inputs, *args.inputs]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``vitok`` command; returns the exit status (2 with a one-line message on bad input,
    a missing or unreadable file, or a full, read-only or unwritable disk; 128 + the signal number
    when a training run stopped on SIGTERM / SIGUSR1 after saving its checkpoint; 130 on Ctrl-C, with
    one line instead of a traceback)."""
    args = parse_args(build_parser(), list(sys.argv[1:] if argv is None else argv))
    if args is None:
        return 0
    try:
        return args.func(args)
    except (ValueError, OSError) as err:
        print(f"vitok {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        from vitok.train.preemption import RunInterruptedError

        if not isinstance(err, RunInterruptedError):
            raise
        print(f"vitok {args.command}: {err}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print(f"\nvitok {args.command}: interrupted", file=sys.stderr)
        return 130
