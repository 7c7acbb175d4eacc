"""The autoencoder: presets, shapes, gradients, bottleneck, input checks, paper figures."""

from __future__ import annotations

import pytest
import torch

from vitok import PRESETS, TowerConfig, ViTok, count_macs, get_config
from vitok.metrics.flops import compression_ratio, latent_size, measure_macs
from vitok.models.bottleneck import LatentDistribution

SMALL = [name for name, cfg in PRESETS.items() if cfg.encoder.width <= 384 and cfg.decoder.width <= 384]


def n_params(config) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in ViTok(config).parameters())


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_and_runs_on_meta(name: str) -> None:
    config = PRESETS[name]
    with torch.device("meta"):
        model = ViTok(config)
        x = torch.zeros(1, 3, *config.default_input_shape) if config.is_video else torch.zeros(1, 3, *config.image_size)
        out = model(x)
    assert out.recon.shape == x.shape
    t, h, w = model.latent_grid(config.default_input_shape)
    expected = (1, config.latent_channels, t, h, w) if config.is_video else (1, config.latent_channels, h, w)
    assert out.latent.shape == expected


@pytest.mark.parametrize(("name", "paper_m"), [("S-B/16", 129.0), ("S-L/16", 426.8)])
def test_parameter_counts_match_paper(name: str, paper_m: float) -> None:
    assert abs(n_params(get_config(name)) / 1e6 / paper_m - 1) < 0.005


@pytest.mark.parametrize(("name", "shape", "paper"), [
    ("S-B/16", (1, 256, 256), 34.8),
    ("S-L/16", (1, 256, 256), 113.4),
    ("S-B/16", (1, 512, 512), 160.8),
    ("S-B/4x8", (16, 128, 128), 160.8),
])
def test_gmacs_match_paper(name: str, shape: tuple[int, int, int], paper: float) -> None:
    config = get_config(name)
    analytic = count_macs(config, shape).gmacs
    assert abs(analytic / paper - 1) < 0.03
    assert measure_macs(config, shape).gmacs == pytest.approx(analytic, rel=1e-9)


@pytest.mark.parametrize("name", SMALL)
def test_analytic_and_measured_macs_agree(name: str) -> None:
    config = get_config(name, qk_norm=True)
    t, h, w = config.default_input_shape
    large = (t, 4 * h, 4 * w)  # 16 windows: encode / decode would tile it automatically
    for shape in [config.default_input_shape, (config.num_frames, 40, 24), large]:
        assert measure_macs(config, shape).total == count_macs(config, shape).total, shape


def test_latent_size_and_ratio() -> None:
    config = get_config("S-B/16")
    assert latent_size(config) == 4096
    assert compression_ratio(config) == 48.0
    assert latent_size(get_config("S-B/16", latent_channels=32)) == 8192


@pytest.mark.parametrize(("hw", "latent_hw"), [
    ((64, 64), (8, 8)), ((37, 50), (5, 7)), ((8, 8), (1, 1)), ((96, 40), (12, 5)),
])
def test_image_shapes_any_size(hw: tuple[int, int], latent_hw: tuple[int, int]) -> None:
    model = ViTok.from_preset("N-N/8").eval()
    x = torch.rand(2, 3, *hw) * 2 - 1
    z = model.encode(x)
    assert z.shape == (2, 16, *latent_hw)
    assert model.decode(z, size=hw).shape == x.shape
    assert model(x).recon.shape == x.shape


@pytest.mark.parametrize(("thw", "grid"), [
    ((4, 32, 32), (2, 4, 4)), ((5, 33, 20), (3, 5, 3)), ((1, 16, 16), (1, 2, 2)),
])
def test_video_shapes_any_size(thw: tuple[int, int, int], grid: tuple[int, int, int]) -> None:
    model = ViTok.from_preset("N-N/2x8", latent_channels=8).eval()
    x = torch.rand(1, 3, *thw) * 2 - 1
    z = model.encode(x)
    assert z.shape == (1, 8, *grid)
    assert model(x).recon.shape == x.shape


