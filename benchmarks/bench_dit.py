"""DiT throughput on CPU (or GPU): training steps/s and sampling images/s, fp32 vs bf16, same run.

Latents are random (speed does not depend on them): 256 tokens = a 16x16 grid of c = 16 channels
(S-B/16 at 256 px). One training step = DDPM loss, backward, AdamW; one sampling step = one
guided (batch-doubled) DiT evaluation.

    python benchmarks/bench_dit.py --presets DiT-T DiT-B --batch 8 --steps 3
"""

from __future__ import annotations

import argparse
import time

import torch

from vitok.diffusion import alphas_cumprod, ddim_sample, ddpm_loss, guided, linear_betas
from vitok.models.dit import DiT
from vitok.presets import dit_config


def bench(preset: str, batch: int, steps: int, precision: str, grid: int, channels: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = DiT(dit_config(preset, latent_channels=channels, num_classes=1000))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    abar = alphas_cumprod(linear_betas())
    x = torch.randn(batch, channels, grid, grid)
    y = torch.randint(0, 1000, (batch,))
    autocast = torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16")

    def train_step() -> None:
        with autocast:
            loss = ddpm_loss(lambda xt, t: model(xt, t, y), x, abar)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    train_step()
    start = time.perf_counter()
    for _ in range(steps):
        train_step()
    train_rate = steps / (time.perf_counter() - start)
    fn = guided(model, y, model.null_label, 4.0)
    with torch.inference_mode(), autocast:
        ddim_sample(fn, torch.randn_like(x), abar, steps=2)
        start = time.perf_counter()
        ddim_sample(fn, torch.randn_like(x), abar, steps=steps)
    per_image_step = (time.perf_counter() - start) / steps / batch
    return train_rate, 1 / per_image_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["DiT-T", "DiT-B"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--grid", type=int, default=16, help="latent grid side (16 -> 256 tokens)")
    parser.add_argument("--channels", type=int, default=16)
    args = parser.parse_args()
    print(f"{args.grid * args.grid} tokens x {args.channels} channels, batch {args.batch}, "
          f"{torch.get_num_threads()} threads")
    for preset in args.presets:
        rates = {p: bench(preset, args.batch, args.steps, p, args.grid, args.channels) for p in ("fp32", "bf16")}
        for precision, (train_rate, sample_rate) in rates.items():
            print(f"  {preset} {precision}: train {train_rate:.2f} steps/s ({train_rate * args.batch:.1f} latents/s), "
                  f"sampling {sample_rate:.1f} image-steps/s (= {sample_rate / 50:.2f} images/s at 50 DDIM steps)")
        print(f"  {preset} bf16/fp32: train {rates['bf16'][0] / rates['fp32'][0]:.2f}x, "
              f"sampling {rates['bf16'][1] / rates['fp32'][1]:.2f}x")


if __name__ == "__main__":
    main()
