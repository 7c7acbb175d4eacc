"""The shipped tokenizer (``vitok.DEFAULT_MODEL``) against the AutoencoderKL baseline trained the
same way (configs/vitok-tiny-conv/baseline_autoencoder_kl*.yaml; its exported weights are committed
in benchmarks/baselines/autoencoder-kl/), in one run: PSNR / SSIM / LPIPS / rFID and the
patch-grid measure on the val photos at 128 and 256 px (centre crops), with the GMACs and E of
each size, PSNR / SSIM on the val videos (16 x 128 x 128 clips, with their E and GMACs), params,
and encode / decode ms per image at 128 px (each precision asked for, same process). Every row
must have scored the same files (``samples`` / ``skipped`` per size, checked).

    python benchmarks/compare_vitok_tiny.py [--vitok NAME_OR_DIR ...] [--baseline DIR | --no-baseline]
        [--precisions fp32 bf16]

``--vitok`` takes several models (one row each, in order, the baseline last), e.g. the default
beside the tokenizer it replaced: ``--vitok vitok-tiny-conv vitok-tiny``. ``--no-baseline`` leaves
the AutoencoderKL row out (e.g. a new tokenizer against the one it replaces, before the baseline has
been trained).

Writes ``out/compare_vitok_tiny/{results.json,table.md}`` and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from vitok.bench import bench_model, matmul_peak
from vitok.evaluate import EvalConfig, evaluate, model_info
from vitok.models.baselines import build_autoencoder_kl
from vitok.models.vitok import ViTok
from vitok.presets import DEFAULT_MODEL

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BASELINE = Path(__file__).resolve().parent / "baselines" / "autoencoder-kl"


def measure(model: torch.nn.Module, label: str, peaks: dict[str, float], args: argparse.Namespace) -> dict:
    """Every number of one row of the table (``peaks``: the matmul GFLOP/s per precision, measured once)."""
    row: dict = {"model": label}
    info = model_info(model, (1, 128, 128))  # the timings' shape, and the comparison's reference size
    row.update(params_M=info["params_M"], gmacs_128=info["gmacs"], E_128=info["E"],
               ratio_128=info["compression_ratio"])
    for size in args.image_sizes:
        sized = model_info(model, (1, size, size))  # the cost and E of what is evaluated at this size
        row.update({f"gmacs_{size}": sized["gmacs"], f"E_{size}": sized["E"],
                    f"ratio_{size}": sized["compression_ratio"]})
        cfg = EvalConfig(data=[str(args.images)], kind="image", size=size,
                         metrics=["psnr", "ssim", "lpips", "rfid", "grid"],
                         out_dir=str(args.out / label / f"images-{size}"), cache=args.cache)
        results = evaluate(model, cfg, sized)
        row[f"image_{size}"] = results["metrics"]
        row[f"files_{size}"] = {"samples": results["samples"], "skipped": results["skipped_files"]}
    cfg = EvalConfig(data=[str(args.video)], kind="video", size=128, frames=16, metrics=["psnr", "ssim"],
                     batch_size=2, out_dir=str(args.out / label / "video-128"), cache=args.cache)
    video_info = model_info(model, (16, 128, 128))  # a 2D VAE codes each frame: 4x vitok's E for a clip
    row.update(gmacs_video=video_info["gmacs"], E_video=video_info["E"])
    row["video_128"] = evaluate(model, cfg, video_info)["metrics"]
    for precision, peak in peaks.items():
        r = bench_model(model, label, info["gmacs"], (1, 128, 128), 1, precision, args.repeats,
                        torch.device("cpu"), peak)
        row[f"ms_{precision}"] = {"encode": r.encode_ms, "decode": r.decode_ms}
    return row


def check_same_files(rows: list[dict], sizes: list[int]) -> None:
    """``ValueError`` unless every row scored the same number of files, and skipped the same ones,
    at every size, and the row labels are distinct."""
    labels = [r["model"] for r in rows]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two models share a label ({', '.join(labels)}): give directories with distinct names")
    for size in sizes:
        seen = {r["model"]: r[f"files_{size}"] for r in rows}
        if any(files != seen[labels[0]] for files in seen.values()):
            raise ValueError(f"the models did not score the same files at {size} px: {seen}")


def markdown(rows: list[dict], sizes: list[int]) -> str:
    head = ["model", "params (M)"]
    for s in sizes:
        head += [f"GMACs {s}", f"E {s}", f"PSNR {s}", f"SSIM {s}", f"LPIPS {s}", f"rFID {s}", f"grid {s}"]
    precisions = [k.removeprefix("ms_") for k in rows[0] if k.startswith("ms_")]
    head += ["video E", "video GMACs", "video PSNR", "video SSIM", *(f"enc/dec ms {p}" for p in precisions)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], f"{r['params_M']:.2f}"]
        for s in sizes:
            m = r[f"image_{s}"]
            cells += [f"{r[f'gmacs_{s}']:.2f}", str(r[f"E_{s}"]), f"{m.get('psnr', float('nan')):.2f}",
                      f"{m.get('ssim', float('nan')):.3f}", f"{m.get('lpips', float('nan')):.3f}",
                      f"{m.get('rfid', float('nan')):.1f}", f"{m.get('grid', float('nan')):.2f}"]
        v = r["video_128"]
        cells += [str(r["E_video"]), f"{r['gmacs_video']:.1f}", f"{v['psnr']:.2f}", f"{v['ssim']:.3f}"]
        for p in precisions:
            cells.append(f"{r[f'ms_{p}']['encode']:.1f} / {r[f'ms_{p}']['decode']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vitok", nargs="+", default=[DEFAULT_MODEL],
                   help="shipped names or saved model directories, one row each (default: vitok.DEFAULT_MODEL)")
    baseline = p.add_mutually_exclusive_group()
    baseline.add_argument("--baseline", default=str(BASELINE),
                          help="diffusers AutoencoderKL directory written by training (default: the committed one)")
    baseline.add_argument("--no-baseline", action="store_true", help="only the --vitok rows, no AutoencoderKL row")
    p.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"],
                   help="timings to take (bf16 is slow on CPUs without bf16 matmul units)")
    p.add_argument("--images", type=Path, default=SHARED / "images" / "val")
    p.add_argument("--video", type=Path, default=SHARED / "videos" / "val")
    p.add_argument("--image-sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cache", default=None, help="metric weights cache")
    p.add_argument("--out", type=Path, default=Path("out/compare_vitok_tiny"))
    args = p.parse_args()
    if not args.no_baseline and not Path(args.baseline).is_dir():
        p.error(f"--baseline {args.baseline} is not a directory: train the baseline "
                "(configs/vitok-tiny-conv/baseline_autoencoder_kl*.yaml) or give its model directory")
    labels = [Path(name).name for name in args.vitok] + ([] if args.no_baseline else ["autoencoder-kl"])
    if len(set(labels)) != len(labels):
        p.error(f"two models share a label ({', '.join(labels)}): give directories with distinct names")
    models = [(ViTok.from_pretrained(name).float().eval(), Path(name).name) for name in args.vitok]
    if not args.no_baseline:
        models.append((build_autoencoder_kl({}, args.baseline).eval(), "autoencoder-kl"))
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    peaks = {p: matmul_peak(dtypes[p], torch.device("cpu")) for p in args.precisions}
    rows = [measure(model, label, peaks, args) for model, label in models]
    try:
        check_same_files(rows, args.image_sizes)
    except ValueError as err:
        p.error(str(err))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    table = markdown(rows, args.image_sizes)
    (args.out / "table.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
