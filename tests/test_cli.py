"""Every `vitok` subcommand, end to end through `main()` and once through the console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from vitok import ViTok
from vitok.cli import build_parser, main


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return list(action.choices)


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: vitok " + command in capsys.readouterr().out


def test_presets_table(capsys) -> None:
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "S-B/16" in out and "S-B/4x16" in out and "128.8" in out and "34.7" in out
    assert "DiT-XL" in out and "674.7" in out  # the DiT sizes too (DiT-XL/2: 675M parameters, DiT paper)
    # the shipped tokenizers, with the default named (vitok-tiny-conv: 14.5M params, 24.4 GMACs per 16-frame clip)
    assert "the default: vitok-tiny-conv" in out
    row = next(line for line in out.splitlines() if line.lstrip().startswith("vitok-tiny-conv (Ti-XS/4x8)"))
    assert row.split()[-6:-4] == ["14.5", "24.4"]


def test_flops(capsys) -> None:
    assert main(["flops", "S-B/16", "--size", "512", "--measure"]) == 0
    out = capsys.readouterr().out
    assert "160.7" in out and "16384" in out and "FlopCounterMode: 160.70" in out
    assert main(["flops", "S-B/4x8", "--frames", "8", "--size", "64x128", "--latent-channels", "8"]) == 0
    assert "8x64x128" in capsys.readouterr().out
    # a video tokenizer counts its 16-frame clip by default; --kind image counts one image (the README's 3.99)
    assert main(["flops", "--model", "vitok-tiny-conv", "--size", "128"]) == 0
    assert "16x128x128" in capsys.readouterr().out
    assert main(["flops", "--model", "vitok-tiny-conv", "--size", "128", "--kind", "image"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert " 3.99 " in row and " 128x128 " in row and " 4096 " in row
    assert main(["flops", "--model", "vitok-tiny-conv", "--kind", "image", "--frames", "4"]) == 2
    assert "--kind image counts one frame" in capsys.readouterr().err
    assert main(["flops", "--model", "S-B/16", "--kind", "video"]) == 2
    assert "is an image tokenizer" in capsys.readouterr().err
    # the tail's shape on a linear-head model is never silently ignored; on a conv-tail model it is counted
    assert main(["flops", "--model", "Ti-XS/8", "--head-channels", "16"]) == 2
    assert "add --head conv" in capsys.readouterr().err
    assert main(["flops", "--model", "Ti-XS/8", "--head", "conv", "--head-channels", "16", "--size", "128"]) == 0
    assert " 3.91 " in capsys.readouterr().out.splitlines()[1]  # docs/quality's MACs table
    assert main(["flops", "--model", "vitok-tiny-conv", "--head-blocks", "0", "--kind", "image"]) == 0


def test_flops_bad_name(capsys) -> None:
    assert main(["flops", "--model", "Z-Z/3"]) == 2
    assert "is neither a saved model directory" in capsys.readouterr().err
    assert main(["flops", "--model", "vitok-tny"]) == 2
    assert "did you mean 'vitok-tiny'?" in capsys.readouterr().err
    assert main(["flops", "S-B/16", "--model", "Ti-Ti/8"]) == 2  # the old positional and --model disagree
    assert "give the model once" in capsys.readouterr().err


def test_reconstruct_images_and_video_with_saved_model(media_dir, tmp_path, capsys) -> None:
    ViTok.from_preset("N-N/8").save_pretrained(tmp_path / "model")
    out = tmp_path / "out"
    assert main(["reconstruct", str(media_dir), "--model", str(tmp_path / "model"), "--out", str(out),
                 "--frames", "4"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a_compare.png", "a_recon.png", "b_compare.png", "b_recon.png",
                     "clip_compare.gif", "clip_compare.mp4", "clip_recon.mp4", "overview.png", "scores.json"]
    text = capsys.readouterr().out
    assert "mean PSNR" in text and "SSIM" in text and "LPIPS" in text and "over 3 items" in text
    report = json.loads((out / "scores.json").read_text())  # the printed scores, machine-readable
    assert [item["output"] for item in report["items"]] == ["a", "b", "clip"] and report["skipped"] == {}
    assert all({"file", "psnr", "ssim", "lpips"} <= set(item) for item in report["items"])
    assert f"mean PSNR {report['mean']['psnr']:.2f} dB" in text
    assert report["mean"]["psnr"] == pytest.approx(sum(i["psnr"] for i in report["items"]) / 3)


def test_reconstruct_real_files_with_preset_and_resize(shared_data, tmp_path, capsys) -> None:
    image = shared_data / "images" / "val" / "opencv-baboon.jpg"
    video = shared_data / "videos" / "val" / "carphone.mp4"
    assert main(["reconstruct", str(image), str(video), "--model", "N-N/2x8", "--size", "64",
                 "--frames", "4", "--precision", "bf16", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "randomly initialised" in captured.err
    assert "(64, 64)" in captured.out and "(4, 64, 64)" in captured.out


def test_reconstruct_bad_model(media_dir, capsys) -> None:
    assert main(["reconstruct", str(media_dir), "--model", "no/such/dir"]) == 2
    assert "is neither a saved model directory" in capsys.readouterr().err


def test_console_script_and_module() -> None:
    exe = shutil.which("vitok")
    commands = [[sys.executable, "-m", "vitok", "--version"]] + ([[exe, "--version"]] if exe else [])
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        assert result.stdout.startswith("vitok ")


def test_demo_runs_on_shipped_samples(tmp_path, capsys) -> None:
    assert main(["demo", "--model", "N-N/8", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "N-N/8" in out and "over 4 samples" in out
    assert (tmp_path / "baboon_compare.png").is_file() and (tmp_path / "carphone_recon.mp4").is_file()


def test_demo_defaults_to_the_shipped_tokenizer(tmp_path, capsys, monkeypatch) -> None:
    from vitok import cli

    assert cli.DEMO_MODEL == "vitok-tiny-conv"
    monkeypatch.chdir(tmp_path)  # the default --out is out/demo under the working directory
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "Ti-XS/4x8" in out and "over 4 samples" in out
    mean_psnr = float(out.split("mean PSNR ")[1].split(" dB")[0])
    assert mean_psnr > 19.8  # 20.37 dB measured with the shipped weights (vitok-tiny: 19.63)
    written = {p.name for p in (tmp_path / "out" / "demo").iterdir()}
    assert {"fruits_compare.png", "carphone_compare.mp4", "carphone_compare.gif"} <= written


def test_export_packages_a_model_with_stats_and_card(media_dir, tmp_path, capsys) -> None:
    import json

    import torch

    model = ViTok.from_preset("N-N/8", latent_channels=4)
    model.save_pretrained(tmp_path / "trained")
    (tmp_path / "card.json").write_text(json.dumps({"Training": "3 steps on nothing", "Metrics": "none yet"}))
    assert main(["export", "--model", str(tmp_path / "trained"), "--out", str(tmp_path / "shipped"), "--name", "tiny",
                 str(media_dir), "--size", "32", "--card", str(tmp_path / "card.json")]) == 0
    assert "tiny:" in capsys.readouterr().out
    shipped = ViTok.from_pretrained(tmp_path / "shipped")
    # the statistics are those of the posterior means of the images' 32 px centre crops, per channel
    from vitok import io
    from vitok.data import EvalTransform, list_files

    crops = torch.stack([EvalTransform((32, 32))(io.load_image(f)) for f in list_files([media_dir], "image")])
    with torch.no_grad():
        z = model.encode(crops).double()
    torch.testing.assert_close(torch.tensor(shipped.config.latent_mean, dtype=torch.float64), z.mean((0, 2, 3)),
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.tensor(shipped.config.latent_std, dtype=torch.float64),
                               z.std((0, 2, 3), correction=0), rtol=1e-4, atol=1e-5)
    card = (tmp_path / "shipped" / "README.md").read_text()
    assert "# tiny" in card and "## Training" in card and "| 1x64x64 | 64 | 256 |" in card
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    z = shipped.encode(x, normalize=True)
    torch.testing.assert_close(shipped.denormalize_latent(z), shipped.encode(x))
    bf16 = model.to(torch.bfloat16).float()  # the shipped weights are the bf16-rounded ones
    assert torch.equal(shipped.state_dict()["decoder_out.weight"], bf16.state_dict()["decoder_out.weight"])
    # exported again with no images and a new card: statistics and bf16 weights as they were, card rewritten
    (tmp_path / "card.json").write_text(json.dumps({"Comparison": "a new row"}))
    assert main(["export", "--model", str(tmp_path / "shipped"), "--out", str(tmp_path / "again"), "--name", "tiny",
                 "--card", str(tmp_path / "card.json")]) == 0
    from safetensors.torch import load_file

    before, after = (load_file(tmp_path / d / "model.safetensors") for d in ("shipped", "again"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert ViTok.from_pretrained(tmp_path / "again").config.latent_std == shipped.config.latent_std
    assert "## Comparison\n\na new row" in (tmp_path / "again" / "README.md").read_text()
    # no --card: the packaged model's own sections go with it (e.g. into the ONNX or diffusers folder)
    assert main(["export", "--model", str(tmp_path / "again"), "--out", str(tmp_path / "third"), "--name", "tiny"]) == 0
    assert (tmp_path / "third" / "README.md").read_text() == (tmp_path / "again" / "README.md").read_text()


def test_export_old_spellings_and_the_models_own_crop(media_dir, tmp_path, capsys, monkeypatch) -> None:
    import torch

    from vitok import export

    ViTok.from_preset("N-N/8", latent_channels=4, image_size=(32, 48)).save_pretrained(tmp_path / "trained")
    crops = []
    measure = export.measure_latent_stats
    monkeypatch.setattr(export, "measure_latent_stats", lambda model, data, size: crops.append(size) or
                        measure(model, data, size, progress=False))
    assert main(["export", "--model", str(tmp_path / "trained"), "--out", str(tmp_path / "shipped"), "--name", "tiny",
                 "--stats-data", str(media_dir), "--dtype", "fp32", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "--stats-data is deprecated" in err and "--dtype is deprecated" in err
    assert crops == [(32, 48)]  # the model's own (H, W), not a square of H
    assert ViTok.from_pretrained(tmp_path / "shipped").config.latent_std is not None
    from safetensors import safe_open

    with safe_open(str(tmp_path / "shipped" / "model.safetensors"), "pt") as stored:
        assert stored.get_tensor("decoder_out.weight").dtype == torch.float32  # --dtype fp32 was honoured


@pytest.mark.parametrize("card", ['[1, 2]', '"text"', '{"Data": {"x": 1}}', '{"Data": '])
def test_export_refuses_a_bad_card_before_writing_anything(card: str, tmp_path, capsys) -> None:
    ViTok.from_preset("N-N/8", latent_channels=4).save_pretrained(tmp_path / "trained")
    (tmp_path / "card.json").write_text(card)
    assert main(["export", "--model", str(tmp_path / "trained"), "--out", str(tmp_path / "shipped"), "--name", "t",
                 "--card", str(tmp_path / "card.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "card.json" in err[0] and not (tmp_path / "shipped").exists()


def test_export_refuses_to_overwrite_its_model_and_an_empty_name(tmp_path, capsys) -> None:
    ViTok.from_preset("N-N/8", latent_channels=4).save_pretrained(tmp_path / "trained")
    before = (tmp_path / "trained" / "model.safetensors").read_bytes()
    assert main(["export", "--model", str(tmp_path / "trained"), "--out", str(tmp_path / "trained" / "."),
                 "--name", "t"]) == 2
    assert "is the --model folder" in capsys.readouterr().err
    assert (tmp_path / "trained" / "model.safetensors").read_bytes() == before
    assert main(["export", "--model", str(tmp_path / "trained"), "--out", str(tmp_path / "o"), "--name", " "]) == 2
    assert "--name must not be empty" in capsys.readouterr().err


def test_export_reads_a_folder_holding_both_layouts_by_its_config(tmp_path, capsys) -> None:
    model = ViTok.from_preset("N-N/8", latent_channels=4)
    model.save_pretrained(tmp_path / "trained")
    assert main(["export", "--model", str(tmp_path / "trained"), "--out", str(tmp_path / "both"), "--name", "t",
                 "--format", "diffusers", "--precision", "fp32"]) == 0
    # a vitok-layout export over the diffusers folder leaves the diffusers weights beside the vitok ones
    assert main(["export", "--model", str(tmp_path / "trained"), "--out", str(tmp_path / "both"), "--name", "t",
                 "--precision", "fp32"]) == 0
    assert (tmp_path / "both" / "diffusion_pytorch_model.safetensors").is_file()
    assert main(["export", "--model", str(tmp_path / "both"), "--out", str(tmp_path / "again"), "--name", "t",
                 "--precision", "fp32"]) == 0
    again = ViTok.from_pretrained(tmp_path / "again")
    assert all(torch.equal(again.state_dict()[k], v) for k, v in model.state_dict().items())


def test_reconstruct_processes_the_whole_video_in_chunks_at_its_frame_rate(tmp_path, capsys) -> None:
    import torch

    from tests.conftest import smooth_image
    from vitok import io

    frames = torch.stack([smooth_image(32, 48, 3).roll(i, dims=-1) for i in range(40)], dim=1)
    io.save_video(frames, tmp_path / "long.mp4", fps=7)
    ViTok.from_preset("N-N/2x8").save_pretrained(tmp_path / "model")  # 4-frame clips: 40 frames are chunked
    assert main(["reconstruct", str(tmp_path / "long.mp4"), "--model", str(tmp_path / "model"),
                 "--out", str(tmp_path / "out")]) == 0
    assert "(40, 32, 48)" in capsys.readouterr().out
    count, fps = io.video_info(tmp_path / "out" / "long_recon.mp4")
    assert count == 40 and fps == pytest.approx(7, abs=0.01)
    assert main(["reconstruct", str(tmp_path / "long.mp4"), "--model", str(tmp_path / "model"), "--stride", "2",
                 "--frames", "8", "--out", str(tmp_path / "out2")]) == 0
    count, fps = io.video_info(tmp_path / "out2" / "long_recon.mp4")
    assert count == 8 and fps == pytest.approx(3.5, abs=0.01)


def test_reconstruct_an_empty_folder_is_an_error(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["reconstruct", str(tmp_path / "empty")]) == 2
    assert "no image or video files" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["reconstruct", "x.png", "--stride", "0"], ["reconstruct", "x.png", "--frames", "-1"],
                                  ["flops", "N-N/8", "--frames", "0"], ["flops", "N-N/8", "--head-blocks", "-1"],
                                  ["flops", "N-N/8", "--latent-channels", "abc"],
                                  ["export", "--model", "m", "--out", "o", "--name", "n", "--size", "0"]])
def test_model_command_numbers_are_range_checked(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and "must be" in capsys.readouterr().err
