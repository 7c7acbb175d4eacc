"""The CLI part of the campaign: random command lines over every subcommand, run in-process through
:func:`vitok.cli.main` with the network made to look down."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from tests.test_fuzz_cli import COMMANDS as TEST_CLI_COMMANDS
from tests.test_fuzz_cli import FLAGS as TEST_CLI_FLAGS
from tests.test_fuzz_cli import VALUES as TEST_CLI_VALUES

from fuzz.judge import Tally, Timeout, captured, deadline, judge_error, one_line

ZERO_OK = {"--seed", "--head-blocks", "--cfg", "--classes", "--interval"}
ABSURD = {"0", "-1", "nan", "inf", "-inf", "-8", "64x0", "0x0", "-1x8"}


def cli_pools(root: Path) -> dict[str, list[str]]:
    """Paths for command lines: real tiny inputs, a model folder, a training config, odd paths."""
    from vitok import ViTok, io

    images, mixed, videos = root / "images", root / "mixed", root / "videos"
    for i in range(3):
        io.save_image(torch.rand(3, 36 + 4 * i, 40) * 2 - 1, images / f"{i}.png")
        io.save_image(torch.rand(3, 24, 20 + 8 * i) * 2 - 1, mixed / f"{i}.png")
    (mixed / "broken.png").write_bytes(b"not a png")
    io.save_image(torch.rand(3, 8, 8) * 2 - 1, mixed / "small.png")
    io.save_video(torch.rand(3, 5, 24, 32) * 2 - 1, videos / "a.mp4", fps=5)
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("hello\n")
    torch.manual_seed(0)
    model_dir = ViTok.from_preset("N-N/8").save_pretrained(root / "model")
    bad_model = root / "bad-model"
    shutil.copytree(model_dir, bad_model)
    (bad_model / "model.safetensors").write_bytes(b"\x00" * 100)
    config = root / "tiny.yaml"
    config.write_text(f"data: {{train: [{images}], image_size: 32, workers: 0}}\nmodel: {{preset: N-N/8}}\n"
                      "optim: {batch_size: 2, lr: 1.0e-3}\nloss: {perceptual: none}\n"
                      f"run: {{out_dir: {root / 'run'}, steps: 2, precision: fp32, log_every: 1, ckpt_every: 1, "
                      "image_every: 0, tensorboard: false, progress: false}\n")
    paths = [str(images), str(mixed), str(videos / "a.mp4"), str(images / "0.png"), str(root / "empty"),
             str(root / "notes.txt"), "/no/such/path", str(mixed / "broken.png")]
    dit = make_dit(root, images)
    return {
        "root": [str(root)], "images": [str(images), str(mixed)], "videos": [str(videos)],
        "model_dir": [str(model_dir)], "config": [str(config)], "dit": dit,
        "paths": paths,
        "models": ["N-N/8", "N-N/8", str(model_dir), str(bad_model), "Q-Q/8", "/no/such/model", "vitok-tiny"],
        "configs": [str(config), str(config), str(root / "notes.txt"), "no_such.yaml", str(root)],
        "overrides": ["run.steps=abc", "run.steps=0", "run.steps=1", "optim.grad_clip=-1", "run.ema=1", "data.kind=x",
                      "run.bogus=1", "loss.kl_weight=nan", "data.image_size=16", "optim.lr=2e-3", "run.seed=3",
                      "run.out_dir=''", "data.train=[]", "{", "=", f"run.out_dir={root / 'run2'}"],
        "sizes": ["32", "24x40", "0", "-1", "abc", "64x0", "17", "16385", "8", "1"],
        "numbers": ["0", "-1", "1", "2", "3", "abc", "1e9", "nan", "inf", "1.5", ""],
        "outs": [str(root / "out" / "a"), str(root / "out" / "b"), str(root / "notes.txt"), "/proc/no-write", ""],
        "choices": ["fp32", "bf16", "fp16", "image", "video", "auto", "cpu", "cuda", "gpu", "psnr", "psnr,ssim",
                    "psnr,bogus", "grid", "lpips", "sd-vae", "vitok", "diffusers", "onnx", "ddim", "heun", "conv",
                    "linear", "fetch", "list", "build", "report", "0/1", "1/2", "2/1", "x"],
    }


def make_dit(root: Path, images: Path) -> list[str]:
    """Latents of the tiny images, a DiT trained on them for 2 steps and reference statistics, for
    ``sample`` / ``eval-gen`` / ``train-dit`` lines: [latents, dit config, DiT folder, ref stats]
    (empty when the setup fails)."""
    from vitok.cli import main
    from vitok.metrics import FeatureStats

    latents, run = root / "latents", root / "dit-run"
    dit_config = root / "dit.yaml"
    dit_config.write_text(f"latents: {latents}\nmodel: {{preset: DiT-T}}\noptim: {{batch_size: 2, lr: 1.0e-3, "
                          f"warmup: 1}}\nrun: {{out_dir: {run}, steps: 2, log_every: 1, ckpt_every: 2, "
                          "progress: false, tensorboard: false}\n")
    stats = FeatureStats()
    stats.update(torch.randn(8, 2048))
    stats.save(root / "ref_stats.npz")
    with captured():
        codes = [main(["cache-latents", str(images), "--model", "N-N/8", "--size", "32", "--out", str(latents)]),
                 main(["train-dit", str(dit_config)])]
    if codes != [0, 0] or not (run / "model").is_dir():
        print(f"warning: the DiT setup failed ({codes}); sample / eval-gen lines only test errors", file=sys.stderr)
        return []
    return [str(latents), str(dit_config), str(run / "model"), str(root / "ref_stats.npz")]


def valid_line(rng: random.Random, pools: dict[str, list[str]], out: str) -> list[str]:
    """A command line that should work (real tiny inputs, the nano model, small sizes)."""
    root, images, model = pools["root"][0], rng.choice(pools["images"]), rng.choice(["N-N/8", pools["model_dir"][0]])
    lines = [
        ["presets"], ["flops", "--model", "N-N/8", "--size", "32"], ["flops", "N-N/2x8", "--frames", "4", "--measure"],
        ["reconstruct", images, "--model", model, "--out", out, "--size", "32"],
        ["reconstruct", pools["videos"][0], "--model", "N-N/2x8", "--out", out, "--size", "32", "--frames", "2"],
        ["demo", "--model", model, "--out", out], ["weights", "list"],
        ["train", pools["config"][0], f"run.out_dir={out}", "run.steps=2"],
        ["train", pools["config"][0], "--print-config"],
        ["eval", images, "--model", model, "--size", "32", "--metrics", "psnr,ssim,grid", "--out", out],
        ["eval", pools["videos"][0], "--model", "N-N/2x8", "--size", "32", "--frames", "2", "--metrics", "psnr",
         "--out", out],
        ["bench", "--model", "N-N/8", "--size", "32", "--repeats", "1", "--precision", "fp32"],
        ["data", "build", out], ["sweep", "report", root],
        ["export", "--model", pools["model_dir"][0], "--out", out, "--name", "tiny", images, "--size", "32",
         "--precision", rng.choice(["fp32", "bf16"])],
        ["cache-latents", images, "--model", model, "--out", out, "--size", "32", "--shard-size", "2"],
    ]
    if pools["dit"]:
        _latents, dit_config, dit, ref = pools["dit"]
        lines += [["train-dit", dit_config, f"run.out_dir={out}"],
                  ["sample", "--dit", dit, "--n", "2", "--steps", "2", "--out", out, "--batch-size", "2"],
                  ["eval-gen", "--dit", dit, "--ref-stats", ref, "--n", "2", "--steps", "2", "--out", out]]
    return list(rng.choice(lines))


def mutate_line(rng: random.Random, argv: list[str], pools: dict[str, list[str]]) -> list[str]:
    """One edit of a command line: a value replaced by an odd one, a token dropped or repeated, a
    foreign flag added."""
    argv = list(argv)
    how = rng.choice(["value", "value", "value", "drop", "repeat", "foreign"])
    if how == "value" and len(argv) > 1:
        i = rng.randrange(1, len(argv))
        option = argv[i - 1] if argv[i - 1].startswith("--") else ""
        odd = option_values(option, pools, rng) if option and rng.random() < 0.5 else rng.choice(TEST_CLI_VALUES)
        argv[i] = odd
    elif how == "drop" and len(argv) > 1:
        del argv[rng.randrange(1, len(argv))]
    elif how == "repeat" and len(argv) > 1:
        i = rng.randrange(1, len(argv))
        argv.insert(i, argv[i])
    else:
        argv += [rng.choice(TEST_CLI_FLAGS), rng.choice(TEST_CLI_VALUES)]
    return argv


def option_values(option: str, pools: dict[str, list[str]], rng: random.Random) -> str:
    if option in ("--model", "--tokenizer", "--dit"):
        return rng.choice(pools["models"])
    if option in ("--size", "--sizes", "--stats-size"):
        return rng.choice(pools["sizes"])
    if option in ("--out", "--cache", "--work"):
        return rng.choice(pools["outs"])
    if option in ("--data", "--stats-data", "--labels", "--ref-stats", "--baseline-weights", "--from", "--card"):
        return rng.choice(pools["paths"])
    if option in ("--metrics", "--precision", "--precisions", "--kind", "--device", "--baseline", "--vs", "--dtype",
                  "--format", "--sampler", "--head", "--shard"):
        return rng.choice(pools["choices"])
    return rng.choice(pools["numbers"])


def cli_line(rng: random.Random, parsers: dict[str, argparse.ArgumentParser], pools: dict[str, list[str]]) -> list[str]:
    """A random command line: a working one (sometimes with one edit), the fuzz test's, or the
    command's own options with fitting or odd values."""
    roll = rng.random()
    if roll < 0.45:
        out = str(Path(pools["outs"][0]).parent / f"o{rng.randrange(10**6)}")
        argv = valid_line(rng, pools, out)
        return mutate_line(rng, argv, pools) if rng.random() < 0.5 else argv
    if roll < 0.5:  # the fuzz test's own generator (its paths never exist)
        from tests.test_fuzz_cli import command_line

        return command_line(random.Random(rng.random()))
    if rng.random() < 0.03:
        return rng.choice([[], ["--help"], ["--version"], ["-x"], ["nosuchcommand"], ["--", "train"]])
    command = rng.choice(sorted(parsers) + list(TEST_CLI_COMMANDS[:4]))
    parser = parsers[command]
    argv = [command, *positional_args(rng, parser, pools), *option_args(rng, parser, pools)]
    return with_defaults(rng, command, argv, pools)


