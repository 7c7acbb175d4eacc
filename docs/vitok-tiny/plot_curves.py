"""Training curves of a run (or several) from their metrics.jsonl: loss terms against step.

    python docs/vitok-tiny/plot_curves.py RUN_DIR [RUN_DIR ...] [--vs RUN_DIR ...] --out curves.png

Run directories given together are one training chained end to end (stage 1, then stage 2); ``--vs``
overlays a second such chain (dashed), e.g. the AutoencoderKL baseline trained with the same configs.
A resumed run logs some steps twice; the last record of each step wins. Curves are smoothed with a
moving average over ``--window`` logged points.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load_metrics(run: Path) -> list[dict]:
    """One record per logged step (the last one written), sorted by step."""
    by_step = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        by_step[record["step"]] = record
    return [by_step[s] for s in sorted(by_step)]


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average."""
    return [sum(values[max(0, i - window + 1):i + 1]) / (i + 1 - max(0, i - window + 1)) for i in range(len(values))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--vs", nargs="*", type=Path, default=[], help="a second chain of runs, drawn dashed")
    parser.add_argument("--keys", nargs="+", default=["loss", "rec", "lpips", "kl"])
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.keys), figsize=(4 * len(args.keys), 3.2))
    for runs, style in ((args.runs, "-"), (args.vs, "--")):
        offset = 0
        for run in runs:
            records = load_metrics(run)
            steps = [offset + r["step"] for r in records]
            for ax, key in zip(axes, args.keys):
                values = [r[key] for r in records if key in r]
                if values:
                    ax.plot(steps[-len(values):], smooth(values, args.window), style, label=run.name)
            offset = steps[-1]
    for ax, key in zip(axes, args.keys):
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if key in ("rec", "lpips", "loss"):
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
