"""Losses and image metrics: LPIPS against its published values, SSIM against skimage, GAN pieces."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from tests.conftest import REPO
from vitok.losses import (
    AutoencoderLoss,
    Discriminator,
    LossConfig,
    charbonnier,
    d_hinge_loss,
    g_loss,
    lattice_loss,
    ramp,
)
from vitok.metrics.lpips import LPIPS
from vitok.metrics.ssim import ssim
from vitok.weights import MissingWeightsError

PAIRS = ["I03", "I04", "I06", "I08", "I19"]
# pyiqa's calibration (README: "Our own networks, checked against references")
LPIPS_ALEX = [0.7237, 0.2572, 0.0508, 0.0521, 0.4253]
LPIPS_VGG = [0.7614, 0.2090, 0.0544, 0.0475, 0.5971]


@pytest.fixture(scope="session")
def tid2013_pairs() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The five TID2013 calibration pairs from the pyiqa wheel (downloaded once into .cache/)."""
    folder = REPO / ".cache" / "fixtures"
    folder.mkdir(parents=True, exist_ok=True)
    wheels = list(folder.glob("pyiqa-0.1.16-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder),
                        "pyiqa==0.1.16"], check=True)
        wheels = list(folder.glob("pyiqa-0.1.16-*.whl"))
    from PIL import Image

    def load(z: zipfile.ZipFile, name: str) -> torch.Tensor:
        array = np.asarray(Image.open(io.BytesIO(z.read(name))).convert("RGB"), dtype=np.float32) / 255
        return torch.from_numpy(array).permute(2, 0, 1)[None] * 2 - 1

    with zipfile.ZipFile(wheels[0]) as z:
        return [(load(z, f"ResultsCalibra/ref_dir/{p}.bmp"), load(z, f"ResultsCalibra/dist_dir/{p}.bmp"))
                for p in PAIRS]


@pytest.mark.parametrize(("net", "expected"), [("alex", LPIPS_ALEX), ("vgg", LPIPS_VGG)])
def test_lpips_reproduces_reference_values(net: str, expected: list[float], tid2013_pairs) -> None:
    model = LPIPS(net)
    with torch.no_grad():
        got = [model(ref, dist).item() for ref, dist in tid2013_pairs]
    np.testing.assert_allclose(got, expected, atol=6e-5)


def test_lpips_properties_and_gradient() -> None:
    model = LPIPS("alex")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert model(x, x).abs().max().item() < 1e-6
    y = (x + 0.3 * torch.randn_like(x)).requires_grad_()
    d = model(y, x)
    assert d.shape == (2,) and (d > 0).all()
    d.sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="B, 3, H, W"):
        model(x[:, :1], x[:, :1])


def test_missing_lpips_weights_name_the_fetch_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VITOK_CACHE", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="vitok weights fetch"):
        LPIPS("vgg")
    with pytest.raises(MissingWeightsError, match="vitok weights fetch"):
        AutoencoderLoss(LossConfig(perceptual="lpips-vgg"))
    AutoencoderLoss(LossConfig(perceptual="none"))  # training without LPIPS needs no weights


def test_ssim_matches_skimage() -> None:
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2, 3, 40, 52), generator=g).float()
    y = (x + 25 * torch.randn(x.shape, generator=g)).clamp(0, 255).round()
    ours = ssim(x, y, data_range=255)
    for i in range(2):
        ref = structural_similarity(x[i].permute(1, 2, 0).numpy(), y[i].permute(1, 2, 0).numpy(),
                                    gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    channel_axis=2, data_range=255)
        assert ours[i].item() == pytest.approx(ref, abs=1e-4)
    assert ssim(x, x, data_range=255).min().item() == pytest.approx(1.0)


def test_reconstruction_and_gan_losses() -> None:
    x = torch.zeros(4)
    assert charbonnier(x, x).item() == pytest.approx(1e-3)
    assert d_hinge_loss(torch.full((3,), 2.0), torch.full((3,), -2.0)).item() == 0.0
    assert d_hinge_loss(torch.zeros(3), torch.zeros(3)).item() == 2.0
    assert g_loss(torch.tensor([1.0, 3.0])).item() == -2.0
    assert [ramp(s, 10, 4) for s in (0, 9, 10, 12, 13, 100)] == [0.0, 0.0, 0.25, 0.75, 1.0, 1.0]


