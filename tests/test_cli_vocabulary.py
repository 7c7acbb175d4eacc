"""The command line's one vocabulary, for every subcommand: shared flags parse the same way, typos
get suggestions, bad devices / paths / empty folders are one-line errors (exit 2), unreadable
files are skipped and named, outputs never collide, config paths resolve against the config's
folder, a failed start leaves nothing behind, and the README's commands parse."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import torch

from vitok import io
from vitok.cli import build_parser, main, parse_args, subcommands
from vitok.text import plural

from .conftest import REPO, smooth_image

# the smallest command line each subcommand parses (a new subcommand must be added here)
MINIMAL = {
    "presets": [], "flops": [], "reconstruct": ["x.jpg"], "demo": [], "weights": ["list"], "train": ["c.yaml"],
    "eval": ["photos"], "bench": [], "data": ["build", "out"], "sweep": ["s.yaml"],
    "export": ["--model", "m", "--out", "o", "--name", "n"], "cache-latents": ["photos"],
    "train-dit": ["c.yaml"], "sample": ["--dit", "d"], "eval-gen": ["--dit", "d", "--ref-stats", "r.npz"],
}
# flag -> (text given, value parsed) for the options every subcommand that has them shares
SHARED = {
    "--model": ("my-model", "my-model"), "--device": ("cpu", "cpu"), "--batch-size": ("3", 3),
    "--precision": ("bf16", "bf16"), "--kind": ("image", "image"), "--out": ("o2", Path("o2")),
    "--size": ("64x32", (64, 32)), "--baseline": ("sd-vae", "sd-vae"),
}
NEEDS_MODEL = {"flops", "reconstruct", "demo", "eval", "bench", "export", "cache-latents", "sample", "eval-gen"}
COMMANDS = subcommands(build_parser())


def options(command: str) -> set[str]:
    return {o for a in COMMANDS[command]._actions for o in a.option_strings if a.help != "==SUPPRESS=="}


def parse(argv: list[str]):
    return parse_args(build_parser(), argv)


def test_every_subcommand_has_a_minimal_command_line() -> None:
    assert set(MINIMAL) == set(COMMANDS)
    for command, argv in MINIMAL.items():
        assert parse([command, *argv]).command == command


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_shared_flags_parse_the_same_way_everywhere(command: str) -> None:
    present = options(command) & set(SHARED)
    if command in NEEDS_MODEL:
        assert "--model" in present
    for flag in present:
        text, value = SHARED[flag]
        rest = MINIMAL[command]
        if flag in rest:  # export names --model / --out in its minimal line: drop them there
            rest = rest[:rest.index(flag)] + rest[rest.index(flag) + 2:]
        for argv in ([command, flag, text, *rest], [command, *rest, flag, text]):
            parsed = getattr(parse(argv), flag.lstrip("-").replace("-", "_"))
            many = isinstance(parsed, list) and not isinstance(value, list)  # bench: lists of sizes / precisions
            assert (parsed == [value] if many else parsed == value), (command, flag, parsed)
    hidden = {"--bf16", "--data", "--tokenizer", "--batch", "--sizes", "--vs", "--precisions", "--stats-data",
              "--dtype", "--stats-size"}
    assert not options(command) & hidden  # old spellings parse but are not offered


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_mistyped_flag_gets_a_suggestion_and_the_subcommands_usage(command: str, capsys) -> None:
    flag = sorted(o for o in options(command) if (o.startswith("--") and o != "--help") or o == "--help")[0]
    typo = flag[:-1] if len(flag) > 4 else flag + "x"
    with pytest.raises(SystemExit) as caught:
        main([command, *MINIMAL[command], typo, "1"])
    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert f"usage: vitok {command}" in err and f"did you mean {flag!r}" in err and "Traceback" not in err


def test_mistyped_subcommand_abbreviations_and_bare_vitok(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["recontruct", "x.jpg"])
    assert caught.value.code == 2 and "did you mean 'reconstruct'?" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:  # abbreviations are off: --si is not --size
        main(["reconstruct", "x.jpg", "--si", "64"])
    assert caught.value.code == 2 and "did you mean '--size'?" in capsys.readouterr().err
    assert main([]) == 0 and "usage: vitok" in capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(c for c in COMMANDS if "--device" in options(c)))
@pytest.mark.parametrize("device", ["gpu", "cuda:0" if not torch.cuda.is_available() else "cuda:99"])
def test_a_bad_device_is_a_one_line_error_before_any_work(command: str, device: str, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main([command, *MINIMAL[command], "--device", device])
    err = capsys.readouterr().err.strip().splitlines()
    assert caught.value.code == 2 and "Traceback" not in "\n".join(err)
    assert err[-1].startswith(f"vitok {command}: error: argument --device:")
    assert "use --device cpu" in err[-1] or "must be auto, cpu" in err[-1] or "GPU(s)" in err[-1]


@pytest.mark.parametrize("argv", [
    ["reconstruct", "{missing}"], ["eval", "{missing}"], ["cache-latents", "{missing}"], ["train", "{missing}"],
    ["train-dit", "{missing}"], ["sweep", "{missing}"], ["export", "--model", "{missing}", "--out", "o", "--name", "n"],
    ["flops", "--model", "{missing}"], ["demo", "--model", "{missing}"],
])
def test_a_bad_path_is_a_one_line_error(argv: list[str], tmp_path, capsys) -> None:
    missing = str(tmp_path / "no" / "such-thing.yaml")
    assert main([a.replace("{missing}", missing) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"vitok {argv[0]}: error:") and "such-thing" in err[0]


@pytest.mark.parametrize("command", ["reconstruct", "eval", "cache-latents"])
def test_an_empty_input_folder_is_an_error(command: str, tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main([command, str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no image or video files in" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # checked before anything is written


@pytest.mark.parametrize("command", ["reconstruct", "eval", "cache-latents"])
def test_unreadable_files_are_skipped_counted_and_named(command: str, tiny_model, folder_with_a_broken_file,
                                                        tmp_path, capsys) -> None:
    extra = {"eval": ["--size", "32", "--metrics", "psnr"], "cache-latents": ["--size", "32"]}.get(command, [])
    out = tmp_path / "out"
    assert main([command, str(folder_with_a_broken_file), "--model", tiny_model, "--out", str(out), *extra]) == 0
    err = capsys.readouterr().err
    assert "broken.jpg" in err and re.search(r"1 (unreadable )?file", err)
    if command == "eval":
        assert json.loads((out / "results.json").read_text())["samples"] == 2
    if command == "reconstruct":
        report = json.loads((out / "scores.json").read_text())
        assert len(report["items"]) == 2 and list(report["skipped"]) == [str(folder_with_a_broken_file / "cats" /
                                                                              "broken.jpg")]
    if command == "cache-latents":
        stats = json.loads((out / "stats.json").read_text())
        assert stats["samples"] == 2 and list(stats["skipped_files"]) == [str(folder_with_a_broken_file / "cats" /
                                                                              "broken.jpg")]


def test_reconstruct_outputs_never_collide_and_carry_labels(tiny_model, tmp_path, capsys) -> None:
    for folder, seed in (("a", 1), ("b", 2)):
        io.save_image(smooth_image(32, 32, seed), tmp_path / "in" / folder / "x.png")
    io.save_image(smooth_image(32, 32, 3), tmp_path / "in" / "a" / "x.jpg")
    out = tmp_path / "out"
    assert main(["reconstruct", str(tmp_path / "in"), "--model", tiny_model, "--out", str(out)]) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["a/x-jpg_compare.png", "a/x-jpg_recon.png", "a/x-png_compare.png", "a/x-png_recon.png",
                       "b/x_compare.png", "b/x_recon.png", "overview.png"]
    compare = io.load_image(out / "b" / "x_compare.png")
    assert compare.shape == (3, 32 + 14, 64)  # a caption bar above original | reconstruction
    assert (compare[:, :14] > -0.9).any()  # the caption has text
    assert "over 3 items" in capsys.readouterr().out


def test_deprecated_spellings_still_work_with_a_warning(capsys) -> None:
    args = parse(["reconstruct", "x.jpg", "--bf16"])
    assert args.precision == "bf16" and "use --precision bf16" in capsys.readouterr().err
    args = parse(["eval", "more", "--data", "photos"])
    assert [str(p) for p in args.inputs] == ["photos", "more"] and "use positional paths" in capsys.readouterr().err
    args = parse(["bench", "--sizes", "32", "--vs", "sd-vae", "--batch", "2", "--precisions", "fp32"])
    assert (args.size, args.baseline, args.batch_size, args.precision) == ([(32, 32)], "sd-vae", 2, ["fp32"])
    args = parse(["sample", "--dit", "d", "--tokenizer", "t"])
    assert args.model == "t" and "use --model" in capsys.readouterr().err
    # where a subcommand never had the old spelling, the error names the one every subcommand takes
    for argv, replacement in ((["eval", "x", "--tokenizer", "t"], "--model"), (["eval", "x", "--vs", "sd-vae"],
                                                                              "--baseline")):
        with pytest.raises(SystemExit) as caught:
            parse(argv)
        err = capsys.readouterr().err
        assert caught.value.code == 2 and f"{argv[2]} is an old spelling: use {replacement}" in err
    with pytest.raises(SystemExit):  # never "did you mean '--help'"
        parse(["presets", "--model", "x"])
    assert "--help'?" not in capsys.readouterr().err


def test_options_may_follow_positionals(tmp_path, capsys) -> None:
    config = REPO / "configs" / "cpu" / "stage1_tiny.yaml"
    assert main(["train", str(config), "--print-config", "run.steps=5"]) == 0
    assert "steps: 5" in capsys.readouterr().out


def test_config_data_paths_resolve_against_the_config_folder(tmp_path, monkeypatch) -> None:
    from vitok.sweep import load_spec
    from vitok.train.config import load_config

    (tmp_path / "project" / "configs").mkdir(parents=True)
    config = tmp_path / "project" / "configs" / "run.yaml"
    config.write_text("data: {train: [../photos, /abs/photos, 'pipe:cat x.tar'], image_size: 32}\n"
                      "model: {init_from: runs/stage1/model}\nrun: {out_dir: runs/x}\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = load_config(config, ["data.motion=[more]"])
    assert Path(cfg.data.train[0]).resolve() == (tmp_path / "project" / "photos").resolve()
    assert cfg.data.train[1:] == ["/abs/photos", "pipe:cat x.tar"]
    assert cfg.data.motion == ["more"]  # a command-line override: relative to where it was typed
    assert cfg.run.out_dir == "runs/x" and cfg.model.init_from == "runs/stage1/model"  # run artifacts: cwd
    spec = tmp_path / "project" / "configs" / "sweep.yaml"
    spec.write_text("base: run.yaml\nout_dir: sweeps/a\ngrid: {run.steps: [1]}\neval: {data: [../val]}\n")
    loaded = load_spec(spec)
    assert Path(loaded.base).resolve() == config.resolve() and loaded.out_dir == "sweeps/a"
    assert Path(loaded.eval.data[0]).resolve() == (tmp_path / "project" / "val").resolve()


def test_the_shipped_configs_find_their_data_from_any_folder(tmp_path, monkeypatch, shared_data) -> None:
    from vitok.train.config import load_config

    monkeypatch.chdir(tmp_path)
    for name in ("cpu/stage1_tiny.yaml", "vitok-tiny/stage1.yaml"):
        cfg = load_config(REPO / "configs" / name)
        assert Path(cfg.data.train[0]).resolve() == (shared_data / "images" / "train").resolve()


@pytest.mark.parametrize("command", ["train", "train-dit"])
def test_a_failed_start_leaves_no_run_folder(command: str, tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    run_dir = tmp_path / "runs" / "new"
    if command == "train":
        config = tmp_path / "c.yaml"
        config.write_text(f"data: {{train: [{tmp_path / 'empty'}], image_size: 32}}\nmodel: {{preset: N-N/8}}\n"
                          f"loss: {{perceptual: none}}\nrun: {{out_dir: {run_dir}, steps: 2, precision: fp32}}\n")
        argv = ["train", str(config)]
    else:
        argv = ["train-dit", str(REPO / "configs" / "dit" / "cpu_tiny.yaml"), f"latents={tmp_path / 'empty'}",
                f"run.out_dir={run_dir}"]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"vitok {command}: error:")
    assert not run_dir.exists()


def test_eval_refuses_a_mixed_folder_and_checks_metrics_before_loading(media_dir, tmp_path, capsys) -> None:
    assert main(["eval", str(media_dir), "--out", str(tmp_path / "o")]) == 2
    assert "holds 2 images and 1 video:" in capsys.readouterr().err
    # rfvd on 8-frame clips fails before the (missing) model is even looked at
    assert main(["eval", str(media_dir), "--kind", "video", "--metrics", "psnr,rfvd", "--frames", "8",
                 "--model", str(tmp_path / "no-model")]) == 2
    assert "rfvd needs videos of at least 9 frames" in capsys.readouterr().err
    assert main(["eval", str(media_dir), "--metrics", "psnr,lpips_vgg,lpipz"]) == 2
    assert "did you mean 'lpips'" in capsys.readouterr().err


def test_results_name_the_model_as_the_user_did(shared_data, tmp_path, capsys) -> None:
    from vitok.presets import DEFAULT_MODEL

    image = shared_data / "images" / "val" / "opencv-baboon.jpg"
    assert main(["eval", str(image), "--size", "32", "--metrics", "psnr", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["model"].startswith(f"{DEFAULT_MODEL} (") and results["architecture"] in results["model"]
    assert f"{DEFAULT_MODEL} (" in capsys.readouterr().out


def test_metric_and_weight_names_are_one_vocabulary() -> None:
    from vitok.metrics.streaming import canonical_metric
    from vitok.weights import canonical_weights

    assert canonical_metric("LPIPS_VGG") == "lpips-vgg" and canonical_metric("lpips-alex") == "lpips"
    assert canonical_weights("lpips") == "lpips-alex" and canonical_weights("lpips_vgg") == "lpips-vgg"
    assert canonical_weights("rfid") == "inception-fid" and canonical_weights("rfvd") == "i3d-kinetics-400"
    with pytest.raises(ValueError, match="did you mean 'lpips"):
        canonical_weights("lpip")


def test_weights_list_is_aligned(capsys) -> None:
    assert main(["weights", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()[:5]
    starts = {line.index(line.split()[1], len(line.split()[0])) for line in lines}
    assert len(starts) == 1  # the second column starts at the same place on every line


def test_plural() -> None:
    assert plural(1, "item") == "1 item" and plural(3, "image") == "3 images" and plural(0, "video") == "0 videos"


def readme_commands() -> list[list[str]]:
    """Every `vitok ...` (and `torchrun ... -m vitok ...`) command in the README's and docs' bash blocks."""
    commands = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*/README.md"))]:
        fence = None
        for line in path.read_text().replace("\\\n", " ").splitlines():
            if line.startswith("```"):
                fence = None if fence is not None else line[3:].strip()
                continue
            if fence not in ("bash", "sh"):
                continue
            for command in line.split(" #")[0].split("&&"):
                command = command.strip()
                if command.startswith("vitok ") or " -m vitok " in command:
                    words = shlex.split(command)
                    commands.append(words[words.index("vitok") + 1:])
    return commands


def test_the_readme_commands_parse_without_deprecated_spellings(capsys) -> None:
    commands = readme_commands()
    assert len(commands) >= 15 and {c[0] for c in commands} >= {"reconstruct", "eval", "train", "sample"}
    for argv in commands:
        parse(argv)
        assert "deprecated" not in capsys.readouterr().err, argv


def test_the_readme_quick_commands_run(capsys) -> None:
    assert main(["presets"]) == 0 and "S-B/16" in capsys.readouterr().out
    assert main(["flops", "--model", "S-B/16", "--size", "512", "--measure"]) == 0
    assert "160.7" in capsys.readouterr().out


def test_double_dash_ends_options_and_sizes_are_capped(tiny_model, tmp_path, capsys) -> None:
    io.save_image(smooth_image(16, 16, 1), tmp_path / "-dash.png")
    out = tmp_path / "out"
    assert main(["reconstruct", "--model", tiny_model, "--out", str(out), "--", str(tmp_path / "-dash.png")]) == 0
    assert (out / "-dash_recon.png").is_file()
    with pytest.raises(SystemExit) as caught:
        main(["reconstruct", "x.jpg", "--size", "99999"])
    assert caught.value.code == 2 and "at most 16384" in capsys.readouterr().err


def test_typos_of_required_and_top_level_flags_are_named(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--modl", "m", "--out", "o", "--name", "n"])
    assert "unrecognized arguments: --modl; did you mean '--model'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--hlep"])
    assert "did you mean '--help'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train"])
    err = capsys.readouterr().err
    assert "required: config" in err and "overrides" not in err.splitlines()[-1]
    with pytest.raises(SystemExit):
        main(["reconstruct", "x.jpg", "--device", "cdua"])
    assert "did you mean 'cuda'?" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(c for c in COMMANDS if "--out" in options(c)))
def test_an_empty_path_is_an_error_not_the_current_folder(command: str, capsys) -> None:
    rest = MINIMAL[command]
    if "--out" in rest:
        rest = rest[:rest.index("--out")] + rest[rest.index("--out") + 2:]
    with pytest.raises(SystemExit) as caught:
        main([command, *rest, "--out", ""])
    assert caught.value.code == 2 and "argument --out: must be a path, got an empty string" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["reconstruct", ""])
    assert caught.value.code == 2 and "must be a path" in capsys.readouterr().err
