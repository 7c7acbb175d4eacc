"""Where saved models come from and how their files are read, and the one save / load path.

A saved model (a :class:`~vitok.models.vitok.ViTok` or a :class:`~vitok.models.dit.DiT`) is a
directory with ``config.json`` (its ``model_type`` and config) + ``model.safetensors``, written by
``save_pretrained``: a local directory, one shipped in ``vitok/pretrained/``, or a Hugging Face
Hub snapshot. The config is validated and the weights' header read without loading tensors, so
``from_pretrained`` checks one against the other before allocating anything
(:class:`PretrainedMixin`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from vitok.checks import check_device
from vitok.files import atomic_write, load_safetensors
from vitok.model_config import ViTokConfig
from vitok.models.inference import cast_for_inference

if TYPE_CHECKING:
    from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def read_config(path: Path, config_class: type = ViTokConfig, model_type: str = "vitok") -> Any:
    """The ``config_class`` (``ViTokConfig`` by default) of a model's ``config.json``, whose
    ``model_type`` must be ``model_type`` (a vitok config may omit it); ``ValueError`` naming the file
    otherwise."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the model config: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    data = dict(data)
    found = data.pop("model_type", "vitok")
    if found != model_type:
        raise ValueError(f"{path} is not a {model_type} config (model_type {found!r})")
    try:
        return config_class.from_dict(data)
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise ValueError(f"{path}: {err}") from None


def safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header (no tensor is read); ``ValueError``
    naming the file when it is not a readable safetensors file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}  # noqa: SIM118
    except Exception as err:  # safetensors raises its own error types for every malformed header
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None


PRESET_HINT = "for a randomly initialised preset use ViTok.from_preset(name)"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # "org/name" on the Hugging Face Hub


