"""The ``vitok`` command line: one subcommand per job, grouped by concept.

Each subcommand is a ``register_*`` function (its arguments) and a ``run_*`` function (the job),
so ``vitok --help`` lists them all and each has its own ``--help``:

- ``model.py``     presets, flops, reconstruct, demo, export (using a tokenizer)
- ``train.py``     train, sweep
- ``evaluate.py``  eval, bench
- ``data.py``      data, weights (offline resources)
- ``generate.py``  cache-latents, train-dit, sample, eval-gen (a DiT on the latents)
- ``common.py``    helpers they share
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vitok.cli import data, evaluate, generate, model, train
from vitok.cli.common import DEMO_MODEL, SAMPLES, SHIPPED

__all__ = ["DEMO_MODEL", "SAMPLES", "SHIPPED", "build_parser", "main"]

COMMANDS = (
    model.register_presets, model.register_flops, model.register_reconstruct, model.register_demo,
    data.register_weights, train.register_train, evaluate.register_eval, evaluate.register_bench,
    data.register_data, train.register_sweep, model.register_export, *generate.COMMANDS,
)


def build_parser() -> argparse.ArgumentParser:
    from vitok import __version__

    parser = argparse.ArgumentParser(prog="vitok", description="ViTok visual tokenizers: "
                                     "build, train, evaluate and use ViT autoencoders.")
    parser.add_argument("--version", action="version", version=f"vitok {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``vitok`` command; returns the exit status (2 with a one-line message on bad input,
    a missing or unreadable file, or a full, read-only or unwritable disk)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:
        print(f"vitok {args.command}: error: {err}", file=sys.stderr)
        return 2
