"""Latent caching for generative models (``vitok cache-latents``) and the dataset that reads it.

A dataset is encoded once with a tokenizer into shards ``shard-00000.safetensors`` holding
``latents`` (N, c, [t,] h, w) float32 (posterior means) and ``labels`` (N,) int64. Finished shards
are kept, so an interrupted run resumes; ``manifest.json`` (written before the first shard)
records what the shards are made of (the files and their labels, the classes, kind, crop, clip
length, flips, precision, shard size and a fingerprint of the tokenizer's weights), and a cache
is resumed only with the same manifest, so two datasets or tokenizers never mix in one folder.
Labels come from the first sub-folder under the data root (sorted class names) or from a
``labels.json`` file mapping relative paths to class indices. ``stats.json`` holds the
per-channel latent mean and std, which are also stored with a copy of the tokenizer
(``tokenizer/``) for ``encode(normalize=True)`` / ``decode(denormalize=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from vitok.data.datasets import MediaFolder, collate
from vitok.data.transforms import EvalTransform
from vitok.files import atomic_write


def class_labels(files: list[Path], root: Path, labels_file: Path | None) -> tuple[list[int], list[str]]:
    """Per-file labels and the class names: from ``labels_file`` ({relative path: index}) or the
    first sub-folder below ``root`` (files directly in ``root`` get class 0)."""
    if labels_file is not None:
        try:
            mapping = json.loads(Path(labels_file).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"--labels {labels_file}: not a JSON file of {{relative path: class}}: {err}") from None
        missing = [str(f.relative_to(root)) for f in files if str(f.relative_to(root)) not in mapping]
        if missing:
            raise ValueError(f"--labels {labels_file} has no class for {len(missing)} of the {len(files)} files "
                             f"(first: {missing[0]})")
        try:
            labels = [int(mapping[str(f.relative_to(root))]) for f in files]
        except (TypeError, ValueError):
            raise ValueError(f"--labels {labels_file}: classes must be integers >= 0") from None
        if min(labels) < 0:
            raise ValueError(f"--labels {labels_file}: classes must be integers >= 0, got {min(labels)}")
        return labels, [str(i) for i in range(max(labels) + 1)]
    folders = [f.relative_to(root).parts[0] if len(f.relative_to(root).parts) > 1 else "" for f in files]
    names = sorted(set(folders))
    return [names.index(d) for d in folders], [n or "default" for n in names]


@torch.no_grad()
def cache_latents(model: nn.Module, data: Path, out: Path, kind: str = "image", size: int | tuple[int, int] = 256,
                  frames: int = 16,
                  batch_size: int = 16, shard_size: int = 1024, flip: bool = False, labels_file: Path | None = None,
                  device: str = "cpu", progress: bool = True, precision: str = "fp32",
                  compile: bool = False) -> dict:
    """Encode ``data`` into latent shards under ``out``; returns the stats dict (also written).
    ``size``: N or (H, W), the centre crop. Unreadable files are skipped (logged once each), never
    replaced by another file's latent, and listed in the stats' ``skipped_files`` {path: reason}
    (those of shards written in this call). ``precision`` / ``compile``: how the encoder runs
    (:func:`vitok.models.inference.prepare_for_inference`, on a copy: the tokenizer saved beside
    the latents keeps the given model's weights); latents are always stored as float32."""
    from tqdm import tqdm

    from vitok.files import remove_stale_temp_files

    crop = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    dataset = MediaFolder([data], kind, EvalTransform(crop), num_frames=frames, random_clips=False,
                          substitute=False)
    labels, names = class_labels(dataset.files, Path(data), labels_file)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out, depth=0)  # shards of an interrupted run are rewritten below
    import copy

    from vitok.models.inference import CompileStats, prepare_for_inference

    model = model.to(device).eval()
    manifest = {"files": [f.relative_to(data).as_posix() for f in dataset.files], "labels": labels,
                "classes": names, "kind": kind, "size": list(crop), "frames": frames if kind == "video" else 1,
                "flip": flip, "precision": precision, "shard_size": shard_size,
                "tokenizer_sha256": weights_fingerprint(model)}
    check_resumable(out, manifest)
    atomic_write(out / MANIFEST_NAME, lambda path: path.write_text(json.dumps(manifest, indent=1)))
    encoder = model if precision == "fp32" and not compile else copy.deepcopy(model)
    encoder = prepare_for_inference(encoder, precision, device, compile)
    compiling = CompileStats()
    shards = range(0, len(dataset), shard_size)
    skipped: dict[str, str] = {}
    for shard, start in enumerate(tqdm(shards, desc="cache-latents", unit="shard", disable=not progress)):
        path = out / f"shard-{shard:05d}.safetensors"
        if path.exists():
            continue  # finished earlier: resume
        indices = list(range(start, min(start + shard_size, len(dataset))))
        with compiling.track():
            skipped.update(write_shard(encoder, Subset(dataset, indices), labels, path, batch_size, flip, device))
    stats = latent_stats(out)
    stats.update({"classes": names, "num_classes": len(names), "kind": kind, "size": list(crop),
                  "skipped_files": skipped, "precision": precision,
                  "compile_seconds": compiling.seconds if compile else None,
                  "frames": frames if kind == "video" else 1, "samples": sum(1 for _ in iter_shards(out))})
    text = json.dumps(stats, indent=2)
    atomic_write(out / "stats.json", lambda path: path.write_text(text))
    model.set_latent_stats(torch.tensor(stats["mean"]), torch.tensor(stats["std"]))
    model.save_pretrained(out / "tokenizer")
    return stats


