"""The config part of the campaign: mutated training configs through :func:`vitok.train.load_config`,
checked for absurd values, and a few accepted ones trained for 2 steps."""

from __future__ import annotations

import dataclasses
import math
import random
import time
from pathlib import Path
from typing import Any

import torch
from tests.test_train_config import _random_value as test_config_value

from fuzz import REPO
from fuzz.judge import Silent, Tally, expect, finite, run_case

BASE_CONFIGS = sorted(p for p in (REPO / "configs").glob("*/*.yaml") if p.parent.name in ("cpu", "paper", "vitok-tiny"))
EXTRA_VALUES = ["[", "{", "'", '"', "]", "}", ":", "a: b", "- x", "!!python/object/apply:os.system ['true']",
                "&anchor 1", "*alias", "?", "|", ">", "0x10", "1_000", "1e3", ".inf", "-.inf", ".nan", "~", "yes",
                "no", "on", "2023-01-01", "\t1", "!!binary aGk=", "!!float 3", "12:30", str(10**30), "1e-400",
                "[1, [2, [3]]]", "{a: {b: {c: 1}}}", "'   '", "null", "-0", "0.0", "1.0e+2", "!!str 5", "%YAML 1.2",
                "---", "...", "\\x00", "é", "\u202e", "[1e-3]", "64x64", "cuda:99", "cpu ", "bf16", "fp64", "1/2"]
MALFORMED = ["run.steps", "=3", "run..steps=3", ".steps=1", "run.steps==3", " run.steps =3", "data=3", "run=[1]",
             "run.steps.x=1", "run.=1", "RUN.steps=3", "run.Steps=3", "run.step=3", "optim=null", "video=null",
             "video=[]", "model.overrides.encoder.width=8", "model.overrides.encoder=8", "loss.perceptual=lpips",
             "data.train=", "data.kind=videos", "run.out_dir=/", "run.precision=fp16", "==", "run.steps=3=4"]
SECTIONS = ["data.", "model.", "loss.", "optim.", "run.", "video.", "data:", "model:", "loss:", "optim:", "run:",
            "video:", "top level"]
STRING_KEYS = ("run.out_dir", "run.device", "model.preset", "model.init_from", "data.train", "data.motion",
               "video.data.train")
FORCED_RUN = ["data.workers=0", "model.preset=N-N/8", "model.init_from=null", "model.kind=vitok", "model.compile=false",
              "run.steps=2", "run.stop_at=null", "run.device=cpu", "run.log_every=1", "run.ckpt_every=1",
              "run.image_every=0", "run.tensorboard=false", "run.progress=false", "run.dist_timeout=60",
              "loss.perceptual=none", "data.motion=[]"]


def config_keys() -> list[str]:
    from vitok.train.config import TrainConfig, VideoMix

    cfg = TrainConfig()
    keys = [f"{section}.{f.name}" for section in ("data", "model", "loss", "optim", "run")
            for f in dataclasses.fields(getattr(cfg, section))]
    keys += [f"video.{f.name}" for f in dataclasses.fields(VideoMix)]
    keys += [f"video.data.{f.name}" for f in dataclasses.fields(cfg.data)]
    keys += ["model.overrides.latent_channels", "model.overrides.patch_size", "model.overrides.encoder",
             "model.overrides.head", "model.autoencoder_kl.latent_channels", "video", "data", "bogus.key", "run.bogus"]
    return keys