def test_image_through_video_model() -> None:
    model = ViTok.from_preset("N-N/2x8").eval()
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    assert model.encode(x).shape == (2, 16, 3, 3)
    assert model(x).recon.shape == x.shape


@pytest.mark.parametrize("options", [
    {}, {"norm": "rmsnorm"}, {"qk_norm": True}, {"bottleneck": "deterministic"}, {"mlp_ratio": 2.0},
])
def test_backward_reaches_every_parameter(options: dict) -> None:
    model = ViTok.from_preset("N-N/8", **options).train()
    x = torch.rand(2, 3, 24, 32) * 2 - 1
    out = model(x, sample=True)
    loss = (out.recon - x).pow(2).mean() + out.posterior.kl()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_kl_bottleneck_distribution() -> None:
    zero = LatentDistribution(torch.zeros(2, 4, 3), torch.zeros(2, 4, 3))
    assert zero.kl().item() == 0.0
    shifted = LatentDistribution(torch.ones(2, 4, 3), torch.zeros(2, 4, 3))
    assert shifted.kl().item() == pytest.approx(0.5)
    g = torch.Generator().manual_seed(0)
    assert not torch.equal(shifted.sample(g), shifted.mode())
    big = LatentDistribution(torch.zeros(20000), torch.full((20000,), 2 * torch.tensor(3.0).log()))
    assert big.sample(g).std().item() == pytest.approx(3.0, rel=0.05)


def test_logvar_is_clamped() -> None:
    model = ViTok.from_preset("N-N/8")
    with torch.no_grad():
        model.bottleneck.proj.bias[16:] = 1000.0
    posterior = model.encode_posterior(torch.zeros(1, 3, 16, 16))
    assert posterior.logvar.max().item() == 20.0


def test_deterministic_bottleneck_is_normalised_and_has_no_kl() -> None:
    model = ViTok.from_preset("N-N/8", bottleneck="deterministic")
    posterior = model.encode_posterior(torch.rand(2, 3, 32, 32))
    assert posterior.kl().item() == 0.0
    assert torch.equal(posterior.sample(), posterior.mode())
    per_token = posterior.mean.permute(0, 2, 3, 1)
    torch.testing.assert_close(per_token.mean(-1), torch.zeros_like(per_token[..., 0]), atol=1e-5, rtol=0)


def test_eval_is_deterministic_and_sampling_is_not() -> None:
    model = ViTok.from_preset("N-N/8").eval()
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(model(x).recon, model(x).recon)
    assert not torch.equal(model(x, sample=True).latent, model(x).latent)


def test_batch_elements_are_independent() -> None:
    model = ViTok.from_preset("N-N/8").eval()
    x = torch.rand(3, 3, 16, 24)
    torch.testing.assert_close(model(x).recon[1:2], model(x[1:2]).recon, atol=1e-5, rtol=1e-5)


def test_bf16_autocast_close_to_fp32() -> None:
    model = ViTok.from_preset("N-N/8").eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    ref = model(x).recon
    with torch.autocast("cpu", torch.bfloat16):
        low = model(x).recon
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max().item() < 0.1


@pytest.mark.parametrize(("bad", "message"), [
    (torch.zeros(3, 16, 16), "rank 3"),
    (torch.zeros(1, 1, 16, 16), "1 channels"),
    (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), "dtype torch.uint8"),
    (torch.zeros(0, 3, 16, 16), "empty"),
    (torch.zeros(1, 3, 0, 16, 16), "empty"),
    ([[1.0]], "got list"),
])
def test_bad_inputs_raise_clear_errors(bad: object, message: str) -> None:
    model = ViTok.from_preset("N-N/8")
    with pytest.raises(ValueError, match=message) as info:
        model.encode(bad)
    assert "(B, 3, H, W)" in str(info.value)


