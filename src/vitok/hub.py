"""Sharing on the Hugging Face Hub (``ViTok.push_to_hub``, ``DiT.push_to_hub``); loading is
``ViTok.from_pretrained("org/name")`` / ``DiT.from_pretrained("org/name")``.

A hub repository holds exactly what ``save_pretrained`` writes (``config.json`` +
``model.safetensors``) plus a generated model card (``README.md`` with a ``library_name: vitok``
header; for a tokenizer :func:`vitok.export.model_card`) and, for a DiT, its ``generation.json``,
so a downloaded snapshot is an ordinary model directory.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from vitok.models.dit import DiT
from vitok.models.vitok import ViTok


def prepare_folder(model: ViTok | DiT, directory: str | Path, name: str | None = None,
                   facts: dict[str, str] | None = None, extra: dict[str, str] | None = None) -> Path:
    """Write the files a hub repository gets into ``directory``: config, weights, model card and
    the ``extra`` {file name: text} (a DiT's ``generation.json``)."""
    from vitok.export import model_card

    directory = Path(directory)
    model.save_pretrained(directory)
    header = "---\nlibrary_name: vitok\ntags: [vitok, autoencoder, image-tokenizer, video-tokenizer]\n---\n\n"
    if isinstance(model, ViTok):
        card = model_card(model, name or model.config.name, facts or {})
    else:
        c = model.config
        header = header.replace("autoencoder, image-tokenizer, video-tokenizer", "dit, diffusion, generation")
        card = (f"# {name or 'vitok DiT'}\n\nA class-conditional DiT on vitok latents: width {c.width}, depth "
                f"{c.depth}, {c.heads} heads, {c.num_classes} classes, {c.latent_channels} latent channels. Load it "
                "with `DiT.from_pretrained(...)`; `vitok sample --dit ...` samples it.\n")
    (directory / "README.md").write_text(header + card)
    for file_name, text in (extra or {}).items():
        (directory / file_name).write_text(text)
    return directory


def push_to_hub(model: ViTok | DiT, repo_id: str, name: str | None = None, facts: dict[str, str] | None = None,
                private: bool | None = None, token: str | None = None, revision: str | None = None,
                commit_message: str = "Upload vitok model", extra: dict[str, str] | None = None) -> str:
    """Create ``repo_id`` if needed and upload :func:`prepare_folder`'s files; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vitok-hub-") as scratch:
        folder = prepare_folder(model, scratch, name or repo_id.split("/")[-1], facts, extra)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision,
                                 commit_message=commit_message)
    return str(getattr(info, "commit_url", info))