def test_lattice_loss_on_blocky_smooth_and_identical_errors() -> None:
    from vitok.metrics.grid import grid_score

    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    blocks = 0.2 * torch.rand(2, 3, 4, 4).repeat_interleave(8, -1).repeat_interleave(8, -2)  # per 8x8 patch
    smooth = 0.1 * torch.sin(torch.linspace(0, 6, 32)).view(1, 1, 1, 32).expand(2, 3, 32, 32)
    blocky_loss = lattice_loss(x + blocks, x, 8)
    assert lattice_loss(x, x, 8).item() == 0.0
    assert lattice_loss(x + smooth, x, 8).item() < 1e-3 < blocky_loss.item()
    # it is the excess of the border steps over the inside steps (here 0 inside): the grid measure's numerator
    steps = (blocks.diff(dim=-1).abs().sum() / (2 * 3 * 32 * 3) + blocks.diff(dim=-2).abs().sum() / (2 * 3 * 3 * 32))
    assert blocky_loss.item() == pytest.approx(steps.item() / 2, rel=1e-5)
    assert grid_score(x, x + blocks, 8) > 2 * grid_score(x, x + smooth, 8)  # the measure agrees
    recon = (x + blocks).requires_grad_()
    lattice_loss(recon, x, 8).backward()
    row = recon.grad[..., 3, :].abs().sum(dim=(0, 1))  # a row away from the horizontal borders
    borders = torch.tensor([7, 8, 15, 16, 23, 24])
    assert torch.all(row[borders] > 0) and row.sum() == row[borders].sum()  # only pixels beside a border
    with pytest.raises(ValueError, match="period >= 2"):
        lattice_loss(x, x, 1)
    with pytest.raises(ValueError, match="frames larger than it"):
        lattice_loss(x[..., :8, :12], x[..., :8, :12], 8)
    assert lattice_loss(x[..., :9, :9] + blocks[..., :9, :9], x[..., :9, :9], 8) > 0  # one border: enough
    with pytest.raises(TypeError, match="must be an int"):
        lattice_loss(x, x, 2.5)
    with pytest.raises(ValueError, match="same shape"):
        lattice_loss(x, x[:1], 8)


def test_lattice_term_in_the_composite_loss_and_the_models_period() -> None:
    from vitok.models.baselines import build_autoencoder_kl
    from vitok.models.bottleneck import LatentDistribution
    from vitok.models.vitok import ViTok
    from vitok.train.trainer import with_model_period

    cfg = LossConfig(perceptual="none", lattice_weight=2.0)
    assert with_model_period(cfg, ViTok.from_preset("N-N/16")).lattice_period == 16
    assert with_model_period(cfg, build_autoencoder_kl({}, None)).lattice_period == 8
    assert with_model_period(LossConfig(lattice_period=4), ViTok.from_preset("N-N/16")).lattice_period == 4
    from vitok.train import load_config

    with pytest.raises(ValueError, match=r"loss.lattice_period.*0 \(the model's\) or >= 2"):
        load_config(None, ["loss.lattice_period=1"])
    with pytest.raises(ValueError, match="crops larger than its period"):
        with_model_period(cfg, ViTok.from_preset("N-N/16"), [32, 16])  # a multi-size list's smallest
    with pytest.raises(ValueError, match="resolve it with the model first"):
        AutoencoderLoss(cfg)(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32),
                             LatentDistribution(torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)), 0)
    x = torch.rand(2, 3, 4, 32, 32) * 2 - 1  # video: measured per frame
    recon = x + 0.2 * torch.rand(2, 3, 4, 4, 4).repeat_interleave(8, -1).repeat_interleave(8, -2)
    post = LatentDistribution(torch.zeros(2, 4, 1, 4, 4), torch.zeros(2, 4, 1, 4, 4))
    total, terms = AutoencoderLoss(with_model_period(cfg, ViTok.from_preset("N-N/8")))(x, recon, post, 0)
    assert terms["lattice"] > 0
    assert total.item() == pytest.approx(terms["rec"] + 1e-3 * terms["kl"] + 2.0 * terms["lattice"], rel=1e-5)


