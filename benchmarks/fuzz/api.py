"""The API part of the campaign: random calls of the public Python API with random arguments."""

from __future__ import annotations

import random
from pathlib import Path

import torch

from fuzz.api_data import case_data
from fuzz.api_env import make_api_env
from fuzz.api_io import case_io
from fuzz.api_metrics import case_metrics
from fuzz.api_model import case_model, case_preset
from fuzz.api_pretrained import case_pretrained
from fuzz.judge import Tally, run_case

API_CASES = [(case_model, 40), (case_preset, 8), (case_pretrained, 10), (case_metrics, 18), (case_io, 14),
             (case_data, 10)]


def api_campaign(n: int, rng: random.Random, tally: Tally, root: Path, verbose: bool) -> None:
    env = make_api_env(root / "api")
    generators, weights = zip(*API_CASES)
    for i in range(n):
        make = rng.choices(generators, weights)[0]
        case_rng = random.Random(rng.random())
        try:
            label, fn, check = make(case_rng, env)
        except Exception as err:  # a bug of the campaign itself, not of vitok
            raise RuntimeError(f"building API case {i} ({make.__name__}) failed") from err
        with torch.no_grad():
            category = run_case(tally, "api", label, fn, check, seconds=60)
        if verbose:
            print(f"api {i}: {category}: {label}", flush=True)
        if env.model.training:
            env.model.eval()

