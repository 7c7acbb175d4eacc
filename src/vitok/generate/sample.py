"""Sampling a trained DiT and decoding with the tokenizer (``vitok sample``), and generation
metrics (``vitok eval-gen``: gFID for images, gFVD for videos)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from vitok.diffusion import TIME_SCALE, alphas_cumprod, ddim_sample, euler_sample, guided, heun_sample, linear_betas
from vitok.models.dit import DiT


def load_dit(name_or_path: str | Path, device: str = "cpu", revision: str | None = None) -> tuple[DiT, dict]:
    """A saved DiT (a directory or a Hugging Face Hub id) and its ``generation.json`` (objective,
    latent shape, class names)."""
    from vitok.models.pretrained import resolve_pretrained

    model = DiT.from_pretrained(name_or_path, device, revision=revision)
    directory = resolve_pretrained(name_or_path, revision)
    info_path = directory / "generation.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} is missing: export the DiT with `vitok train-dit`")
    return model, json.loads(info_path.read_text())


def default_sampler(objective: str) -> str:
    """The sampler a DiT of ``objective`` uses unless told: ``ddim`` for ddpm, ``heun`` for flow."""
    return "ddim" if objective == "ddpm" else "heun"


def sample_seed(seed: int, index: int) -> int:
    """The noise seed of sample ``index`` of a run with ``seed``: 63 bits of SHA-256 of the pair,
    so the runs of two seeds share no sample (``seed + index`` made seed 1's sample i seed 0's
    sample i + 1)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:8], "little") >> 1


def initial_noise(n: int, shape: tuple[int, ...], seed: int, first: int = 0) -> Tensor:
    """Noise (n, *shape) for samples ``first .. first + n - 1`` (:func:`sample_seed`): the same
    sample whatever the batch size or the chunk it is made in."""
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(sample_seed(seed, first + i)))
                        for i in range(n)])


@torch.no_grad()
def sample_latents(dit: DiT, info: dict, labels: Tensor, cfg_scale: float = 4.0, steps: int = 50,
                   sampler: str | None = None, seed: int = 0, interval: tuple[float, float] | None = None,
                   batch_size: int = 16, device: str = "cpu", progress: bool = True, first: int = 0) -> Tensor:
    """Normalised latents (N, c, [t,] h, w) for the given class labels (a tqdm bar of samples
    on stderr unless ``progress`` is False); ``first`` is the index of the first sample in the
    run (its noise, :func:`initial_noise`), for a run made in chunks."""
    from tqdm import tqdm

    objective = info["objective"]
    sampler = sampler or default_sampler(objective)
    if (objective == "ddpm") != (sampler == "ddim"):
        raise ValueError(f"sampler {sampler!r} does not fit the {objective!r} objective (ddpm: ddim; flow: euler/heun)")
    noise = initial_noise(len(labels), tuple(info["latent_shape"]), seed, first)
    abar = alphas_cumprod(linear_betas())
    out = []
    bar = tqdm(total=len(labels), desc=f"sample ({steps} {sampler} steps)", unit="sample", disable=not progress,
               dynamic_ncols=True)
    for start in range(0, len(labels), batch_size):
        y = labels[start:start + batch_size].to(device)
        x = noise[start:start + batch_size].to(device)
        if objective == "ddpm":
            fn = guided(dit, y, dit.null_label, cfg_scale, interval, time_max=len(abar))
            out.append(ddim_sample(fn, x, abar, steps).cpu())
        else:
            model = lambda xt, t, yy: dit(xt, t * TIME_SCALE, yy)  # noqa: E731
            fn = guided(model, y, dit.null_label, cfg_scale, interval, time_max=1.0)
            out.append((euler_sample if sampler == "euler" else heun_sample)(fn, x, steps).cpu())
        bar.update(len(y))
    bar.close()
    return torch.cat(out)


@torch.no_grad()
def decode(tokenizer: nn.Module, z: Tensor, batch_size: int = 8, device: str = "cpu",
           progress: bool = True) -> Tensor:
    """Denormalise and decode latents to pixels in [-1, 1] (a tqdm bar of batches on stderr)."""
    from tqdm import tqdm

    starts = tqdm(range(0, len(z), batch_size), desc="decode", unit="batch", disable=not progress,
                  dynamic_ncols=True)
    return torch.cat([tokenizer.decode(z[i:i + batch_size].to(device), denormalize=True).clamp(-1, 1).cpu()
                      for i in starts])


def save_samples(x: Tensor, labels: Tensor, out: Path, columns: int = 8) -> None:
    """Images as PNGs or videos as MP4 + GIF, one per sample, plus ``grid.png`` (frame 0 of videos)."""
    from vitok import io

    out.mkdir(parents=True, exist_ok=True)
    for i, (item, y) in enumerate(zip(x, labels.tolist())):
        stem = out / f"sample-{i:04d}-class{y}"
        if item.ndim == 4:
            io.save_video(item, stem.with_suffix(".mp4"))
            io.save_video(item, stem.with_suffix(".gif"))
        else:
            io.save_image(item, stem.with_suffix(".png"))
    frames = x[:, :, 0] if x.ndim == 5 else x
    rows = [torch.cat(list(frames[i:i + columns]), dim=-1) for i in range(0, len(frames), columns)]
    width = rows[0].shape[-1]
    rows = [torch.nn.functional.pad(r, (0, width - r.shape[-1]), value=-1) for r in rows]
    io.save_image(torch.cat(rows, dim=-2), out / "grid.png")


def balanced_labels(n: int, num_classes: int) -> Tensor:
    return torch.arange(n) % num_classes


def feature_dimension(video: bool) -> int:
    """The size of the features the Frechet distance compares (``InceptionV3.features`` for
    images, ``I3D.features`` for videos)."""
    from vitok.metrics.i3d import I3D
    from vitok.metrics.inception import InceptionV3

    return I3D.features if video else InceptionV3.features


@torch.no_grad()
def generation_fid(batches: Iterable[Tensor], reference: Path, device: str = "cpu", cache: str | None = None,
                   progress: bool = True) -> tuple[float, int]:
    """(gFID for images / gFVD for videos, samples) of pixel batches in [-1, 1], each
    (B, 3, H, W) or (B, 3, T, H, W), consumed one at a time (memory stays that of a batch),
    against reference statistics (an ``.npz`` from :class:`FeatureStats`, e.g.
    ``rfid_real_stats.npz`` of ``vitok eval``)."""
    import sys

    from tqdm import tqdm

    from vitok.io import to_uint8
    from vitok.metrics.frechet import FeatureStats, frechet_distance, load_stats

    stats, net = FeatureStats(), None
    bar = tqdm(desc="features", unit="sample", disable=not progress, dynamic_ncols=True)
    for samples in batches:
        if net is None and samples.ndim == 5:
            from vitok.metrics.i3d import I3D

            net = I3D(cache=cache).to(device).features_uint8
        elif net is None:
            from vitok.metrics.inception import InceptionV3

            net = InceptionV3(cache=cache).to(device)
        for i in range(0, len(samples), 8):
            stats.update(net(to_uint8(samples[i:i + 8]).to(device)))
        bar.update(len(samples))
    bar.close()
    mu, sigma, _ = load_stats(reference)
    print("computing the Frechet distance (eigenvalues of the covariance product) ...", file=sys.stderr)
    return frechet_distance(*stats.mean_cov(), mu, sigma), stats.count
