"""The evaluation protocol of the ViTok paper (arXiv 2501.09755), shared by vitok models and baselines.

Images: resize the shorter side + center-crop to ``size``. Videos: the first ``frames`` frames,
resized and center-cropped the same way. Reconstructions are compared with the originals on
uint8-quantised values: PSNR, SSIM, LPIPS, rFID (frame-wise for video) and rFVD. Unreadable
files are skipped (each readable file is scored exactly once) and listed in ``results.json``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from vitok.data.datasets import MediaFolder, collate
from vitok.data.transforms import EvalTransform
from vitok.files import display_name
from vitok.metrics.grid import lattice_period
from vitok.text import model_label
from vitok.weights import MissingWeightsError


@dataclass
class EvalConfig:
    """What to evaluate on and how (defaults = the paper's image protocol at 256 px); every field
    is checked on construction (``ValueError`` naming it)."""

    data: list[str]
    kind: Literal["auto", "image", "video"] = "auto"
    size: int | tuple[int, int] = 256  # N or (H, W): resize the shorter side, then centre-crop
    frames: int = 16
    metrics: list[str] = field(default_factory=lambda: ["psnr", "ssim", "lpips", "rfid", "grid"])
    max_samples: int | None = None
    batch_size: int = 8
    device: str = "cpu"
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: weights cast once (vitok.models.inference)
    compile: bool = False  # torch.compile the encoder and decoder
    out_dir: str = "out/eval"
    cache: str | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "image", "video"):
            raise ValueError(f"kind must be 'auto', 'image' or 'video', got {self.kind!r}")
        size = self.size if isinstance(self.size, (tuple, list)) else (self.size, self.size)
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size):
            raise ValueError(f"size must be an int >= 1 or (H, W) of ints >= 1, got {self.size!r}")
        for name, minimum in (("frames", 1), ("batch_size", 1), ("workers", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
        if self.max_samples is not None and (not isinstance(self.max_samples, int) or self.max_samples < 1):
            raise ValueError(f"max_samples must be None or an int >= 1, got {self.max_samples!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be true or false, got {self.compile!r}")
        if isinstance(self.data, (str, bytes)) or not self.data:
            raise ValueError(f"data must be a non-empty list of folders or files, got {self.data!r}")
        from vitok.metrics.streaming import canonical_metric

        self.metrics = list(dict.fromkeys(canonical_metric(m) for m in self.metrics))

    @property
    def crop(self) -> tuple[int, int]:
        """The centre crop (H, W) in pixels."""
        return tuple(self.size) if isinstance(self.size, (tuple, list)) else (self.size, self.size)

    def check(self) -> Literal["image", "video"]:
        """Everything that can be checked before a model runs: the data exist and hold files of
        one kind (``auto`` decides which), and the metrics fit it (rFVD needs videos of at least 9
        frames). Returns the kind; raises ``ValueError`` / ``FileNotFoundError`` (one line)."""
        from vitok.data.datasets import list_files

        if not self.metrics:
            raise ValueError("no metrics given (choose from psnr, ssim, lpips, lpips-vgg, rfid, rfvd, grid)")
        kind = detect_kind(self.data) if self.kind == "auto" else self.kind
        if "rfvd" in self.metrics and (kind != "video" or self.frames < 9):
            raise ValueError("rfvd needs videos of at least 9 frames (the protocol uses 16), got "
                             + (f"{kind}s" if kind != "video" else f"--frames {self.frames}"))
        files = len(list_files(self.data, kind))
        count = min(files, self.max_samples or files)
        frechet = [m for m in self.metrics if m == "rfvd" or (m == "rfid" and (kind == "image" or self.frames < 2))]
        if count < 2 and frechet:  # a covariance needs two samples (rfid on videos: two frames)
            print(f"warning: skipping {', '.join(frechet)}: a Frechet distance needs at least 2 files, "
                  f"got {count}", file=sys.stderr)
            self.metrics = [m for m in self.metrics if m not in frechet]
        return kind


def detect_kind(paths: list[str]) -> Literal["image", "video"]:
    """'image' or 'video': the one kind of media file the paths hold.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: no image or video file, or both kinds (name one with ``kind``).
    """
    from vitok.data.datasets import list_files

    counts = {}
    for kind in ("image", "video"):
        try:
            counts[kind] = len(list_files(paths, kind))
        except ValueError:
            counts[kind] = 0
    from vitok.text import plural

    where = ", ".join(map(str, paths))
    if counts["image"] and counts["video"]:
        raise ValueError(f"{where} holds {plural(counts['image'], 'image')} and {plural(counts['video'], 'video')}: "
                         "evaluate one kind at a time (--kind image or --kind video)")
    if not counts["image"] and not counts["video"]:
        raise ValueError(f"no image or video files in {where}")
    return "image" if counts["image"] else "video"


def build_metrics(names: list[str], device: torch.device, cache: str | None,
                  period: int = 8, size: int | None = None) -> tuple[dict, dict[str, str]]:
    """Metric objects by name; those whose weights are missing, or (given the crop ``size``) that
    need larger images (SSIM: 11 px, LPIPS: 31 px AlexNet / 16 px VGG), are skipped with the
    reason, printed as a note."""
    from vitok.metrics.streaming import build_metric

    metrics, skipped = {}, {}
    for name in names:
        try:
            metric = build_metric(name, device, cache, period)
        except MissingWeightsError as err:
            skipped[name] = str(err)
        else:
            min_size = getattr(metric, "min_size", 1)
            if size is not None and size < min_size:
                skipped[name] = f"needs images of at least {min_size}x{min_size} px, evaluating at {size} px"
            else:
                metrics[name] = metric
        if name in skipped:
            print(f"warning: skipping {name}: {skipped[name]}", file=sys.stderr)
    return metrics, skipped


def eval_loader(cfg: EvalConfig, kind: str, rank: int = 0, world: int = 1) -> DataLoader:
    """Batches of this rank's share of the (first ``max_samples``) files; an unreadable file is
    dropped from its batch and named in the batch's ``skipped`` (never replaced by another)."""
    dataset = MediaFolder(cfg.data, kind, EvalTransform(cfg.crop), num_frames=cfg.frames,
                          random_clips=False, substitute=False)
    indices = list(range(min(len(dataset), cfg.max_samples or len(dataset))))[rank::world]
    return DataLoader(Subset(dataset, indices), batch_size=cfg.batch_size, collate_fn=collate,
                      num_workers=cfg.workers)


def model_info(model: torch.nn.Module, shape: tuple[int, int, int]) -> dict[str, object]:
    """Name, parameters, GMACs, E and compression ratio of a vitok model or baseline at (T, H, W);
    a loaded model's name is the name it was loaded by with the architecture, e.g.
    ``vitok-tiny (Ti-XS/4x8)``."""
    from vitok.metrics.flops import compression_ratio, count_macs, latent_size

    params = sum(p.numel() for p in model.parameters()) / 1e6
    if hasattr(model, "config"):
        config = model.config
        loaded = getattr(model, "name_or_path", None)
        name = model_label(loaded, config.name)
        return {"model": name, "architecture": config.name, "params_M": params,
                "gmacs": count_macs(config, shape).gmacs, "E": latent_size(config, shape),
                "compression_ratio": compression_ratio(config, shape)}
    t, h, w = shape
    e = model.latent_size(shape)
    return {"model": model.name, "params_M": params, "gmacs": model.gmacs(shape), "E": e,
            "compression_ratio": 3 * t * h * w / e}


def evaluate(model: nn.Module, cfg: EvalConfig, info: dict[str, Any]) -> dict[str, Any]:
    """Run the protocol; writes ``results.json`` and ``comparison.png`` into ``cfg.out_dir``.

    The model is prepared in place for ``cfg.precision`` and ``cfg.compile`` (see
    :func:`vitok.models.inference.prepare_for_inference`). ``info`` (model name, GMACs, E,
    compression ratio) is copied into the results; ``samples`` is the number of files scored (over
    all ranks), ``skipped_files`` the unreadable ones (``skipped_reasons``: why each), ``padded_clips``
    the videos shorter than ``cfg.frames``, scored padded with their last frame
    (:func:`vitok.data.datasets.fit_clip`), ``seconds`` the wall time without the calls
    that compiled (``compile_seconds``). Raises
    ``ValueError`` (one line: how many files, where, the first reason) when none could be read.
    """
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from vitok.metrics.psnr import psnr
    from vitok.models.inference import CompileStats, prepare_for_inference

    device = torch.device(cfg.device)
    kind = cfg.check()
    metrics, skipped = build_metrics(cfg.metrics, device, cfg.cache, lattice_period(model), min(cfg.crop))
    import torch.distributed as dist

    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    loader = eval_loader(cfg, kind, rank, world)
    model = prepare_for_inference(model, cfg.precision, device, cfg.compile)
    compiling = CompileStats()
    shown: list[tuple[torch.Tensor, torch.Tensor, float]] = []
    count, start = 0, time.perf_counter()
    unreadable: dict[str, str] = {}
    padded: list[str] = []
    with logging_redirect_tqdm():  # a skipped file's warning on a line of its own, not over the bar
        for batch in tqdm(loader, desc="eval", unit="batch", dynamic_ncols=True):
            unreadable.update(zip(batch["skipped"], batch["errors"]))
            padded += batch["padded"]
            if batch["x"] is None:
                continue
            x = batch["x"].to(device)
            with torch.inference_mode(), compiling.track():
                recon = model(x).recon.float().clamp(-1, 1)
            with torch.inference_mode():
                for metric in metrics.values():
                    metric.update(x, recon)
            count += x.shape[0]
            for xi, ri, score in zip(x, recon, psnr(recon, x).tolist()):
                if len(shown) < 8:
                    shown.append((xi.cpu(), ri.cpu(), score))
    seconds = time.perf_counter() - start - compiling.seconds
    count, unreadable, padded = _gather_counts(count, unreadable, padded, device, world)
    if count == 0:
        raise ValueError(no_readable_files(cfg.data, unreadable))
    results = {
        **info, "kind": kind, "size": cfg.size if isinstance(cfg.size, int) else list(cfg.size),
        "frames": cfg.frames if kind == "video" else 1,
        "data": [display_name(p) for p in cfg.data], "samples": count, "seconds": seconds,
        "precision": cfg.precision, "compile_seconds": compiling.seconds if cfg.compile else None,
        "metrics": compute_metrics(metrics), "skipped": skipped,
        "skipped_files": sorted(map(display_name, unreadable)),
        "skipped_reasons": {display_name(k): display_name(v) for k, v in sorted(unreadable.items())},
        "padded_clips": sorted(map(display_name, padded)), "lattice_period": lattice_period(model),
    }
    write_results(Path(cfg.out_dir), results, metrics, shown)
    return results


def write_results(out: Path, results: dict[str, Any], metrics: dict[str, Any],
                  shown: list[tuple[torch.Tensor, torch.Tensor, float]]) -> None:
    """``results.json``, the reference statistics of the Frechet metrics (``<name>_real_stats.npz``,
    reusable for generation metrics) and ``comparison.png`` (originals over reconstructions)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, metric in metrics.items():
        if hasattr(metric, "real"):
            metric.real.save(out / f"{name}_real_stats.npz")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    save_comparison(shown, out / "comparison.png")


def compute_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Every metric's value; the Frechet distances (a few seconds to a minute of linear algebra
    after the last batch) say so on stderr first."""
    values = {}
    for name, metric in metrics.items():
        if hasattr(metric, "real"):
            print(f"{name}: computing the Frechet distance of the feature statistics ...", file=sys.stderr)
        try:
            values[name] = metric.compute()
        except ValueError as err:  # e.g. fewer than 2 readable files for a covariance
            print(f"warning: {name} not reported: {err}", file=sys.stderr)
    return values


def _gather_counts(count: int, unreadable: dict[str, str], padded: list[str], device: torch.device,
                   world: int) -> tuple[int, dict[str, str], list[str]]:
    """The scored-sample count, the unreadable files and the padded clips of all ranks (unchanged
    on one process)."""
    if world == 1:
        return count, unreadable, padded
    import torch.distributed as dist

    total = torch.tensor([count], dtype=torch.int64, device=device)
    dist.all_reduce(total)
    parts: list[tuple[dict[str, str], list[str]]] = [({}, []) for _ in range(world)]
    dist.all_gather_object(parts, (unreadable, padded))
    return (int(total.item()), {k: v for part, _ in parts for k, v in part.items()},
            [p for _, clips in parts for p in clips])


def no_readable_files(data: list[str], unreadable: dict[str, str]) -> str:
    """The one-line error for data in which no file could be read: how many, where, the first reason."""
    first = next(iter(unreadable.values()), "no files")
    count = f"the {len(unreadable)} files" if len(unreadable) != 1 else "the 1 file"
    return f"none of {count} under {', '.join(map(str, data))} could be read (first: {first})"


def save_comparison(items: list[tuple[torch.Tensor, torch.Tensor, float]], path: Path) -> None:
    """Originals (top) over reconstructions (bottom), each column captioned with its PSNR; videos
    show frame 0."""
    from vitok.io import save_image
    from vitok.viz import with_caption

    if not items:
        return
    columns = [torch.cat([x[:, 0], r[:, 0]] if x.ndim == 4 else [x, r], dim=-2) for x, r, _ in items]
    width = columns[0].shape[-1]
    texts = [(i * width, f"{score:.2f} dB") for i, (_, _, score) in enumerate(items)]
    save_image(with_caption(torch.cat(columns, dim=-1), texts), path)
