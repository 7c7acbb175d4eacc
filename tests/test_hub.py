"""The Hugging Face Hub path, offline: a cache laid out as huggingface_hub lays it, offline mode,
revisions, and push_to_hub's files and calls (nothing reaches the network)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("huggingface_hub")

from vitok import ViTok
from vitok.hub import prepare_folder


def fake_hub_cache(cache: Path, repo_id: str, files: Path, commit: str, ref: str = "main") -> Path:
    """The hub cache layout (models--org--name/{blobs,snapshots/<commit>,refs/<ref>}) with ``files``'
    contents as content-addressed blobs linked from the snapshot, as huggingface_hub writes it."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for file in files.iterdir():
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / file.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    return snapshot


def load_offline(cache: Path, spec: str, revision: str | None = None) -> subprocess.CompletedProcess:
    code = (f"import torch; from vitok import ViTok; m = ViTok.from_pretrained({spec!r}, revision={revision!r}); "
            "print('latent', m.config.latent_channels, float(m.decoder_out.weight.sum()))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(cache.parent)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_from_pretrained_resolves_a_hub_id_offline_with_revisions(tmp_path) -> None:
    main_model, old_model = ViTok.from_preset("N-N/8", latent_channels=4), ViTok.from_preset("N-N/8", latent_channels=8)
    prepare_folder(main_model, tmp_path / "main")
    prepare_folder(old_model, tmp_path / "old")
    cache = tmp_path / "hf" / "hub"
    fake_hub_cache(cache, "acme/tiny-vitok", tmp_path / "main", "a" * 40)
    fake_hub_cache(cache, "acme/tiny-vitok", tmp_path / "old", "b" * 40, ref="v0")
    result = load_offline(cache, "acme/tiny-vitok")
    assert result.returncode == 0, result.stderr
    assert f"latent 4 {float(main_model.decoder_out.weight.detach().sum())}" in result.stdout
    assert "latent 8" in load_offline(cache, "acme/tiny-vitok", "v0").stdout
    missing = load_offline(cache, "acme/not-cached")
    assert missing.returncode != 0 and "cannot resolve hub model 'acme/not-cached'" in missing.stderr


def test_push_to_hub_prepares_the_files_and_uploads_them(tmp_path, monkeypatch) -> None:
    import huggingface_hub

    model = ViTok.from_preset("N-N/8")
    calls: dict[str, object] = {}

    class FakeApi:
        def __init__(self, token=None) -> None:
            calls["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls["create"] = (repo_id, private, exist_ok)

        def upload_folder(self, repo_id, folder_path, revision=None, commit_message=""):
            calls["files"] = sorted(p.name for p in Path(folder_path).iterdir())
            calls["card"] = (Path(folder_path) / "README.md").read_text()
            calls["reload"] = ViTok.from_pretrained(folder_path).config == model.config
            return "https://example.invalid/commit/1"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    url = model.push_to_hub("acme/tiny", facts={"Training": "none"}, private=True, token="t")
    assert url.endswith("/commit/1") and calls["create"] == ("acme/tiny", True, True) and calls["token"] == "t"
    assert calls["files"] == ["README.md", "config.json", "model.safetensors"] and calls["reload"]
    assert "library_name: vitok" in calls["card"] and "## Training" in calls["card"]


def test_local_directories_and_shipped_names_still_win(tmp_path, monkeypatch) -> None:
    model = ViTok.from_preset("N-N/8")
    (tmp_path / "org").mkdir()
    model.save_pretrained(tmp_path / "org" / "name")
    cwd = Path.cwd()
    try:
        os.chdir(tmp_path)
        loaded = ViTok.from_pretrained("org/name")  # a local folder that looks like a hub id
    finally:
        os.chdir(cwd)
    assert torch.equal(loaded.decoder_out.weight, model.decoder_out.weight)
    with pytest.raises(FileNotFoundError, match="Hugging Face Hub id"):
        ViTok.from_pretrained(tmp_path / "nothing-here")
    import huggingface_hub

    def no_hub(*args, **kwargs):
        raise AssertionError("a preset name must not be looked up on the hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_hub)
    for name in ("S-B/16", "Ti-XS/4x8"):
        with pytest.raises(FileNotFoundError, match="from_preset"):
            ViTok.from_pretrained(name)


def test_dit_pushes_its_generation_info_and_loads_from_a_hub_id_offline(tmp_path, monkeypatch) -> None:
    import huggingface_hub

    from vitok.models.dit import DiT
    from vitok.presets import dit_config

    dit = DiT(dit_config("DiT-T", latent_channels=4, num_classes=3))
    generation = {"objective": "ddpm", "latent_shape": [4, 2, 2], "classes": ["a", "b", "c"], "latents": "x"}
    pushed: dict[str, object] = {}

    class FakeApi:
        def __init__(self, token=None) -> None:
            pass

        def create_repo(self, repo_id, private=None, exist_ok=False):
            pass

        def upload_folder(self, repo_id, folder_path, revision=None, commit_message=""):
            pushed["files"] = sorted(p.name for p in Path(folder_path).iterdir())
            fake_hub_cache(tmp_path / "hf" / "hub", repo_id, Path(folder_path), "c" * 40)
            return "https://example.invalid/commit/2"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    downloaded = {}
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo_id, revision=None, allow_patterns=None, **kw: downloaded.update(
                            patterns=allow_patterns) or str(tmp_path / "nowhere"))
    from vitok.models.pretrained import hub_snapshot

    with pytest.raises(FileNotFoundError):  # the fake download holds nothing
        hub_snapshot("acme/tiny-dit", None)
    assert "generation.json" in downloaded["patterns"]  # a real download fetches the DiT's generation info
    dit.push_to_hub("acme/tiny-dit", generation=generation)
    assert pushed["files"] == ["README.md", "config.json", "generation.json", "model.safetensors"]
    code = ("from vitok.generate.sample import load_dit; m, info = load_dit('acme/tiny-dit'); "
            "print(info['classes'], float(m.final.linear.weight.sum() + sum(p.sum() for p in m.parameters())))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
           "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    total = float(dit.final.linear.weight.sum() + sum(p.sum() for p in dit.parameters()))
    assert f"['a', 'b', 'c'] {total}" in result.stdout
