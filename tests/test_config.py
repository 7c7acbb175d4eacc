"""ViTokConfig / TowerConfig / DiTConfig: every field's type and range checked, one clear error
naming the key (issue #13)."""

from __future__ import annotations

import json

import pytest

from vitok import ViTok
from vitok.model_config import ViTokConfig
from vitok.presets import dit_config, get_config

BASE = get_config("N-N/8").to_dict()


@pytest.mark.parametrize(("data", "message"), [
    ({k: v for k, v in BASE.items() if k != "encoder"}, r"missing keys \['encoder'\]"),
    ({**BASE, "encoder": {"width": "64", "depth": 2, "heads": 2}}, r"encoder\.width must be an int, got '64'"),
    ({**BASE, "encoder": {"width": 64.0, "depth": 2, "heads": 2}}, r"encoder\.width must be an int, got 64\.0"),
    ({**BASE, "decoder": {"width": 64, "depth": 2, "heads": 2, "dropout": 0.1}},
     r"decoder: unknown keys \['dropout'\]"),
    ({**BASE, "decoder": [64, 2, 2]}, r"decoder: expected an object"),
    ({**BASE, "patch_size": "8"}, r"patch_size must be an int, got '8'"),
    ({**BASE, "qk_norm": 1}, r"qk_norm must be true or false, got 1"),
    ({**BASE, "rope_theta": -10000.0}, r"rope_theta must be > 0, got -10000\.0"),
    ({**BASE, "mlp_ratio": float("nan")}, r"mlp_ratio must be a finite number, got nan"),
    ({**BASE, "logvar_min": 10.0, "logvar_max": -10.0}, r"logvar_min must be < logvar_max"),
    ({**BASE, "image_size": "abc"}, r"image_size must be a list of 2 values, each an int, got 'abc'"),
    ({**BASE, "image_size": [0, 32]}, r"image_size must be two ints >= 1"),
    ({**BASE, "norm": "batchnorm"}, r"norm must be one of 'layernorm', 'rmsnorm', got 'batchnorm'"),
    ({**BASE, "latent_std": [0.0] * 16}, r"latent_std must be null or all > 0"),
    ({**BASE, "latent_mean": [0.0] * 3}, r"latent_mean must have latent_channels = 16 values, got 3"),
    ([BASE], r"ViTokConfig: expected an object"),
    ({**BASE, "bogus": 1}, r"unknown keys \['bogus'\]"),
])
def test_malformed_configs_name_the_key(data, message) -> None:
    with pytest.raises(ValueError, match=message):
        ViTokConfig.from_dict(data)


def test_valid_configs_round_trip_and_are_normalised() -> None:
    config = ViTokConfig.from_dict({**BASE, "image_size": [32, 48], "mlp_ratio": 2, "latent_std": [1] * 16})
    assert config.image_size == (32, 48) and config.mlp_ratio == 2.0 and config.latent_std == (1.0,) * 16
    assert ViTokConfig.from_dict(config.to_dict()) == config


def test_model_config_json_errors_name_the_file(tmp_path) -> None:
    ViTok.from_preset("N-N/8").save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "rope_theta": -1.0}))
    with pytest.raises(ValueError, match=rf"^{path}: rope_theta must be > 0, got -1\.0$"):
        ViTok.from_pretrained(tmp_path / "m")


def test_dit_config_is_checked() -> None:
    with pytest.raises(ValueError, match=r"DiTConfig: unknown keys \['bogus'\]"):
        dit_config("DiT-T", bogus=1)
    with pytest.raises(ValueError, match=r"class_dropout must be in \[0, 1\), got 1\.5"):
        dit_config("DiT-T", class_dropout=1.5)
    with pytest.raises(ValueError, match="even size"):
        dit_config("DiT-T", heads=3)


@pytest.mark.parametrize(("key", "value"), [("patch_size", 10**9), ("tubelet_size", 10**6), ("latent_channels", 10**9),
                                            ("mlp_ratio", 1e6), ("num_frames", 10**9)])
def test_absurd_sizes_in_config_json_name_the_key_before_any_layout(tmp_path, key: str, value: object) -> None:
    """Fuzz campaign kind: a config.json with patch_size 10^9 overflowed torch's storage-size
    computation (a RuntimeError) while the model was laid out on the meta device."""
    ViTok.from_preset("N-N/8").save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), key: value}))
    with pytest.raises(ValueError, match=rf"^{path}: {key} must be in "):
        ViTok.from_pretrained(tmp_path / "m")