def resolve_pretrained(name_or_path: str | os.PathLike, revision: str | None = None,
                       hint: str = PRESET_HINT) -> Path:
    """A directory holding ``config.json`` + ``model.safetensors``: a local directory, a model shipped
    in ``vitok/pretrained/``, or a Hugging Face Hub id (``org/name``, at ``revision``) resolved
    through the hub cache with ``huggingface_hub`` (honours ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE``).

    Raises ``FileNotFoundError`` naming what was looked for (for a hub id offline and not cached,
    or not on the hub), ending with ``hint``.
    """
    if isinstance(name_or_path, str) and not name_or_path.strip():
        raise ValueError("name_or_path is empty: give a model folder, a shipped model name or a hub id (org/name)")
    if not isinstance(name_or_path, (str, os.PathLike)):
        from vitok.checks import describe

        raise TypeError(f"name_or_path must be a model folder, a shipped model name or a hub id (org/name), got "
                        f"{describe(name_or_path)}")
    if revision is not None and not isinstance(revision, str):
        raise TypeError(f"revision must be a string (a branch, tag or commit) or None, got {revision!r}")
    path = Path(name_or_path)
    if (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file():
        return path
    shipped = Path(__file__).resolve().parent.parent / "pretrained" / str(name_or_path)
    if (shipped / CONFIG_NAME).is_file() and (shipped / WEIGHTS_NAME).is_file():
        return shipped
    if HUB_ID.match(str(name_or_path)) and not path.exists() and not is_preset_name(str(name_or_path)):
        return hub_snapshot(str(name_or_path), revision)
    if (path / CONFIG_NAME).is_file() and any(path.glob("diffusion_pytorch_model.*")):
        raise FileNotFoundError(
            f"{str(name_or_path)!r} is a diffusers model folder, not vitok's layout: a vitok tokenizer saved "
            "through diffusers loads with vitok.integrations.diffusers.AutoencoderViTok.from_pretrained(path)"
            ".to_vitok(), a conv VAE (e.g. benchmarks/baselines/autoencoder-kl) with "
            "diffusers.AutoencoderKL.from_pretrained(path); `vitok reconstruct` / `vitok eval --model` take both")
    raise FileNotFoundError(
        f"no vitok model at {str(name_or_path)!r}: expected a directory with {CONFIG_NAME} and "
        f"{WEIGHTS_NAME} (written by save_pretrained), a shipped model name or a Hugging Face Hub id "
        f"(org/name); {hint}"
    )


def is_preset_name(name: str) -> bool:
    """Whether ``name`` is a preset or an ENC-DEC/p name (those look like hub ids but never are)."""
    from vitok.presets import PRESETS, parse_name

    try:
        return name in PRESETS or parse_name(name) is not None
    except ValueError:
        return False


def hub_snapshot(repo_id: str, revision: str | None = None) -> Path:
    """The local snapshot of a hub model's config, weights and card, downloaded into the hub cache
    unless already there (offline mode: the cache only). Needs ``huggingface_hub``."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as err:
        raise FileNotFoundError(f"{repo_id!r} looks like a Hugging Face Hub id, but huggingface_hub is not "
                                "installed: pip install 'vitok[hub]'") from err
    try:
        folder = Path(snapshot_download(repo_id, revision=revision,
                                        allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, "README.md", "generation.json"]))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        raise FileNotFoundError(f"cannot resolve hub model {repo_id!r} (revision {revision or 'main'}): "
                                f"{str(err).splitlines()[0]}") from None
    if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"hub model {repo_id!r} has no {CONFIG_NAME} + {WEIGHTS_NAME} (not a vitok model)")
    return folder


class PretrainedMixin:
    """Saving and loading in the Hugging Face layout (``config.json`` + ``model.safetensors``;
    ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``), the one path for every vitok model:
    :class:`~vitok.models.vitok.ViTok` and :class:`~vitok.models.dit.DiT`. A model class names its
    ``model_type`` (written into ``config.json`` and checked on loading) and its ``config_class``
    (with ``to_dict`` / ``from_dict``), is built from its config (``cls(config)``) and carries it as
    ``self.config``."""

    config: Any
    model_type: ClassVar[str] = "vitok"
    config_class: ClassVar[type] = ViTokConfig
    missing_hint: ClassVar[str] = PRESET_HINT  # the end of the "no model at ..." error

    def fresh_copy(self) -> nn.Module:
        """A new model of the same class and config (freshly initialised weights): what the engine
        exports the EMA weights into."""
        return type(self)(self.config)

    def save_pretrained(self, directory: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (both atomically) into ``directory``;
        ``dtype`` (e.g. ``torch.bfloat16``) stores the parameters smaller (loading casts them back);
        buffers (the latent statistics) keep their own dtype, so they round-trip exactly."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params = {name for name, _ in self.named_parameters()}
        state = {k: v.detach().to(dtype if dtype and k in params and v.is_floating_point() else v.dtype)
                 .contiguous().cpu() for k, v in self.state_dict().items()}
        config = self.config.to_dict()
        atomic_write(directory / WEIGHTS_NAME, lambda path: save_file(state, str(path), {"format": "pt"}))
        text = json.dumps({"model_type": self.model_type, **config}, indent=2)
        atomic_write(directory / CONFIG_NAME, lambda path: Path(path).write_text(text))
        return directory

    def push_to_hub(self, repo_id: str, name: str | None = None, facts: dict[str, str] | None = None,
                    private: bool | None = None, token: str | None = None, revision: str | None = None,
                    commit_message: str = "Upload vitok model") -> str:
        """Upload ``config.json``, ``model.safetensors`` and a generated model card (``README.md``) to the
        Hugging Face Hub repository ``repo_id`` (created if missing); returns the commit URL.
        The files are those of :func:`vitok.hub.prepare_folder`. Needs ``huggingface_hub``."""
        from vitok.hub import push_to_hub

        return push_to_hub(self, repo_id, name, facts, private, token, revision, commit_message)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, device: str | torch.device = "cpu",
                        dtype: torch.dtype | None = None, revision: str | None = None) -> nn.Module:
        """Load a model saved by :meth:`save_pretrained`: a local directory, a model shipped with the
        package, or a Hugging Face Hub id ``org/name`` at ``revision`` (through the hub cache;
        ``HF_HUB_OFFLINE=1`` uses the cache only). No unpickling: the weights are safetensors.

        The config is validated and the model is first built on the meta device and compared
        with the safetensors header (no tensor is read), so a config that does not match its
        weights fails fast, using no memory. ``dtype=torch.bfloat16`` is bf16 inference: the
        weights are cast once, except the float32 parts named in ``fp32_modules`` (see
        :func:`vitok.models.inference.cast_for_inference`).

        Raises:
            FileNotFoundError: no such directory or shipped model.
            ValueError: a malformed ``config.json``, an unreadable weights file, or weights that do
                not match the config (each message names the file).
        """
        device = check_device("device", "cpu" if device is None else device)
        directory = resolve_pretrained(name_or_path, revision, cls.missing_hint)
        config = read_config(directory / CONFIG_NAME, cls.config_class, cls.model_type)
        weights = directory / WEIGHTS_NAME
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in cls(config).state_dict().items()}
        stored = safetensors_shapes(weights)
        missing = sorted(set(expected) - set(stored))
        unexpected = sorted(set(stored) - set(expected))
        wrong = [f"{k}: stored {list(stored[k])}, config {list(expected[k])}"
                 for k in sorted(set(expected) & set(stored)) if expected[k] != stored[k]]
        if missing or unexpected or wrong:
            raise ValueError(f"{weights} does not match {directory / CONFIG_NAME}: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}")
        model = cls(config)
        model.load_state_dict(load_safetensors(weights))
        model.name_or_path = str(name_or_path)  # as given (diffusers' convention), shown in reports
        model = model.to(device).eval()
        return model if dtype is None else cast_for_inference(model, dtype)