def positional_args(rng: random.Random, parser: argparse.ArgumentParser, pools: dict[str, list[str]]) -> list[str]:
    """Values of the command's positional arguments (some left out)."""
    argv: list[str] = []
    for action in [a for a in parser._actions if not a.option_strings]:
        if rng.random() < 0.15:
            continue
        if action.choices:
            argv.append(rng.choice(list(action.choices)) if rng.random() < 0.85 else rng.choice(pools["choices"]))
        elif action.dest == "config":
            argv.append(rng.choice(pools["configs"]))
        elif action.dest == "overrides":
            argv += rng.sample(pools["overrides"], rng.choice([0, 0, 1, 2]))
        elif action.dest in ("inputs", "dir", "out", "names"):
            argv += [rng.choice(pools["paths"]) for _ in range(rng.choice([0, 1, 1, 2]))]
        elif action.dest == "name":
            argv.append(rng.choice(["N-N/8", "S-B/16", "x"]))
        else:
            argv.append(rng.choice(pools["paths"] + pools["configs"]))
    return argv


def option_args(rng: random.Random, parser: argparse.ArgumentParser, pools: dict[str, list[str]]) -> list[str]:
    """Up to 4 options: the command's own with fitting or odd values, other commands' flags, stray tokens."""
    options = [o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
    argv: list[str] = []
    for _ in range(rng.choice([0, 1, 2, 2, 3, 4])):
        roll = rng.random()
        if roll < 0.8 and options:
            option = rng.choice(options)
            action = parser._option_string_actions[option]
            argv.append(option)
            if action.nargs == 0:
                continue
            count = 2 if action.nargs == 2 else (rng.choice([1, 1, 2]) if action.nargs in ("+", "*") else 1)
            if rng.random() < 0.05:
                count = 0  # a missing value
            for _ in range(count):
                if action.choices and rng.random() < 0.7:
                    argv.append(str(rng.choice(list(action.choices))))
                else:
                    argv.append(option_values(option, pools, rng))
        elif roll < 0.9:
            argv.append(rng.choice(TEST_CLI_FLAGS))
            argv.append(rng.choice(TEST_CLI_VALUES))
        else:
            argv.append(rng.choice([*TEST_CLI_VALUES, "--", "-", "--=", "--model=N-N/8", "--size=32"]))
    return argv


def with_defaults(rng: random.Random, command: str, argv: list[str], pools: dict[str, list[str]]) -> list[str]:
    """``argv`` with small sizes, one repeat, cheap metrics and a private weights cache where it names none."""
    if command in ("eval", "bench", "cache-latents", "reconstruct", "demo", "export") and "--size" not in argv and \
            "--sizes" not in argv:
        argv += ["--size", rng.choice(["32", "24x40"])]  # the default 256 px is slow on a busy CPU
    if command == "bench" and "--repeats" not in argv:
        argv += ["--repeats", "1"]
    if command == "eval" and "--metrics" not in argv and rng.random() < 0.8:
        argv += ["--metrics", rng.choice(["psnr,ssim", "psnr,grid", "psnr,ssim,lpips", "psnr"])]
    if command == "weights":
        argv += ["--cache", str(Path(pools["outs"][0]).parent / "weights-cache")]
    return argv


def cli_absurd(argv: list[str]) -> str | None:
    """The first absurd option value (or override) in a command line that should not exit 0."""
    for option, value in zip(argv, argv[1:]):
        if option.startswith("--") and option not in ZERO_OK and value in ABSURD:
            return f"{option} {value}"
    for token in argv:
        if token in ("run.steps=0", "optim.grad_clip=-1", "run.ema=1", "loss.kl_weight=nan", "run.out_dir=''"):
            return token
    return None


def outputs_ok(argv: list[str]) -> str | None:
    """For a command that exited 0: why its outputs are wrong (nothing written where --out or
    run.out_dir points, a file other users cannot read under a 022 umask), or None."""
    target = None
    if "--out" in argv and argv.index("--out") + 1 < len(argv) and argv[0] not in ("flops", "bench", "presets"):
        target = Path(argv[argv.index("--out") + 1])
    for token in argv:
        if token.startswith("run.out_dir=") and argv[0] in ("train", "train-dit") and "--print-config" not in argv:
            target = Path(token.split("=", 1)[1])
    if target is None or not str(target).startswith(tempfile.gettempdir()):
        return None
    files = [p for p in target.rglob("*") if p.is_file()] if target.is_dir() else []
    if not files:
        return f"{argv[0]}: exit 0 but nothing written to {target.name}"
    private = [p for p in files if not p.stat().st_mode & 0o004 and not p.name.startswith(".")]
    if private and os.umask(os.umask(0o022)) == 0o022:
        return f"{argv[0]}: files not readable by others under umask 022"
    return None


def judge_cli(argv: list[str], code: Any, out: str, err: str) -> tuple[str, str]:
    lines = [line for line in err.splitlines() if line.strip()]
    if "Traceback (most recent call last)" in err or "Traceback" in out:
        at = next((line.strip() for line in reversed(lines) if line.strip().startswith("File ")), "?")
        return "traceback", f"traceback printed (exit {code}) near {at[:80]}"
    if code == 0:
        bad = cli_absurd(argv)
        if bad is not None and "--help" not in argv and "-h" not in argv:
            return "silent", f"exit 0 with an absurd value: {bad.split()[0].split('=')[0]}"
        wrong = outputs_ok(argv)
        return ("silent", wrong) if wrong else ("result", "")
    if code not in (1, 2):
        return "traceback", f"exit status {code!r}"
    errors = [line for line in lines if "error:" in line]
    if len(errors) != 1 or errors[0] != lines[-1]:
        return "traceback", f"exit {code} without exactly one error line at the end"
    return "clear", ""


def cli_campaign(n: int, rng: random.Random, tally: Tally, root: Path, verbose: bool) -> None:
    import vitok.tools.data_build
    import vitok.tools.weights_fetch
    from vitok.cli import build_parser, main, subcommands

    root = root / "cli"
    root.mkdir(parents=True)
    pools = cli_pools(root)
    parsers = subcommands(build_parser())

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise OSError("Network is unreachable (the fuzz campaign keeps the network down)")

    vitok.tools.data_build.fetch_trees = no_network
    vitok.tools.weights_fetch.fetch = no_network
    cwd = Path.cwd()
    for i in range(n):
        argv = cli_line(random.Random(rng.random()), parsers, pools)
        work = root / f"cwd{i % 20}"
        work.mkdir(exist_ok=True)
        os.chdir(work)  # default outputs (out/...) land in a scratch folder
        code: Any = None
        try:
            with captured() as (out, err), deadline(900 if "--compile" in argv else 240):  # compiling takes minutes
                try:
                    code = main(argv)
                except SystemExit as exit_info:
                    code = exit_info.code
            category, kind = judge_cli(argv, code, out.getvalue(), err.getvalue())
            example = f"vitok {' '.join(argv)} -> exit {code}: {one_line(err.getvalue())[-200:]}"
        except (Exception, Timeout) as error:
            category, kind = judge_error(error)
            category = "traceback"
            example = f"vitok {' '.join(argv)} -> {type(error).__name__}: {error}"
        finally:
            os.chdir(cwd)
        tally.add("cli", category, kind, example)
        if verbose:
            print(f"cli {i}: {category}: vitok {' '.join(argv)} -> {code}", flush=True)

