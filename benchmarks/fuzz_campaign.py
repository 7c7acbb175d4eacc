"""A large, seeded fuzz campaign over vitok's public surface (issue #13): not a test, a tool to run.

    nice -n 5 .venv/bin/python benchmarks/fuzz_campaign.py --api 5000 --config 4000 --cli 400 --seed 0

Three parts, each a number of random cases:

- ``--api N``: random calls of the public Python API with random arguments: a tiny ``ViTok``'s
  ``encode`` / ``decode`` / ``forward`` / ``encode_posterior`` / ``latent_shape`` /
  ``set_latent_stats`` / ``normalize_latent`` / ``denormalize_latent`` / tiling and slicing,
  ``from_preset`` / ``get_config``, ``from_pretrained`` on corrupted or malicious model folders
  (mutated ``config.json``, truncated, bit-flipped, re-headed or pickled weights, links, folders),
  the functions of :mod:`vitok.metrics`, and the media and data helpers (``vitok.io``,
  ``vitok.data``) on odd files (16-bit, palette, CMYK, EXIF-rotated, 1x1, truncated, empty, text,
  decompression bombs, audio-only and Matroska videos, tar shards with dotted names).
- ``--config N``: mutations of training configs through :func:`vitok.train.load_config` (the
  loader ``vitok train`` uses): ``key=value`` overrides with random keys, values, types and YAML
  syntax, and the project's YAML files mutated as text or as structure. An accepted config is
  checked for absurd values (non-finite numbers, impossible batch splits, a loss with no
  reconstruction term, ...), and ``--runs K`` of the accepted ones train for 2 steps on the
  nano preset and tiny data, in-process.
- ``--cli N``: random command lines over every subcommand (flags of the command and of others,
  bad numbers, odd and real paths, real tiny inputs so some commands do real work), run
  in-process through :func:`vitok.cli.main`, with stdout/stderr captured. ``vitok data build`` and
  ``vitok weights fetch`` would go to the network: the campaign makes the network look down
  (an ``OSError``) and gives ``weights`` its own cache folder.

Every case ends in one of four categories:

- **result**: a return value that passed the case's checks (shapes, finiteness, documented
  values);
- **clear error**: ``ValueError`` / ``TypeError`` (or a documented ``FileNotFoundError``) with a
  one-line message, raised by a ``raise`` statement in vitok's own code; for the CLI an exit status
  of 2 (or 1) whose error is one line, with no traceback;
- **traceback**: anything else (another exception type, an error raised inside torch / numpy /
  Pillow / the standard library, a multi-line or empty message, an error that names neither the
  key nor the file, a timeout), grouped by kind (type and place) with one example each;
- **silent wrong result**: a return value that fails a check (wrong output shape, NaN from finite
  input, a PSNR above its cap, a model that loads different weights, exit status 0 for an
  absurd value, a config accepted with absurd values, a malicious pickle that ran).

The exit status is 1 when there is any traceback or silent wrong result. The campaign writes only
under a temporary folder (``--keep`` keeps it), sets ``HF_HUB_OFFLINE=1`` and uses one torch
thread. The generators of the fuzz tests in ``tests/`` (``tests.test_fuzz_api``,
``tests.test_fuzz_cli``, ``tests.test_train_config``) are reused as a part of the value pools.

This script is the entry point; the campaign lives in the package ``benchmarks/fuzz/``: ``judge``
(categories, running and judging a case), ``media`` (fixtures), ``api_env`` and the ``api_*`` case
generators, ``api``, ``config`` and ``cli`` (the three parts).

Last run (seed 0, the issue's scale, 435 s on 2 busy CPU cores; details in docs/robustness.md):
API 5000 cases in 67 s: 1928 results, 3072 clear errors, 0 tracebacks, 0 silent wrong results;
config 4000 mutations in 30 s: 662 results, 3338 clear errors, 0 tracebacks, 0 silent wrong
results (8 accepted ones trained, all fine); CLI 400 command lines in 319 s: 115 results, 285
clear errors, 0 tracebacks, 0 silent wrong results.
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # the fuzz package next to this script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

# importing fuzz makes tests importable and sets HF_HUB_OFFLINE=1 before vitok is imported
from fuzz.api import api_campaign
from fuzz.cli import cli_campaign, judge_cli
from fuzz.config import config_campaign
from fuzz.judge import Tally, captured, expect, run_case

__all__ = ["Tally", "api_campaign", "captured", "cli_campaign", "config_campaign", "expect", "judge_cli", "main",
           "run_case"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", type=int, default=500, help="random API calls")
    parser.add_argument("--config", type=int, default=400, help="config mutations")
    parser.add_argument("--cli", type=int, default=40, help="random command lines")
    parser.add_argument("--runs", type=int, default=6, help="accepted config mutations trained for 2 steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("vitok").setLevel(logging.WARNING)
    tally = Tally()
    root = Path(tempfile.mkdtemp(prefix="vitok-fuzz-"))
    start = time.perf_counter()
    try:
        for part, count, run in (("api", args.api, lambda r: api_campaign(args.api, r, tally, root, args.verbose)),
                                 ("config", args.config, lambda r: config_campaign(args.config, args.runs, r, tally,
                                                                                    root, args.verbose)),
                                 ("cli", args.cli, lambda r: cli_campaign(args.cli, r, tally, root, args.verbose))):
            if count <= 0:
                continue
            began = time.perf_counter()
            run(random.Random(f"{args.seed}:{part}"))
            tally.seconds[part] = time.perf_counter() - began
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(tally.report())
    print(f"seed {args.seed}: {tally.faults()} tracebacks and silent wrong results in "
          f"{time.perf_counter() - start:.0f} s" + (f" (scratch kept in {root})" if args.keep else ""))
    return 1 if tally.faults() else 0


if __name__ == "__main__":
    sys.exit(main())
