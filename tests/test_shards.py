"""WebDataset shards: sources (globs, brace ranges, pipes, odd names), members grouped on their
last extension, exact resume with several loader workers, video clips, unreadable samples."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import smooth_image
from vitok import io
from vitok.data import DataConfig, ShardDataset, TrainTransform, build_train_loader, write_shards


def test_shards_train_loader(tmp_path) -> None:
    files = []
    for i in range(6):
        io.save_image(smooth_image(40, 40, i), tmp_path / "src" / f"{i}.png")
        files.append(tmp_path / "src" / f"{i}.png")
    (tmp_path / "src" / "bad.png").write_bytes(b"not a png")
    shards = write_shards([*files, tmp_path / "src" / "bad.png"], str(tmp_path / "shards" / "data-%03d.tar"),
                          per_shard=4)
    assert len(shards) == 2
    ds = ShardDataset([str(tmp_path / "shards" / "*.tar")], "image", TrainTransform((16, 16)), rank=1, world=2)
    items = [item for _, item in zip(range(4), ds)]
    assert all(item["x"].shape == (3, 16, 16) for item in items)
    assert any(item["skipped"] for item in items)  # the bad sample in shard 1 was reported
    cfg = DataConfig(train=[str(tmp_path / "shards" / "*.tar")], image_size=16)
    batch = next(iter(build_train_loader(cfg, global_batch=2)))
    assert batch["x"].shape == (2, 3, 16, 16)


def test_shard_resume_with_several_workers_sees_the_uninterrupted_batches(tmp_path) -> None:
    files = []
    for i in range(12):
        io.save_image(smooth_image(12, 12, i), tmp_path / "src" / f"{i:02d}.png")
        files.append(tmp_path / "src" / f"{i:02d}.png")
    write_shards(files, str(tmp_path / "shards" / "s-%02d.tar"), per_shard=12)
    cfg = DataConfig(train=[str(tmp_path / "shards" / "*.tar")], image_size=8, workers=2)

    def steps(start: int, count: int) -> list[list[int]]:
        loader = iter(build_train_loader(cfg, global_batch=2, seed=0, start_step=start))
        return [next(loader)["seed"].tolist() for _ in range(count)]

    uninterrupted = steps(0, 5)
    assert sorted(s for step in uninterrupted for s in step) == sorted(set(s for step in uninterrupted for s in step))
    assert steps(1, 4) == uninterrupted[1:]  # before: a sample repeated, another lost, the order changed
    assert steps(3, 2) == uninterrupted[3:]


def test_shard_sources_globs_brace_ranges_pipes_and_literal_odd_names(tmp_path) -> None:
    from vitok.data.shards import expand_shards, is_shard_spec

    files = []
    for i in range(3):
        io.save_image(smooth_image(12, 12, i), tmp_path / "src" / f"{i}.png")
        files.append(tmp_path / "src" / f"{i}.png")
    shards = write_shards(files, str(tmp_path / "s-%03d.tar"), per_shard=1)
    odd = tmp_path / "odd[1].tar"  # a literal name that is also a glob pattern
    odd.write_bytes(Path(shards[0]).read_bytes())
    assert expand_shards([str(tmp_path / "s-{000..002}.tar")]) == shards
    assert expand_shards([str(tmp_path / "s-*.tar"), shards[1]]) == shards  # each once
    assert expand_shards([str(odd)]) == [str(odd)]
    pipe = f"pipe:cat {shards[2]}"
    assert expand_shards([pipe]) == [pipe] and is_shard_spec([pipe, str(tmp_path / "s-{000..001}.tar")])
    with pytest.raises(ValueError, match=r"no tar shards match .*s-003\.tar \(from .*s-\{000\.\.003\}\.tar\)"):
        expand_shards([str(tmp_path / "s-{000..003}.tar")])  # one missing in a range is named, not ignored
    item = next(iter(ShardDataset([pipe], "image", TrainTransform((8, 8)))))  # read through the command
    assert item["x"].shape == (3, 8, 8) and item["path"].startswith(pipe)
    cfg = DataConfig(train=[str(tmp_path / "s-*.tar")], image_size=8, motion=[str(tmp_path / "src")], kind="video")
    with pytest.raises(ValueError, match="data.motion and data.train_repeat mix folder sources"):
        build_train_loader(cfg, global_batch=2)


def test_shard_videos_give_random_clips_at_the_frame_stride(tmp_path) -> None:
    from vitok.data.datasets import read_clip

    levels = [-0.9 + 0.15 * i for i in range(12)]  # frame i is flat at levels[i]: its index survives coding
    io.save_video(torch.stack([torch.full((3, 16, 16), v) for v in levels], 1), tmp_path / "src" / "v.mp4")
    shard = write_shards([tmp_path / "src" / "v.mp4"], str(tmp_path / "v-%02d.tar"))[0]

    def frames(clip: torch.Tensor) -> list[int]:
        return [min(range(12), key=lambda i: abs(levels[i] - float(f.mean()))) for f in clip.unbind(1)]

    data = ShardDataset([shard], "video", TrainTransform((16, 16)), num_frames=3, frame_stride=2)
    starts = set()
    for _, item in zip(range(8), data):
        seen = frames(item["x"])
        assert seen == [seen[0], seen[0] + 2, seen[0] + 4]  # every 2nd frame
        starts.add(seen[0])
    assert len(starts) > 1  # a random start per sample, not always frame 0
    assert frames(read_clip(tmp_path / "src" / "v.mp4", 3, frame_stride=6)) == [0, 5, 10]  # stride lowered to fit


def _tar(path, members: dict[str, bytes]) -> str:
    import io as pyio
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, pyio.BytesIO(data))
    return str(path)


def _png_bytes(seed: int) -> bytes:
    import io as pyio

    from PIL import Image

    buffer = pyio.BytesIO()
    Image.fromarray(io.tensor_to_uint8(smooth_image(20, 20, seed))).save(buffer, "PNG")
    return buffer.getvalue()


def test_shard_members_are_matched_on_their_last_extension(tmp_path) -> None:
    from vitok.data.shards import split_last_extension

    assert split_last_extension("a/scan.2023.01.jpg") == ("a/scan.2023.01", "jpg")
    assert split_last_extension("noext") == (None, None)
    shard = _tar(tmp_path / "dots.tar", {"scan.2023.01.png": _png_bytes(0), "scan.2023.02.png": _png_bytes(1),
                                         "photo.v2.PNG": _png_bytes(2)})
    items = [item for _, item in zip(range(3), ShardDataset([shard], "image", TrainTransform((16, 16))))]
    assert sorted(item["path"].rsplit(":", 1)[1] for item in items) == ["photo.v2", "scan.2023.01", "scan.2023.02"]
    assert all(item["x"].shape == (3, 16, 16) and not item["skipped"] for item in items)


def test_shards_without_readable_samples_raise_instead_of_looping(tmp_path) -> None:
    from vitok.data.datasets import UnreadableDataError

    broken = _tar(tmp_path / "broken.tar", {"a.png": b"not a png", "b.jpg": b"", "c.txt": b"notes"})
    with pytest.raises(UnreadableDataError, match=r"no readable image sample in a whole pass .*broken\.tar"):
        next(iter(ShardDataset([broken], "image", TrainTransform((16, 16)))))
    empty = _tar(tmp_path / "empty.tar", {})
    with pytest.raises(UnreadableDataError, match=r"empty\.tar hold no samples"):
        next(iter(ShardDataset([empty], "image", TrainTransform((16, 16)), start_sample=5)))


def test_shards_log_and_report_each_unreadable_sample_once_per_name(tmp_path, caplog) -> None:
    shard = _tar(tmp_path / "mixed.tar", {"a.png": _png_bytes(0), "b.png": b"broken", "c.png": _png_bytes(1),
                                          "d.jpg": b"", "e.png": _png_bytes(2)})
    items = [item for _, item in zip(range(9), ShardDataset([shard], "image", TrainTransform((16, 16))))]  # 3 passes
    skipped = [p for item in items for p in item["skipped"]]
    assert {p.rsplit(":", 1)[1] for p in skipped} == {"b", "d"}
    warnings = [r.getMessage() for r in caplog.records if "skipping unreadable sample" in r.getMessage()]
    assert len(warnings) == 2  # once per distinct sample, not once per pass
