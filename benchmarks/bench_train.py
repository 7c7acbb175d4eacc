"""Training-step throughput of a CPU preset, fp32 vs bf16 autocast, same run.

One step = forward, composite loss (MSE + KL + LPIPS-VGG when its weights are cached), backward,
AdamW update, on random images. Prints steps/s, images/s and the bf16 / fp32 ratio.

    python benchmarks/bench_train.py --preset Ti-Ti/8 --size 128 --batch 8 --steps 5
"""

from __future__ import annotations

import argparse

import torch

from vitok.bench import train_steps_per_second
from vitok.losses import AutoencoderLoss, LossConfig
from vitok.weights import MissingWeightsError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="Ti-Ti/8")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    try:
        AutoencoderLoss(LossConfig(perceptual="lpips-vgg"))
        perceptuals = ["none", "lpips-vgg"]
    except MissingWeightsError:
        perceptuals = ["none"]
    print(f"{args.preset} at {args.size}px, batch {args.batch}, {torch.get_num_threads()} threads")
    for perceptual in perceptuals:
        rates = {p: train_steps_per_second(args.preset, args.size, args.batch, args.steps, p, perceptual)
                 for p in ("fp32", "bf16")}
        for precision, rate in rates.items():
            print(f"  loss=mse+kl{'+' + perceptual if perceptual != 'none' else ''} {precision}: "
                  f"{rate:.2f} steps/s, {rate * args.batch:.1f} images/s")
        print(f"  bf16 / fp32 = {rates['bf16'] / rates['fp32']:.2f}x")


if __name__ == "__main__":
    main()
