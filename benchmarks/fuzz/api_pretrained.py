"""API cases of ``ViTok.from_pretrained`` on odd arguments and on corrupted or malicious copies of a saved model."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import random
import resource
import shutil
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fuzz.api_env import ApiEnv, Case
from fuzz.judge import PWNED, expect, finite, short
from fuzz.media import MaliciousPayload

CORRUPTIONS = ["config_value", "config_value", "config_drop", "config_extra", "config_tower", "config_text",
               "config_type", "weights_truncate", "weights_flip", "weights_header", "weights_pickle",
               "weights_empty", "weights_garbage", "weights_dir", "missing_config", "missing_weights",
               "weights_link_loop", "weights_dtype", "huge_config", "nothing"]


@dataclasses.dataclass
class ModelCopy:
    """A copy of the saved model: its two files and what they held before the corruption."""

    config_path: Path
    weights_path: Path
    config: dict[str, Any]
    weights: bytes


def corrupt_model_dir(rng: random.Random, env: ApiEnv) -> tuple[Path, str, bool]:
    """A copy of the saved model with one corruption: (folder, description, weights untouched)."""
    folder = env.scratch() / "model"
    shutil.copytree(env.model_dir, folder)
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    config = json.loads(config_path.read_text())
    weights = weights_path.read_bytes()
    how = rng.choice(CORRUPTIONS)
    untouched = not how.startswith(("weights", "missing_weights"))
    how += CORRUPT[how](rng, env, ModelCopy(config_path, weights_path, config, weights))
    return folder, how, untouched


def config_value(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    key = rng.choice(sorted(copy.config))
    copy.config[key] = rng.choice([None, 0, -1, 10**9, 1.5, "x", [], {}, True, [64, 64], math.nan])
    copy.config_path.write_text(json.dumps(copy.config))
    return f" {key}={copy.config[key]!r}"


def config_drop(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    key = rng.choice(sorted(copy.config))
    del copy.config[key]
    copy.config_path.write_text(json.dumps(copy.config))
    return f" {key}"


def config_extra(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    copy.config[rng.choice(["bogus", "Patch_size", "encoder_width"])] = 1
    copy.config_path.write_text(json.dumps(copy.config))
    return ""


def config_tower(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    config = copy.config
    tower = rng.choice(["encoder", "decoder"])
    key = rng.choice(["width", "depth", "heads", "bogus"])
    config[tower] = {**config[tower], key: rng.choice([0, -1, 10**7, 3, "x", None, 2.5])}
    copy.config_path.write_text(json.dumps(config))
    return f" {tower}.{key}={config[tower][key]!r}"


def config_text(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    text = copy.config_path.read_text()
    cut = rng.randrange(len(text))
    copy.config_path.write_text(rng.choice([text[:cut], text[:cut] + "}" + text[cut:], "\ufeff" + text, "null", "[]",
                                            "\x00\x01garbage", text.replace(":", "=", 1)]))
    return ""


def config_type(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    copy.config_path.write_text(json.dumps(rng.choice([[copy.config], "vitok", 5, None])))
    return ""


def huge_config(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    copy.config.update(encoder={"width": 65536, "depth": 64, "heads": 64}, decoder={"width": 65536, "depth": 64,
                                                                                      "heads": 64})
    copy.config_path.write_text(json.dumps(copy.config))
    return ""


def weights_truncate(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    copy.weights_path.write_bytes(copy.weights[: rng.randrange(len(copy.weights))])
    return ""


def weights_flip(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    data = bytearray(copy.weights)
    for _ in range(rng.choice([1, 8, 64])):
        data[rng.randrange(min(len(data), 4096 if rng.random() < 0.7 else len(data)))] ^= 1 << rng.randrange(8)
    copy.weights_path.write_bytes(bytes(data))
    return ""


def weights_header(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    weights = copy.weights
    length = struct.unpack("<Q", weights[:8])[0]
    header = json.loads(weights[8:8 + length])
    key = rng.choice([k for k in header if k != "__metadata__"])
    field = rng.choice(["shape", "dtype", "data_offsets", "drop"])
    if field == "drop":
        del header[key]
    else:
        header[key][field] = rng.choice({"shape": [[1], [10**12, 10**12], [-1], []],
                                         "dtype": ["F64", "I8", "X9", "BOOL"],
                                         "data_offsets": [[0, 10**15], [5, 3], [0, 0]]}[field])
    raw = json.dumps(header).encode()
    head = struct.pack("<Q", rng.choice([len(raw), len(raw), 10**15, 3])) + raw
    copy.weights_path.write_bytes(head + weights[8 + length:])
    return f" {key}.{field}"


def weights_pickle(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    marker = env.root / PWNED
    copy.weights_path.write_bytes(pickle.dumps({"patch_embed.weight": MaliciousPayload(str(marker))}))
    return ""


def weights_empty(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    copy.weights_path.write_bytes(b"")
    return ""


def weights_garbage(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    copy.weights_path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.choice([7, 100, 5000]))))
    return ""


def weights_dir(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    copy.weights_path.unlink()
    copy.weights_path.mkdir()
    return ""


def missing_config(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    copy.config_path.unlink()
    return ""


def missing_weights(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    copy.weights_path.unlink()
    return ""


def weights_link_loop(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    copy.weights_path.unlink()
    copy.weights_path.symlink_to(copy.weights_path)
    return ""


def weights_dtype(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    from safetensors.torch import save_file

    save_file({k: v.to(torch.float16) for k, v in env.saved_state.items()}, str(copy.weights_path))
    return ""


def nothing(rng: random.Random, env: ApiEnv, copy: ModelCopy) -> str:
    return ""


CORRUPT: dict[str, Callable[[random.Random, ApiEnv, ModelCopy], str]] = {
    f.__name__: f for f in (config_value, config_drop, config_extra, config_tower, config_text, config_type,
                            huge_config, weights_truncate, weights_flip, weights_header, weights_pickle,
                            weights_empty, weights_garbage, weights_dir, missing_config, missing_weights,
                            weights_link_loop, weights_dtype, nothing)
}
assert set(CORRUPT) == set(CORRUPTIONS)


def case_pretrained(rng: random.Random, env: ApiEnv) -> Case:
    from vitok import ViTok

    if rng.random() < 0.15:
        target: Any = rng.choice([None, 5, "", "org/no-such-model", "../..", "/", str(env.root / "no-such"),
                                  str(env.media["rgb.png"]["path"]), "vitok-tiny", Path("~nobody/model")])
        how, untouched = "argument", True
    else:
        target, how, untouched = corrupt_model_dir(rng, env)
    kwargs = {}
    if rng.random() < 0.2:
        kwargs = rng.choice([{"device": "meta"}, {"device": "tpu"}, {"dtype": torch.float16}, {"dtype": "fp16"},
                             {"revision": 5}, {"device": None}])

    def run() -> Any:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        model = ViTok.from_pretrained(target, **kwargs)
        return model, before, start

    def check(out: Any) -> None:
        model, before, start = out
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 2**20
        expect(grown < 1.0, "from_pretrained: allocated far more than the weights", f"{how}: +{grown:.1f} GB")
        expect(time.perf_counter() - start < 30, "from_pretrained: slow", how)
        expect(not (env.root / PWNED).exists(), "from_pretrained: a malicious pickle ran", how)
        if target == "vitok-tiny" or how == "argument":
            return
        state = model.state_dict()
        if untouched and "dtype" not in kwargs and model.config.latent_channels == env.model.config.latent_channels:
            same = set(state) == set(env.saved_state) and all(
                torch.equal(state[k].cpu(), env.saved_state[k]) for k in state if state[k].device.type != "meta")
            expect(same, "from_pretrained: loaded other weights than the file holds", how)
        expect(all(finite(v) for v in state.values() if v.device.type != "meta") or "flip" in how,
               "from_pretrained: non-finite weights", how)
    return f"from_pretrained({short(target)}, {short(kwargs)}) [{how}]", run, check


