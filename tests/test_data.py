"""Data: transforms, folders, the resumable rank-aware sampler, WebDataset shards."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import smooth_image
from vitok import io
from vitok.data import (
    CameraMotion,
    DataConfig,
    EvalTransform,
    KeyedConcat,
    MediaFolder,
    MotionClips,
    ShardDataset,
    StepBatchSampler,
    TrainTransform,
    build_dataset,
    build_train_loader,
    collate,
    list_files,
    write_shards,
)


def test_train_transform_is_seeded_and_sized() -> None:
    x = torch.rand(3, 90, 120) * 2 - 1
    t = TrainTransform((32, 32))
    a = t(x, torch.Generator().manual_seed(1))
    assert a.shape == (3, 32, 32)
    assert torch.equal(a, t(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, t(x, torch.Generator().manual_seed(2)))
    clip = torch.rand(3, 5, 60, 80)
    out = TrainTransform((24, 24), short_side=(24, 60))(clip, torch.Generator().manual_seed(0))
    assert out.shape == (3, 5, 24, 24)
    # every frame gets the same crop: a static clip stays static
    static = torch.rand(3, 1, 60, 80).expand(3, 4, 60, 80)
    cropped = TrainTransform((24, 24))(static, torch.Generator().manual_seed(3))
    assert torch.equal(cropped[:, 0], cropped[:, 3])
    assert EvalTransform((16, 16))(clip).shape == (3, 5, 16, 16)


def test_media_folder_images_and_videos(tmp_path) -> None:
    for i in range(3):
        io.save_image(smooth_image(40, 50, i), tmp_path / "img" / f"{i}.png")
    io.save_video(torch.stack([smooth_image(32, 32, i) for i in range(5)], 1), tmp_path / "vid" / "short.mp4")
    images = MediaFolder([tmp_path / "img"], "image", TrainTransform((16, 16)))
    assert len(images) == 3 and images[(0, 7)]["x"].shape == (3, 16, 16)
    assert torch.equal(images[(1, 7)]["x"], images[(1, 7)]["x"])
    videos = MediaFolder([tmp_path / "vid"], "video", TrainTransform((16, 16)), num_frames=8, frame_stride=2)
    item = videos[(0, 1)]
    assert item["x"].shape == (3, 8, 16, 16)  # 5 frames: stride reduced, last frame repeated
    batch = collate([images[(0, 1)], images[(2, 2)]])
    assert batch["x"].shape == (2, 3, 16, 16) and batch["seed"].tolist() == [1, 2]
    assert list_files([tmp_path], "video") == [tmp_path / "vid" / "short.mp4"]


def test_sampler_ranks_partition_the_global_batch_and_resume() -> None:
    single = StepBatchSampler(10, 4, seed=3)
    ranks = [StepBatchSampler(10, 4, rank=r, world=2, seed=3) for r in range(2)]
    it_single, its = iter(single), [iter(s) for s in ranks]
    for _ in range(7):  # crosses epoch boundaries
        union = sorted(next(its[0]) + next(its[1]))
        assert union == sorted(next(it_single))
    resumed = iter(StepBatchSampler(10, 4, seed=3, start_step=5))
    fresh = iter(StepBatchSampler(10, 4, seed=3))
    for _ in range(5):
        next(fresh)
    assert next(resumed) == next(fresh)
    accum = iter(StepBatchSampler(10, 4, seed=3, accum=2))
    assert next(accum) + next(accum) == single.step_keys(0)
    epoch = [k[0] for s in range(5) for k in single.step_keys(s)][:10]
    assert sorted(epoch) == list(range(10))  # each epoch is a permutation


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


def test_camera_motion_clips_shapes_determinism_and_motion(tmp_path) -> None:
    photo = smooth_image(120, 160, seed=4) + 0.3 * torch.rand(3, 120, 160)  # some texture to track
    motion = CameraMotion(num_frames=6, size=(24, 32), pan=(0.3, 0.5), zoom=(1.0, 1.0), rotation=0.0)
    clip = motion(photo.clamp(-1, 1), torch.Generator().manual_seed(5))
    assert clip.shape == (3, 6, 24, 32) and clip.min() >= -1 and clip.max() <= 1
    assert torch.equal(clip, motion(photo.clamp(-1, 1), torch.Generator().manual_seed(5)))
    assert not torch.equal(clip, motion(photo.clamp(-1, 1), torch.Generator().manual_seed(6)))
    steps = [(clip[:, i + 1] - clip[:, i]).abs().mean().item() for i in range(5)]
    assert min(steps) > 1e-3  # the camera moves every frame ...
    assert (clip[:, 0] - clip[:, 1]).abs().mean() < (clip[:, 0] - clip[:, 5]).abs().mean()  # ... smoothly
    theta = CameraMotion(num_frames=3, zoom=(2.0, 2.0), pan=(0.0, 0.0), rotation=0.0).path(
        100, 100, torch.Generator().manual_seed(0))
    assert theta[-1, 0, 0] == pytest.approx(2 * theta[0, 0, 0].item(), rel=1e-5)  # zoom: crop side doubles
    for i in range(3):
        io.save_image(smooth_image(64, 80, i), tmp_path / "photos" / f"{i}.png")
    ds = MotionClips([tmp_path / "photos"], CameraMotion(num_frames=4, size=(16, 16)), photo_side=(32, 48))
    assert ds[(1, 9)]["x"].shape == (3, 4, 16, 16) and torch.equal(ds[(1, 9)]["x"], ds[(1, 9)]["x"])


def test_mixed_real_and_motion_video_dataset(tmp_path) -> None:
    for i in range(2):
        io.save_image(smooth_image(64, 80, i), tmp_path / "photos" / f"{i}.png")
    io.save_video(torch.stack([smooth_image(32, 32, i) for i in range(6)], 1), tmp_path / "vid" / "a.mp4")
    cfg = DataConfig(train=[str(tmp_path / "vid")], motion=[str(tmp_path / "photos")], kind="video",
                     image_size=16, num_frames=4, train_repeat=3, motion_repeat=1)
    ds = build_dataset(cfg)
    assert isinstance(ds, KeyedConcat) and len(ds) == 3 * 1 + 2
    paths = {ds[(i, i)]["path"].rsplit("/", 2)[-2] for i in range(len(ds))}
    assert paths == {"vid", "photos"}
    batch = next(iter(build_train_loader(cfg, global_batch=2)))
    assert batch["x"].shape == (2, 3, 4, 16, 16)
    with pytest.raises(ValueError, match="data.kind=video"):
        build_dataset(DataConfig(motion=[str(tmp_path / "photos")], kind="image"))


def test_multi_size_sampler_is_uniform_per_step_deterministic_and_resumes(tmp_path) -> None:
    sampler = StepBatchSampler(10, 4, seed=3, accum=2, sizes=[32, 48, 64])
    sizes = [sampler.step_size(s) for s in range(60)]
    assert set(sizes) == {32, 48, 64}  # every size is drawn
    assert sizes == [StepBatchSampler(10, 4, seed=3, sizes=[32, 48, 64]).step_size(s) for s in range(60)]
    assert sizes != [StepBatchSampler(10, 4, seed=4, sizes=[32, 48, 64]).step_size(s) for s in range(60)]
    it = iter(sampler)
    for step in range(3):
        micro = next(it) + next(it)
        assert {k[2] for k in micro} == {sizes[step]}  # one size for the whole step
    resumed = iter(StepBatchSampler(10, 4, seed=3, accum=2, start_step=2, sizes=[32, 48, 64]))
    assert next(resumed) + next(resumed) == sampler.step_keys(2)
    for i in range(3):
        io.save_image(smooth_image(80, 96, i), tmp_path / f"{i}.png")
    cfg = DataConfig(train=[str(tmp_path)], image_size=[32, 48], workers=0)
    loader = iter(build_train_loader(cfg, 2, seed=1))
    shapes = [next(loader)["x"].shape[-1] for _ in range(12)]
    assert set(shapes) == {32, 48}
    again = iter(build_train_loader(cfg, 2, seed=1, start_step=5))
    assert [next(again)["x"].shape[-1] for _ in range(7)] == shapes[5:]
    with pytest.raises(ValueError, match="need data.kind=image"):
        DataConfig(kind="video", image_size=[32, 48])
    with pytest.raises(ValueError, match="positive"):
        DataConfig(image_size=[32, 0])