def test_bad_latents_raise_clear_errors() -> None:
    model = ViTok.from_preset("N-N/8")
    with pytest.raises(ValueError, match=r"\(B, 16, h, w\)"):
        model.decode(torch.zeros(1, 8, 4, 4))
    with pytest.raises(ValueError, match="size must be 2 ints"):
        model.decode(torch.zeros(1, 16, 4, 4), size=(1, 2, 3))
    for size in [(64, 64), (-8, 32), (0, 0), (1000, 5), (32.0, 32), (True, 1)]:  # decodes to 32 x 32
        with pytest.raises(ValueError, match="size"):
            model.decode(torch.zeros(1, 16, 4, 4), size=size)
    assert model.decode(torch.zeros(1, 16, 4, 4), size=(31, 1)).shape == (1, 3, 31, 1)


def test_unknown_preset_and_override() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        get_config("Q-B/16")
    with pytest.raises(TypeError):
        get_config("S-B/16", not_a_field=1)
    assert get_config("B-L/4x8").tubelet_size == 4


def test_save_load_roundtrip_is_bit_identical(tmp_path) -> None:
    model = ViTok.from_preset("N-N/8", latent_channels=8, qk_norm=True).eval()
    model.set_latent_stats(torch.arange(8.0), torch.full((8,), 2.0))
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = ViTok.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    x = torch.rand(2, 3, 24, 40) * 2 - 1
    assert torch.equal(loaded(x).recon, model(x).recon)
    z = model.encode(x, normalize=True)
    assert torch.equal(loaded.encode(x, normalize=True), z)
    torch.testing.assert_close(model.denormalize_latent(z), model.encode(x))


def test_from_pretrained_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        ViTok.from_pretrained(tmp_path / "missing")
    model = ViTok.from_preset("N-N/8")
    model.save_pretrained(tmp_path / "m")
    other = ViTok.from_preset("N-N/8", latent_channels=4)
    other.save_pretrained(tmp_path / "o")
    (tmp_path / "m" / "model.safetensors").replace(tmp_path / "o" / "model.safetensors")
    with pytest.raises(ValueError, match=r"'bottleneck\.proj\.weight: stored \[32, 64\], config \[8, 64\]'"):
        ViTok.from_pretrained(tmp_path / "o")  # N-N/8 stores c = 16 (mean and log-variance), the config asks c = 4


def test_activation_checkpointing_gives_the_same_gradients() -> None:
    model = ViTok.from_preset("N-N/8").train()
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    noise = torch.randn(model.latent_shape(tuple(x.shape)))
    grads = []
    for flag in (False, True):
        model.zero_grad()
        model.encoder.grad_checkpointing = model.decoder.grad_checkpointing = flag
        out = model(x, sample=True, noise=noise)
        (out.recon.pow(2).mean() + out.posterior.kl()).backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters()})
    for key, grad in grads[0].items():
        torch.testing.assert_close(grad, grads[1][key])


# ---------------------------------------------------------------------- decoder heads
HEADS = [{"head": "linear"}, {"head": "conv", "head_channels": 8, "head_blocks": 0},
         {"head": "conv", "head_channels": 8, "head_blocks": 2}, {"decoder_fine_depth": 1},
         {"decoder_fine_depth": 2, "decoder_fine_width": 128, "head": "conv", "head_channels": 8}]


@pytest.mark.parametrize("name", ["N-N/8", "N-N/2x8"])
def test_fresh_conv_tail_gives_exactly_the_linear_heads_output(name: str) -> None:
    linear = ViTok(get_config(name))
    conv = ViTok(get_config(name, head="conv", head_channels=8, head_blocks=2))
    missing, unexpected = conv.load_state_dict(linear.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(("decoder_features.", "conv_tail.")) for k in missing)
    for shape in [(2, 3, 40, 24), (2, 3, 5, 40, 24)]:
        x = torch.rand(shape) * 2 - 1
        with torch.no_grad():
            assert torch.equal(linear(x).recon, conv(x).recon)