def config_value(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        return str(test_config_value(rng))
    if roll < 0.75:
        return rng.choice(EXTRA_VALUES)
    return rng.choice(["0", "1", "2", "-1", "0.5", "1e-4", "3.0e-4", "[32, 64]", "[0.9, 0.95]", "true", "false",
                       "null", "16", "100", "runs/x", "N-N/8", "Ti-Ti/8", "image", "video", "mse", "l1", "ddp"])


def mutate_text(rng: random.Random, text: str) -> tuple[str, str]:
    """One textual mutation of a YAML file: (new text, description)."""
    lines = text.splitlines(keepends=True)
    how = rng.choice(["delete_char", "insert_char", "duplicate_line", "swap_lines", "indent", "dedent", "truncate",
                      "bom", "nul", "latin1", "crlf", "tab", "delete_line"])
    if how in ("delete_char", "insert_char", "truncate", "nul") and text:
        at = rng.randrange(len(text))
        insert = rng.choice(list(":[]{}-#&*!|>'\"\t\n ,?%@`")) if how == "insert_char" else "\x00"
        new = {"delete_char": text[:at] + text[at + 1:], "insert_char": text[:at] + insert + text[at:],
               "truncate": text[:at], "nul": text[:at] + insert + text[at:]}[how]
        return new, f"{how} at {at}"
    if how in ("duplicate_line", "swap_lines", "indent", "dedent", "delete_line", "tab") and lines:
        i = rng.randrange(len(lines))
        if how == "duplicate_line":
            lines.insert(i, lines[i])
        elif how == "swap_lines":
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif how == "indent":
            lines[i] = "  " + lines[i]
        elif how == "dedent":
            lines[i] = lines[i].lstrip()
        elif how == "tab":
            lines[i] = "\t" + lines[i]
        else:
            del lines[i]
        return "".join(lines), f"{how} line {i + 1}"
    if how == "bom":
        return "\ufeff" + text, how
    if how == "latin1":
        return text + "# caf\xe9\n", how
    return text.replace("\n", "\r\n"), how


def mutate_structure(rng: random.Random, data: dict[str, Any]) -> str:
    """One structural mutation of a parsed config, in place; returns its description (with the key)."""
    import difflib  # noqa: F401  (typo keys come from random edits)

    sections = [k for k, v in data.items() if isinstance(v, dict)]
    how = rng.choice(["set", "set", "set", "delete", "rename", "section_scalar", "new_section", "section_list"])
    if how in ("section_scalar", "section_list", "new_section") or not sections:
        extra = ["extra", "Run", "runs", "video"]
        name = rng.choice(extra) if how == "new_section" else rng.choice(sections or ["run"])
        data[name] = {"section_scalar": rng.choice([1, "x", None, True]), "section_list": [1, 2],
                      "new_section": {"every": rng.choice([1, 2, 0])}}[how]
        return f"{how} {name}"
    section = rng.choice(sections)
    keys = list(data[section])
    if how == "set" or not keys:
        fields = [k.split(".", 1)[1] for k in config_keys() if k.startswith(f"{section}.") and k.count(".") == 1]
        key = rng.choice(keys + fields if fields else keys or ["x"])
        value = test_config_value(rng) if rng.random() < 0.6 else rng.choice(
            [[1, 2], {"a": 1}, "", " ", 10**20, -10**20, 1e-30, [], [[32]], "1e3", 2**31, 2**63])
        data[section][key] = value
        return f"set {section}.{key}={value!r}"
    key = rng.choice(keys)
    if how == "delete":
        del data[section][key]
        return f"delete {section}.{key}"
    typo = key[:-1] if len(key) > 1 and rng.random() < 0.5 else key.upper()
    data[section][typo] = data[section].pop(key)
    return f"rename {section}.{key} -> {typo}"


def absurd(cfg: Any) -> str | None:
    """Why an accepted config would make an absurd run (independent of the loader's own checks)."""
    from vitok.train.schedule import warmup_steps  # noqa: F401

    def numbers(obj: Any, prefix: str) -> list[tuple[str, float]]:
        out = []
        if dataclasses.is_dataclass(obj):
            for f in dataclasses.fields(obj):
                out += numbers(getattr(obj, f.name), f"{prefix}{f.name}.")
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                out += numbers(v, prefix)
        elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
            out.append((prefix.rstrip("."), obj))
        return out

    for key, value in numbers(cfg, ""):
        if not math.isfinite(value):
            return f"non-finite {key}={value}"
    o, r, d, loss = cfg.optim, cfg.run, cfg.data, cfg.loss
    rules = [
        (r.steps >= 1, "run.steps < 1"), (r.stop_at is None or r.stop_at >= 1, "run.stop_at < 1"),
        (o.batch_size >= 1 and o.accum >= 1, "batch or accum < 1"),
        (o.batch_size % o.accum == 0, "optim.batch_size not divisible by optim.accum"),
        (cfg.video is None or cfg.video.batch_size % o.accum == 0,
         "video.batch_size not divisible by optim.accum"),
        (o.peak_lr > 0, "peak LR <= 0"), (o.min_lr >= 0, "min_lr < 0"), (o.grad_clip > 0, "grad_clip <= 0"),
        (all(0 <= b < 1 for b in o.betas), "betas outside [0, 1)"), (o.weight_decay >= 0, "weight_decay < 0"),
        (o.warmup >= 0, "warmup < 0"), (r.ema is None or 0 <= r.ema < 1, "ema outside [0, 1)"),
        (all(1 <= s <= 8192 for s in d.sizes), "image size outside [1, 8192]"), (d.num_frames >= 1, "num_frames < 1"),
        (0 < d.scale[0] <= d.scale[1] <= 1, "scale"), (d.frame_stride >= 1, "frame_stride < 1"),
        (bool(str(r.out_dir).strip()), "empty out_dir"), (r.log_every >= 1 and r.ckpt_every >= 1, "every < 1"),
        (r.keep_last >= 0 and r.max_bad_steps >= 1, "keep_last / max_bad_steps"), (0 <= d.workers <= 256, "workers"),
        (loss.disc_lr > 0 and loss.disc_channels >= 1, "discriminator"),
        (all(v >= 0 for k, v in numbers(loss, "") if k.endswith(("weight", "start", "ramp", "warmup"))),
         "negative loss weight"),
        (loss.reconstruction_weight > 0 or loss.ssim_weight > 0 or (loss.perceptual != "none" and
                                                                     loss.perceptual_weight > 0),
         "the loss has no reconstruction term (every reconstruction weight is 0)"),
        (loss.ssim_weight == 0 or min(d.sizes) >= 11, "loss.ssim_weight > 0 with images below SSIM's 11 px window"),
        (r.dist_timeout > 0, "dist_timeout <= 0"),
    ]
    for ok, why in rules:
        if not ok:
            return why
    return None


def config_campaign(n: int, runs: int, rng: random.Random, tally: Tally, root: Path, verbose: bool) -> None:
    import yaml

    from vitok.train.config import load_config

    root = root / "config"
    root.mkdir(parents=True)
    keys = config_keys()
    accepted: list[list[str]] = []
    for i in range(n):
        case_rng = random.Random(rng.random())
        path, overrides, names = None, [], []
        if case_rng.random() < 0.6:
            if case_rng.random() < 0.4:
                path = case_rng.choice(BASE_CONFIGS)
            for _ in range(case_rng.randint(1, 3)):
                if case_rng.random() < 0.08:
                    bad = case_rng.choice(MALFORMED)
                    overrides.append(bad)
                    names += [bad, bad.split("=")[0].strip(), *bad.split("=")[0].split(".")]
                    continue
                key = case_rng.choice(keys)
                overrides.append(f"{key}={config_value(case_rng)}")
                names += [key, *key.split("."), overrides[-1]]
            label = f"load_config({path.relative_to(REPO) if path else None}, {overrides})"
        else:
            base = case_rng.choice(BASE_CONFIGS)
            text = base.read_text()
            if case_rng.random() < 0.5:
                text, how = mutate_text(case_rng, text)
            else:
                data = yaml.safe_load(text)
                how = mutate_structure(case_rng, data)
                text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
                names += [w.strip("'\"") for w in how.replace("=", " ").replace("->", " ").split()[1:]]
                names += [part for w in names for part in w.split(".")]
            path = root / f"case{i}" / base.name
            path.parent.mkdir()
            path.write_bytes(text.encode("utf-8", "surrogateescape") if "\xe9" not in text else text.encode("latin-1"))
            label = f"load_config(mutated {base.relative_to(REPO)}: {how})"
            names += SECTIONS  # a text edit may hit any key: the message must name the file or a section
        names += [path.name] if path is not None else []
        names += ["YAML"]

        def check(cfg: Any) -> None:
            why = absurd(cfg)
            if why is not None:
                raise Silent(f"config accepted with an absurd value ({why.split('=')[0]}): {why}")

        category = run_case(tally, "config", label, lambda path=path, overrides=overrides: load_config(path, overrides),
                            check,
                            names=tuple(dict.fromkeys(names)), seconds=30)
        if verbose:
            print(f"config {i}: {category}: {label}", flush=True)
        if category == "result" and path is None:
            accepted.append(overrides)
    if runs:
        run_accepted(accepted, runs, rng, tally, root, verbose)


def run_accepted(accepted: list[list[str]], runs: int, rng: random.Random, tally: Tally, root: Path,
                 verbose: bool) -> None:
    """Train a few accepted mutations for 2 steps on the nano preset and tiny data, in-process."""
    from vitok import io
    from vitok.train import load_config, train
    from vitok.train.checkpoint import list_checkpoints, load_checkpoint

    data = root / "tiny-data"
    for i in range(6):
        io.save_image(torch.rand(3, 40, 48) * 2 - 1, data / f"{i}.png")
    skip = ("data.train", "model.", "run.steps", "run.stop_at", "run.out_dir", "run.device", "data.workers",
            "data.image_size", "data.short_side", "video", "data.kind", "data.motion", "run.dist", "optim.batch_size",
            "loss.perceptual=", "run.keep_last", "run.ckpt_every", "run.log_every", "run.image_every")
    candidates = [o for o in accepted if not any(a.strip().startswith(skip) for a in o)]
    rng.shuffle(candidates)
    began = time.perf_counter()
    for i, overrides in enumerate(candidates[:runs]):
        out = root / f"run{i}"
        base = [f"data.train=[{data}]", "data.image_size=32", "optim.batch_size=2", f"run.out_dir={out}"]
        argv = [*base, *overrides, *FORCED_RUN]
        label = f"train 2 steps with {overrides}"

        def run(argv: list[str] = argv) -> Any:
            return train(load_config(None, argv))

        def check(scalars: Any, out: Path = out, overrides: list[str] = overrides) -> None:
            found = list_checkpoints(out)
            expect(bool(found), "run: no checkpoint written", overrides)
            state = load_checkpoint(found[-1][1])
            expect(state["step"] == 2, "run: wrong step count", state["step"])
            expect(all(finite(v) for v in state["model"].values()), "run: non-finite weights", overrides)
            expect(all(math.isfinite(v) for v in scalars.values() if isinstance(v, float)), "run: non-finite loss",
                   scalars)
        category = run_case(tally, "config runs", label, run, check, seconds=300)
        if verbose:
            print(f"run {i}: {category}: {label}", flush=True)
    tally.seconds["config runs"] = time.perf_counter() - began  # part of the config part's time

