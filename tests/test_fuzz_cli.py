"""A seeded fuzz test of the command line: random command lines (bad numbers, missing or odd
paths, unknown flags, wrong orders) end with exit code 0, 1 or 2 and at most one-line errors,
never a traceback. Paths never exist, so no command does real work."""

from __future__ import annotations

import random

import pytest

from vitok.cli import main

COMMANDS = ["flops", "reconstruct", "eval", "export", "cache-latents", "train", "train-dit", "sample", "eval-gen",
            "sweep", "presets"]
FLAGS = ["--model", "--size", "--frames", "--stride", "--batch-size", "--out", "--data", "--metrics", "--head",
         "--head-channels", "--head-blocks", "--latent-channels", "--measure", "--device", "--bf16", "--kind",
         "--max-samples", "--repeats", "--sizes", "--name", "--dtype", "--format", "--print-config", "--nope"]
VALUES = ["0", "-1", "1", "7", "abc", "1e9", "nan", "inf", "3x", "64x0", "N-N/8", "Q-Q/8", "/no/such/path",
          "no_such.yaml", "run.steps=abc", "psnr,bogus", "", "conv", "cuda", "gpu", "fp16", "diffusers"]


def command_line(rng: random.Random) -> list[str]:
    argv = [rng.choice(COMMANDS)]
    for _ in range(rng.randint(0, 4)):
        argv.append(rng.choice(FLAGS) if rng.random() < 0.6 else rng.choice(VALUES))
        if rng.random() < 0.5:
            argv.append(rng.choice(VALUES))
    return argv


@pytest.mark.parametrize("seed", range(2))
def test_random_command_lines_end_cleanly(seed: int, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything written lands in a scratch folder
    rng = random.Random(seed)
    for _ in range(40):
        argv = command_line(rng)
        if argv[0] in ("presets",) and len(argv) == 1:
            continue
        try:
            code = main(argv)
        except SystemExit as exit_info:  # argparse: --help / usage errors
            code = exit_info.code
        err = capsys.readouterr().err
        assert code in (0, 1, 2), (argv, code, err)
        assert "Traceback" not in err, (argv, err)
