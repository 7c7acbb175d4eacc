"""I3D (FVD features) against the original jax port's logits on a real clip."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import smooth_image
from vitok import io
from vitok.cli import main
from vitok.metrics.i3d import I3D, same_padding

FIXTURE = Path(__file__).parent / "fixtures" / "i3d"


def test_i3d_matches_the_jax_reference_logits(shared_data) -> None:
    sys.path.insert(0, str(FIXTURE))
    from make_reference import clip  # the recipe the reference was made with

    reference = json.loads((FIXTURE / "reference.json").read_text())
    frames = clip(str(shared_data / "videos" / "train" / "vtest.avi"))
    assert hashlib.sha256(frames.tobytes()).hexdigest() == reference["clip_sha256"]
    x = torch.from_numpy(frames).float().permute(3, 0, 1, 2)[None] / 127.5 - 1
    with torch.no_grad():
        logits = I3D()(x)[0].double().numpy()
    np.testing.assert_allclose(logits, reference["logits"], atol=2e-4)
    assert int(logits.argmax()) == reference["top_class"]


def test_same_padding_matches_tf() -> None:
    assert same_padding((16, 224, 224), (7, 7, 7), (2, 2, 2)) == [2, 3, 2, 3, 2, 3]
    assert same_padding((8, 56, 56), (1, 3, 3), (1, 2, 2)) == [0, 1, 0, 1, 0, 0]
    with pytest.raises(ValueError, match="at least 9 frames"):
        I3D(pretrained=False)(torch.zeros(1, 3, 8, 64, 64))


def test_eval_rfvd_on_videos(tmp_path) -> None:
    folder = tmp_path / "videos"
    for i in range(3):
        base = smooth_image(48, 48, i)
        io.save_video(torch.stack([base.roll(2 * t, dims=-1) for t in range(16)], 1), folder / f"{i}.mp4")
    assert main(["eval", "--model", "N-N/2x8", str(folder), "--size", "32", "--frames", "16",
                 "--metrics", "psnr,rfvd", "--out", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["samples"] == 3 and results["metrics"]["rfvd"] > 0 and results["frames"] == 16