@pytest.mark.parametrize("size", [32, 64, 48])
def test_discriminator_any_size(size: int) -> None:
    d = Discriminator(image_size=64, channels=8)
    logits = d(torch.randn(3, 3, size, size))
    assert logits.shape == (3,)
    logits.sum().backward()
    assert all(p.grad is not None for p in d.parameters())


def test_composite_loss_terms_and_video_frames() -> None:
    loss_fn = AutoencoderLoss(LossConfig(perceptual="lpips-alex", ssim_weight=0.5, gan_weight=0.1))
    disc = Discriminator(32, 8)
    x = torch.rand(2, 3, 4, 32, 32) * 2 - 1
    recon = (x + 0.1 * torch.randn_like(x)).requires_grad_()
    from vitok.models.bottleneck import LatentDistribution

    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(2, 4, 2, 4, 4, generator=g), torch.randn(2, 4, 2, 4, 4, generator=g) * 0.5
    post = LatentDistribution(mean, logvar)
    total, terms = loss_fn(x, recon, post, step=0, discriminator=disc)
    assert set(terms) == {"rec", "kl", "lpips", "ssim", "g_adv"}
    # each term against its formula, computed here: MSE, and the KL of N(mean, exp(logvar)) to N(0, 1)
    # per latent element (the mean over elements, which the KL weight 1e-3 multiplies)
    assert terms["rec"] == pytest.approx(((recon - x) ** 2).mean().item(), rel=1e-5)
    assert terms["kl"] == pytest.approx((0.5 * (mean**2 + logvar.exp() - 1 - logvar)).mean().item(), rel=1e-5)
    assert terms["kl"] > 0.1  # a term the total must weigh: a wrong KL weight shows below
    expected = terms["rec"] + 1e-3 * terms["kl"] + terms["lpips"] + 0.5 * (1 - terms["ssim"]) + 0.1 * terms["g_adv"]
    assert total.item() == pytest.approx(expected, rel=1e-5)
    total.backward()
    assert recon.grad.abs().sum() > 0


def test_perceptual_schedule_window_and_skipping() -> None:
    from vitok.losses.autoencoder import perceptual_window

    cfg = LossConfig(perceptual_weight=0.5, perceptual_start=10, perceptual_ramp=10, perceptual_every=2)
    assert [cfg.perceptual_scale(s) for s in (0, 9, 10, 11, 14, 19, 30)] == [0, 0, 0.05, 0, 0.25, 0, 0.5]
    windows = [perceptual_window((64, 80), 0.5, 8, step) for step in range(40)]
    assert windows == [perceptual_window((64, 80), 0.5, 8, step) for step in range(40)]  # resumable
    assert all(r.stop - r.start == 32 and c.stop - c.start == 40 for r, c in windows)
    assert len({r.start % 8 for r, _ in windows}) > 4  # sub-patch phases vary
    shifted = [perceptual_window((64, 64), 1.0, 8, step) for step in range(40)]
    assert all(r.stop - r.start == 56 and 0 <= r.start <= 8 for r, _ in shifted)
    with pytest.raises(ValueError, match="perceptual_crop"):
        LossConfig(perceptual_crop=0)
    loss_fn = AutoencoderLoss(LossConfig(perceptual="lpips-alex", perceptual_every=2, perceptual_crop=0.5))
    assert perceptual_window((40, 40), 0.25, 0, 0)[0].stop - perceptual_window((40, 40), 0.25, 0, 0)[0].start == 32
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    from vitok.models.bottleneck import LatentDistribution

    post = LatentDistribution(torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 8, 8))
    assert "lpips" not in loss_fn(x, x * 0.9, post, step=1)[1]
    total, terms = loss_fn(x, x * 0.9, post, step=2)
    assert terms["lpips"] > 0 and total.item() == pytest.approx(terms["rec"] + 1e-3 * terms["kl"] + terms["lpips"],
                                                               rel=1e-5)