MANIFEST_NAME = "manifest.json"


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a model's parameter and buffer names, dtypes, shapes and bytes (hex), without the
    latent statistics (the encoder's latents do not depend on them, and caching sets them)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if name in ("latent_mean", "latent_std"):
            continue
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_resumable(out: Path, manifest: dict) -> None:
    """Raise ``ValueError`` naming what differs when ``out`` holds shards made from other files,
    labels or settings than ``manifest`` (or shards without a manifest); nothing to check in a
    folder without shards."""
    if not any(out.glob("shard-*.safetensors")):
        return
    try:
        old = json.loads((out / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict):
        raise ValueError(f"--out {out} holds latent shards without a readable {MANIFEST_NAME} (from another run or "
                         "version): give a new folder, or delete the shards to encode again")
    differ = [key for key in manifest if old.get(key) != manifest[key]]
    if differ:
        what = {"size": "crop size", "frames": "clip length", "flip": "flips", "shard_size": "shard size",
                "tokenizer_sha256": "tokenizer weights"}
        other = ", ".join(what.get(key, key) for key in differ)
        raise ValueError(f"--out {out} holds latents cached differently (other {other}): give a new folder (or "
                         "delete it) rather than mixing two caches")


def write_shard(model: nn.Module, subset: Dataset, labels: list[int], path: Path, batch_size: int, flip: bool,
                device: str) -> dict[str, str]:
    """Encode ``subset`` (items of a :class:`MediaFolder`) into one safetensors shard at ``path``;
    ``labels`` are indexed by the dataset's file index, so dropped unreadable files shift nothing.
    Returns the unreadable files {path: reason}."""
    from safetensors.torch import save_file

    latents, ys = [], []
    skipped: dict[str, str] = {}
    loader = DataLoader(subset, batch_size=batch_size, collate_fn=collate)
    for batch in loader:
        skipped.update(zip(map(str, batch["skipped"]), map(str, batch["errors"])))
        if batch["x"] is None:
            continue
        x = batch["x"].to(device)
        y = torch.tensor([labels[i] for i in batch["index"]])
        latents.append(model.encode(x).float().cpu())
        ys.append(y)
        if flip:
            latents.append(model.encode(x.flip(-1)).float().cpu())
            ys.append(y)
    if not latents:
        raise ValueError(f"none of the {len(subset)} files for {path.name} could be read")
    tensors = {"latents": torch.cat(latents).contiguous(), "labels": torch.cat(ys)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))
    return skipped


def iter_shards(folder: Path):
    from vitok.files import load_safetensors

    for path in sorted(Path(folder).glob("shard-*.safetensors")):
        shard = load_safetensors(path)
        yield from zip(shard["latents"], shard["labels"])


def latent_stats(folder: Path) -> dict:
    """Per-channel mean and std of all cached latents (float64 sums)."""
    total = sq = None
    count = 0
    for latent, _ in iter_shards(folder):
        flat = latent.double().flatten(1)  # (c, positions)
        total = flat.sum(1) if total is None else total + flat.sum(1)
        sq = flat.pow(2).sum(1) if sq is None else sq + flat.pow(2).sum(1)
        count += flat.shape[1]
    if total is None:
        raise ValueError(f"no latent shards in {folder}")
    mean = total / count
    std = (sq / count - mean.pow(2)).clamp_min(1e-12).sqrt()
    return {"mean": mean.tolist(), "std": std.tolist()}


class LatentDataset(Dataset):
    """Cached latents, normalised with the cache's per-channel statistics, addressed by
    ``(index, seed)`` keys (the resumable sampler's): ``{"x": (c, [t,] h, w), "y": label, "seed"}``."""

    def __init__(self, folder: str | Path) -> None:
        from vitok.files import load_safetensors

        folder = Path(folder)
        if not (folder / "stats.json").is_file():
            raise FileNotFoundError(f"{folder} is not a latent cache (no stats.json); run `vitok cache-latents`")
        self.stats = json.loads((folder / "stats.json").read_text())
        paths = sorted(folder.glob("shard-*.safetensors"))
        if not paths:
            raise ValueError(f"{folder} has a stats.json but no shard-*.safetensors; run `vitok cache-latents` again")
        shards = [load_safetensors(p) for p in paths]
        for path, shard in zip(paths, shards):
            if set(shard) != {"latents", "labels"} or shard["latents"].shape[1:] != shards[0]["latents"].shape[1:] \
                    or shard["labels"].shape != shard["latents"].shape[:1]:
                raise ValueError(f"{path} does not fit {paths[0].name}: latents {_shape(shard, 'latents')} and labels "
                                 f"{_shape(shard, 'labels')}, against latents {_shape(shards[0], 'latents')}")
        self.latents = torch.cat([s["latents"] for s in shards])
        self.labels = torch.cat([s["labels"] for s in shards])
        classes = self.stats.get("num_classes")
        if len(self.labels) and (self.labels.min() < 0 or (isinstance(classes, int) and self.labels.max() >= classes)):
            raise ValueError(f"{folder}: labels must be in 0..{classes - 1} (stats.json num_classes {classes}), "
                             f"found {int(self.labels.min())}..{int(self.labels.max())}")
        view = (1, -1) + (1,) * (self.latents.ndim - 2)
        self.latents = (self.latents - torch.tensor(self.stats["mean"]).view(view)) / torch.tensor(
            self.stats["std"]).view(view)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, object]:
        index, seed = key if isinstance(key, tuple) else (key, key)
        return {"x": self.latents[index], "y": int(self.labels[index]), "seed": seed}


def _shape(shard: dict[str, Tensor], key: str) -> str:
    return str(list(shard[key].shape)) if key in shard else "missing"


def collate_latents(items: list[dict[str, object]]) -> dict[str, Tensor]:
    return {"x": torch.stack([i["x"] for i in items]), "y": torch.tensor([i["y"] for i in items]),
            "seed": torch.tensor([i["seed"] for i in items])}
