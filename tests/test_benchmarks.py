"""The benchmark scripts whose output the README quotes run end to end (tiny inputs; no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_train import TINY_AUTOENCODER_KL


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_vitok_tiny_writes_one_row_per_model(media_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from vitok.baselines import build_autoencoder_kl

    build_autoencoder_kl(TINY_AUTOENCODER_KL).save_pretrained(tmp_path / "akl")
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["compare_vitok_tiny", "--baseline", str(tmp_path / "akl"),
                                      "--images", str(media_dir), "--video", str(media_dir),
                                      "--image-sizes", "32", "--repeats", "1", "--out", str(out),
                                      "--precisions", "fp32"])
    assert load_script("compare_vitok_tiny").main() == 0
    rows = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in rows] == ["vitok-tiny", "autoencoder-kl"]
    vitok, akl = rows
    assert vitok["E_128"] == 4096 and vitok["E_video"] == 16384  # 16x16x16, 4-frame tubelets
    assert akl["E_video"] == 16 * akl["E_128"]  # a 2D VAE codes every frame
    for r in rows:
        assert set(r["image_32"]) >= {"psnr", "ssim", "grid"} and math.isfinite(r["image_32"]["psnr"])
        assert math.isfinite(r["video_128"]["psnr"]) and r["ms_fp32"]["encode"] > 0
    table = (out / "table.md").read_text().splitlines()
    assert len(table) == 4 and table[2].startswith("| vitok-tiny |")