def test_conv_tail_learns_a_correction() -> None:
    model = ViTok(get_config("N-N/8", head="conv", head_channels=8, head_blocks=1))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    model(x).recon.pow(2).mean().backward()
    assert model.conv_tail.conv_out.weight.grad.abs().sum() > 0  # the zero conv gets a gradient


@pytest.mark.parametrize("head", HEADS, ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items()))
@pytest.mark.parametrize("name", ["N-N/8", "N-N/2x8", "Ti-XS/4x8"])
def test_every_head_macs_match_flop_counter_and_shapes(name: str, head: dict) -> None:
    config = get_config(name, **head)
    for shape in [(1, 64, 48), (1, 40, 24), (4, 32, 32), (3, 24, 40)]:
        assert measure_macs(config, shape).total == count_macs(config, shape).total, shape
    with torch.device("meta"):
        model = ViTok(config)
        for x in (torch.zeros(2, 3, 40, 24), torch.zeros(2, 3, 5, 40, 24)):
            out = model(x)
            assert out.recon.shape == x.shape


def test_head_config_is_checked_and_round_trips(tmp_path) -> None:
    with pytest.raises(ValueError, match="head must be"):
        get_config("N-N/8", head="deconv")
    with pytest.raises(ValueError, match="head_channels"):
        get_config("N-N/8", head="conv", head_channels=0)
    with pytest.raises(TypeError, match="TowerConfig"):
        get_config("N-N/8", decoder={"width": 64, "depth": 1, "heads": 2})
    model = ViTok(get_config("N-N/8", head="conv", head_channels=8, head_blocks=1,
                             decoder=TowerConfig(width=64, depth=1, heads=2)))
    assert model.config.decoder.depth == 1
    model.save_pretrained(tmp_path)
    loaded = ViTok.from_pretrained(tmp_path)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.eval()(x).recon, loaded(x).recon)


def test_hourglass_end_splits_tokens_and_checks_its_sizes() -> None:
    model = ViTok.from_preset("N-N/8", decoder_fine_depth=1)
    assert model.config.out_patch == 4 and model.decoder_out.out_features == 4 * 4 * 3
    x = torch.rand(1, 3, 40, 24) * 2 - 1
    assert model(x).recon.shape == x.shape
    with pytest.raises(ValueError, match="even patch_size"):
        get_config("N-N/7", decoder_fine_depth=1)
    with pytest.raises(ValueError, match="head size"):
        get_config("N-N/8", decoder_fine_depth=1, decoder_fine_width=48)  # head size 32


def test_paper_presets_keep_the_linear_head() -> None:
    for name in ("S-B/16", "S-L/16", "S-B/4x8", "S-B/8x8", "S-B/4x16"):
        assert PRESETS[name].head == "linear" and PRESETS[name].decoder_fine_depth == 0


def test_api_helpers_check_their_arguments() -> None:
    model = ViTok.from_preset("N-N/8")
    c = model.config.latent_channels
    with pytest.raises(TypeError, match="tensors"):
        model.set_latent_stats([0.0] * c, torch.ones(c))
    nan, inf = torch.full((c,), float("nan")), torch.full((c,), float("inf"))
    for mean, std in [(torch.zeros(c), torch.zeros(c)), (torch.zeros(c), -torch.ones(c)), (nan, torch.ones(c)),
                      (torch.zeros(c), inf)]:
        with pytest.raises(ValueError, match="latent (mean|std)"):
            model.set_latent_stats(mean, std)
    assert model.config.latent_std is None and torch.equal(model.latent_std, torch.ones(c))  # nothing stored
    for bad in ([[0.0]], torch.zeros(1, 3, 4, 4)):
        with pytest.raises(ValueError, match="latent"):
            model.normalize_latent(bad)
        with pytest.raises(ValueError, match="latent"):
            model.denormalize_latent(bad)
    for shape in [(), (1, 3, 8), (1, 3, 0, 8), (1.0, 3, 8, 8)]:
        with pytest.raises(ValueError, match="shape"):
            model.latent_shape(shape)


