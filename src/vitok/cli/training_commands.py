"""Training: ``train`` (one tokenizer run) and ``sweep`` (a grid of runs, the scaling study)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from vitok.cli.options import add_device

if TYPE_CHECKING:
    from vitok.train.config import TrainConfig


def register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a tokenizer from a YAML config (stage 1 or 2)",
                       description="Train with `vitok train CONFIG.yaml [section.key=value ...]`. "
                                   "Resumes automatically from the newest checkpoint in run.out_dir. "
                                   "Scale out with `torchrun --nproc_per_node N -m vitok train ...`.")
    p.add_argument("config", type=Path, help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", default=[], help="section.key=value overrides, e.g. run.steps=100")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    import logging

    from vitok.cli.common import train_or_print
    from vitok.train.config import check_data_paths, load_config

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config, args.overrides)  # a bad config fails here, in a blink: torch is not loaded yet
    if not args.print_config:
        check_data_paths(cfg)  # a missing data folder too (the trainer checks again for Python callers)

    def train(cfg: TrainConfig) -> dict[str, float]:  # the trainer (and torch) load only when a run starts
        from vitok.train.trainer import train

        return train(cfg)

    return train_or_print(cfg, args.print_config, train)


def register_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a grid of tokenizer trainings, or report on one (scaling study)",
                       description="`vitok sweep SPEC.yaml` trains every grid point (finished runs skipped, "
                                   "interrupted ones resumed; jobs.sh lists one command per run). "
                                   "`vitok sweep report DIR` evaluates the runs, writes results.csv/.md and plots.")
    p.add_argument("target", help="a sweep spec (YAML), or `report`")
    p.add_argument("dir", nargs="?", type=Path, help="with `report`: the sweep's out_dir")
    p.add_argument("--plan-only", action="store_true", help="write runs.json and jobs.sh, train nothing")
    p.add_argument("--force", action="store_true", help="with `report`: evaluate again")
    p.add_argument("--shard", default="0/1", metavar="I/N",
                   help="train only runs I, I+N, I+2N, ... (0-based): N processes share a sweep")
    add_device(p)  # the report's evaluation (a run trains on its config's run.device)
    p.set_defaults(func=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    from vitok import sweep

    if args.target != "report" and not Path(args.target).is_file():
        from vitok.cli.options import closest

        hint = closest(args.target, ["report"]) if args.dir is not None else ""
        raise FileNotFoundError(f"sweep spec {args.target} does not exist{hint}")
    if args.target == "report":
        if args.dir is None:
            raise ValueError("usage: vitok sweep report DIR")
        if not (args.dir / "runs.json").is_file():
            raise FileNotFoundError(f"{args.dir} is not a sweep folder (no runs.json: run `vitok sweep SPEC.yaml`)")
        sweep.report(args.dir, args.force, device=args.device)
        print(f"report -> {args.dir / 'report'}")
        return 0
    spec = sweep.load_spec(args.target)
    index, _, count = args.shard.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise ValueError(f"--shard must look like I/N with 0 <= I < N, got {args.shard!r}")
    runs = sweep.run_sweep(spec, args.plan_only, shard=(int(index), int(count)))
    from vitok.text import plural

    print(f"{plural(len(runs), 'run')} -> {spec.out_dir} (jobs.sh, runs.json)")
    return 0
