"""The measured sections of a shipped tokenizer's model card, computed from its runs and its comparison
so that no number in the card is typed by hand.

    python benchmarks/card_facts.py --card configs/vitok-tiny-conv/card.json \\
        --stage1 RUNS/candidate-stage1 --stage2 RUNS/candidate-stage2 \\
        --compare RUNS/compare/results.json --row vitok-tiny-conv --out card.json

Reads each stage's ``metrics.jsonl`` (the trainer's logged rows) and the comparison's ``results.json``
(``benchmarks/compare_vitok_tiny.py``), and writes the card (a JSON object {section: markdown}, the
format ``vitok export --card`` takes) with these sections added or replaced:

- **Compute**: steps per stage, median steps/s and the hours that makes (the median is robust to
  pauses and to the start-up of a resumed run; ``--hardware`` says what they ran on);
- **Training curve**: means of the logged loss terms over the first, middle and last 250-step windows;
- **Metrics**: the row's val-photo and val-video scores, as the comparison measured them;
- **Comparison**: the row beside every other row of the same run (e.g. the AutoencoderKL baseline).

The other sections (Data, Architecture, Recipe, ..., Limitations) come from ``--card`` unchanged, in
their order, with Limitations after the measured ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

# the loss terms a card reports, in order, with the names the field uses for them
TERMS = {"loss": "loss", "rec": "MSE", "lpips": "LPIPS-VGG", "kl": "KL", "ssim": "SSIM", "lattice": "grid penalty",
         "g_adv": "generator adversarial", "d_loss": "discriminator hinge"}
WINDOW = 250
LAST = ("Limitations",)  # hand-written sections that follow the measured ones


def read_rows(run: Path) -> list[dict]:
    """The rows of ``run/metrics.jsonl``, one per logged step (the last one wins if a step repeats).

    Raises:
        FileNotFoundError: the run has no ``metrics.jsonl``.
        ValueError: it holds no rows.
    """
    path = run / "metrics.jsonl"
    by_step: dict[int, dict] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number} is not a JSON row ({err})") from None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int) or \
                not isinstance(row.get("steps_per_s"), (int, float)) or row["steps_per_s"] <= 0:
            raise ValueError(f"{path}:{number} is not a trainer row (an object with an int step and steps_per_s > 0)")
        by_step[row["step"]] = row
    if not by_step:
        raise ValueError(f"{path} holds no logged steps")
    return [by_step[s] for s in sorted(by_step)]


def compute(rows: list[dict]) -> tuple[int, float, float]:
    """(steps, median steps/s, hours at that median) of one stage."""
    steps = rows[-1]["step"]
    median = statistics.median(r["steps_per_s"] for r in rows)
    return steps, median, steps / median / 3600


def window_means(rows: list[dict], start: int, end: int) -> dict[str, float]:
    """Mean of each loss term over the rows logged at steps ``start < step <= end``."""
    inside = [r for r in rows if start < r["step"] <= end]
    return {k: statistics.fmean(r[k] for r in inside) for k in TERMS if inside and all(k in r for r in inside)}


def curve_text(rows: list[dict]) -> str:
    """'steps 1-250: loss a, MSE b, ...; ...' over the first, middle and last windows of a stage."""
    steps = rows[-1]["step"]
    middle = (steps // 2) // WINDOW * WINDOW
    starts = sorted({0, max(middle - WINDOW, 0), max(steps - WINDOW, 0)})
    parts = []
    for start in starts:
        means = window_means(rows, start, start + WINDOW)
        if means:
            values = ", ".join(f"{TERMS[k]} {v:.3f}" for k, v in means.items())
            parts.append(f"steps {start + 1}-{min(start + WINDOW, steps)}: {values}")
    return "; ".join(parts) or "no complete window logged"


def grid_text(scores: dict) -> str:
    """The grid measure to 2 decimals, or '-' where the comparison did not measure it."""
    return f"{scores['grid']:.2f}" if "grid" in scores else "-"


def metrics_text(row: dict) -> str:
    """The Markdown metrics table of one comparison row."""
    lines = ["Measured on these (bf16-stored) weights by `benchmarks/compare_vitok_tiny.py`: fp32 forward, "
             "posterior mean, `vitok eval` protocol (shorter side resized, centre crop).", "",
             "| data | PSNR | SSIM | LPIPS (AlexNet) | rFID | grid |", "|---|---|---|---|---|---|"]
    for key in sorted(k for k in row if k.startswith("image_")):
        m = row[key]
        lines.append(f"| val photos, {key.removeprefix('image_')} px | {m['psnr']:.2f} | {m['ssim']:.3f} | "
                     f"{m['lpips']:.3f} | {m['rfid']:.1f} | {grid_text(m)} |")
    v = row["video_128"]
    lines.append(f"| val video, 16x128x128 | {v['psnr']:.2f} | {v['ssim']:.3f} | - | - | - |")
    lines += ["", "rFID over a few dozen images is dominated by the small-sample bias of the Frechet distance: "
              "compare models on the same images only. The grid measure is 1.0 when the error shows no "
              "patch lattice (`vitok.metrics.grid`)."]
    return "\n".join(lines)


def comparison_text(rows: list[dict], name: str) -> str:
    """One line per model of the same run (``name``'s in bold): PSNR / SSIM / LPIPS / grid and
    GMACs at each size, E at 128 px."""
    sizes = sorted(int(k.removeprefix("image_")) for k in rows[0] if k.startswith("image_"))

    def cells(r: dict) -> str:
        scores = ", ".join(f"{s} px {r[f'image_{s}']['psnr']:.2f} dB / {r[f'image_{s}']['ssim']:.3f} / "
                           f"{r[f'image_{s}']['lpips']:.3f} / {grid_text(r[f'image_{s}'])}"
                           for s in sizes)
        costs = ", ".join(f"{r[f'gmacs_{s}']:.2f} GMACs at {s} px" for s in sizes)
        return f"{r['model']} (E = {r['E_128']} at 128 px; {costs}): {scores}"

    lines = ["Val photos, PSNR / SSIM / LPIPS / grid, measured in one run of "
             "`benchmarks/compare_vitok_tiny.py`:", ""]
    lines += [f"- **{cells(r)}**" if r["model"] == name else f"- {cells(r)}" for r in rows]
    return "\n".join(lines)


def card_facts(card: dict[str, str], stage1: Path, stage2: Path | None, results: list[dict], name: str,
               hardware: str) -> dict[str, str]:
    """``card`` with its Compute, Training curve, Metrics and Comparison sections measured.

    Raises:
        ValueError: ``name`` is not a row of ``results``.
    """
    if not isinstance(card, dict) or not all(isinstance(v, str) for v in card.values()):
        raise ValueError("the card must be a JSON object {section title: markdown text}")
    if not isinstance(results, list) or not all(isinstance(r, dict) and "model" in r for r in results):
        raise ValueError("the comparison must be a JSON list of rows, each with a 'model' (compare_vitok_tiny.py)")
    by_name = {r["model"]: r for r in results}
    if len(by_name) != len(results):
        raise ValueError(f"two comparison rows share a model label ({', '.join(r['model'] for r in results)})")
    if name not in by_name:
        raise ValueError(f"no row {name!r} in the comparison (rows: {', '.join(by_name)})")
    stages = [("Stage 1", read_rows(stage1))] + ([("Stage 2", read_rows(stage2))] if stage2 else [])
    spent, parts, curves = 0.0, [], []
    for label, rows in stages:
        steps, median, hours = compute(rows)
        spent += hours
        parts.append(f"{label}: {steps} steps, about {hours:.1f} h of compute (median {median:.2f} steps/s).")
        curves.append(f"{label}: {curve_text(rows)}.")
    measured = {"Compute": f"{hardware}. {' '.join(parts)} About {spent:.1f} h in all.",
                "Training curve": "Means of the logged loss terms per 250-step window. " + " ".join(curves),
                "Metrics": metrics_text(by_name[name])}
    if len(results) > 1:
        measured["Comparison"] = comparison_text(results, name)
    head = {k: v for k, v in card.items() if k not in measured and k not in LAST}
    return {**head, **measured, **{k: card[k] for k in LAST if k in card}}


def read_json(path: Path) -> object:
    """A JSON file's value; ``ValueError`` naming the file when it is not JSON."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not JSON ({err})") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--card", type=Path, required=True, help="the hand-written sections (JSON object)")
    p.add_argument("--stage1", type=Path, required=True, help="stage-1 run folder (holds metrics.jsonl)")
    p.add_argument("--stage2", type=Path, default=None, help="stage-2 run folder, if there is one")
    p.add_argument("--compare", type=Path, required=True, help="results.json of compare_vitok_tiny.py")
    p.add_argument("--row", required=True, help="the model's row in the comparison, e.g. vitok-tiny-conv")
    p.add_argument("--hardware", default="2 CPU cores (AVX2, no GPU), fp32, one thread per run",
                   help="what the runs trained on (default: %(default)s)")
    p.add_argument("--out", type=Path, required=True, help="the card to write (JSON)")
    args = p.parse_args(argv)
    try:
        facts = card_facts(read_json(args.card), args.stage1, args.stage2, read_json(args.compare), args.row,
                           args.hardware)
        args.out.write_text(json.dumps(facts, indent=1) + "\n")
    except KeyError as err:
        p.error(f"a comparison row lacks {err} (rows of one compare_vitok_tiny.py run have the same keys)")
    except (OSError, ValueError) as err:  # json's JSONDecodeError is a ValueError
        p.error(str(err))
    print(f"wrote {args.out}: {', '.join(facts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