def test_saved_files_get_the_umask_mode(tmp_path) -> None:
    import os
    import stat

    ViTok.from_preset("N-N/8").save_pretrained(tmp_path / "m")
    mask = os.umask(0o022)
    os.umask(mask)
    for name in ("model.safetensors", "config.json"):
        assert stat.S_IMODE((tmp_path / "m" / name).stat().st_mode) == 0o666 & ~mask


def test_names_flops_and_config_replace_check_their_arguments() -> None:
    """Fuzz campaign kinds: get_config(None) / (['N-N/8']) raised TypeErrors from re / dict lookups,
    get_config(name, name=...) collided with the positional argument, replace() raised Python's own
    TypeError, and the MAC counters took shapes with 0, negative or fractional sizes (compression
    ratio 12.0 for a (1, -8, 8) input) or a config that is not one."""
    for bad in (None, 8, ["N-N/8"]):
        with pytest.raises(TypeError, match="model name must be a string"):
            get_config(bad)
    assert get_config("N-N/8", name="mine").name == "mine"
    with pytest.raises(TypeError, match=r"unknown ViTokConfig field \['width'\]; fields: \["):
        get_config("N-N/8", width=3)
    config = get_config("N-N/8")
    for fn in (count_macs, latent_size, compression_ratio, measure_macs):
        for shape, error in (((1, -8, 8), ValueError), ((0, 8, 8), ValueError), ((1, 8.5, 8), TypeError),
                             ((1, 8), TypeError), ("64", TypeError)):
            with pytest.raises(error, match="shape"):
                fn(config, shape)
        with pytest.raises(TypeError, match="config must be a ViTokConfig"):
            fn("N-N/8", None)
    assert latent_size(config, [1, 16, 16]) == 4 * config.latent_channels  # a list is a shape too


def test_from_pretrained_checks_the_name_argument(tmp_path) -> None:
    for bad, error in ((5, TypeError), (None, TypeError), ("", ValueError), ("  ", ValueError)):
        with pytest.raises(error, match="name_or_path"):
            ViTok.from_pretrained(bad)
    with pytest.raises(TypeError, match="revision"):
        ViTok.from_pretrained(tmp_path, revision=5)


def test_posterior_noise_and_generator_are_checked() -> None:
    """Fuzz campaign kind: forward(x, sample=True, noise='noise') raised AttributeError in the
    bottleneck, a non-Generator generator a TypeError from torch.randn."""
    model = ViTok.from_preset("N-N/8")
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(TypeError, match="noise must be a float tensor of the latent's shape"):
        model(x, sample=True, noise="noise")
    with pytest.raises(ValueError, match="noise must have the latent's shape"):
        model(x, sample=True, noise=torch.zeros(1, 16, 2, 3))
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        model.encode(x, sample=True, generator="seed")
    with pytest.raises(TypeError, match="real-valued"):
        from vitok.metrics.ssim import ssim

        ssim(torch.zeros(1, 3, 16, 16, dtype=torch.complex64), torch.zeros(1, 3, 16, 16, dtype=torch.complex64))


def test_from_preset_name_override_latent_shape_message_and_device_are_checked(tmp_path) -> None:
    """Fuzz campaign kinds: from_preset(name, name=...) raised Python's "multiple values", a tensor
    given to latent_shape printed its whole repr, an unknown device failed after reading weights."""
    from vitok import ViTok

    assert ViTok.from_preset("N-N/8", name="renamed").config.name == "renamed"  # the override, not a clash
    with pytest.raises(ValueError) as info:
        ViTok.from_preset("N-N/8").latent_shape(torch.zeros(2, 3, 8, 8))
    assert "\n" not in str(info.value)
    ViTok.from_preset("N-N/8").save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="device"):
        ViTok.from_pretrained(tmp_path / "m", device="tpu")
