"""Data: transforms, folders, the resumable sampler, camera-motion clips, subsets (shards: test_shards.py)."""

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
    StepBatchSampler,
    TrainTransform,
    build_dataset,
    build_train_loader,
    collate,
    list_files,
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


def test_vflip_and_rot90_give_the_eight_symmetries_at_the_crop_size() -> None:
    # the crop covers the whole image (short side 12 -> 12 px), so each output is one symmetry of it
    x = torch.rand(3, 12, 12) * 2 - 1

    def outputs(t: TrainTransform) -> set[int]:
        symmetries = [torch.rot90(y, k, dims=(-2, -1)) for y in (x, x.flip(-1)) for k in range(4)]
        seen = set()
        for seed in range(64):
            out = t(x, torch.Generator().manual_seed(seed))
            matches = [i for i, s in enumerate(symmetries) if torch.allclose(out, s, atol=1e-5)]
            assert len(matches) == 1
            seen.add(matches[0])
        return seen

    # indices: 0-3 = x turned k times, 4-7 = x mirrored left-right, then turned; x flipped upside
    # down is x mirrored and turned twice (index 6)
    assert outputs(TrainTransform((12, 12), short_side=(12, 12), hflip=False, vflip=True)) == {0, 6}
    assert outputs(TrainTransform((12, 12), short_side=(12, 12), hflip=False, rot90=True)) == {0, 1, 2, 3}
    assert outputs(TrainTransform((12, 12), short_side=(12, 12), vflip=True, rot90=True)) == set(range(8))
    # non-square: a quarter-turned crop is cut with the sides swapped, then turned, so the output
    # is an exact, turned 24x16 block of the source (short side 24 = the source's: no resizing)
    source = torch.arange(3 * 24 * 40, dtype=torch.float32).reshape(3, 24, 40)
    rect = TrainTransform((16, 24), short_side=(24, 24), hflip=False, rot90=True)
    turned = 0
    for seed in range(16):
        out = rect(source, torch.Generator().manual_seed(seed))
        assert out.shape == (3, 16, 24)
        blocks = [torch.rot90(out, -k, dims=(-2, -1)) for k in range(4)]
        exact = [b for b in blocks if any(torch.equal(b, source[:, t:t + b.shape[1], c:c + b.shape[2]])
                                          for t in range(25 - b.shape[1]) for c in range(41 - b.shape[2]))]
        assert exact, f"seed {seed}: not a turned block of the source"
        turned += exact[0].shape[1] == 24
    assert 0 < turned < 16
    clip = TrainTransform((16, 24), short_side=(30, 40), rot90=True)(torch.rand(3, 5, 50, 70),
                                                                      torch.Generator().manual_seed(1))
    assert clip.shape == (3, 5, 16, 24)
    # off by default, and then no extra draws: the random stream (an existing run's crops) is
    # the box's draws and the horizontal flip's, as before the options existed
    base = TrainTransform((16, 16), short_side=(20, 40))
    assert not base.vflip and not base.rot90
    used, expected = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    base(x, used)
    base.box(12, 12, expected)
    torch.rand((), generator=expected)
    assert torch.equal(torch.rand(4, generator=used), torch.rand(4, generator=expected))
    cfg = DataConfig(image_size=16, vflip=True, rot90=True)
    assert cfg.transform().vflip and cfg.transform().rot90 and cfg.transform().resized((8, 8)).rot90


def test_short_side_crops_keep_the_output_aspect_ratio() -> None:
    # a drawn short side below the output's asks for a crop larger than the source: the largest
    # crop of the output's shape that fits, never a squashed one
    gen = torch.Generator().manual_seed(0)
    for _ in range(8):
        top, left, ch, cw = TrainTransform((256, 256), short_side=(128, 128)).box(300, 1000, gen)
        assert (ch, cw) == (300, 300) and 0 <= left <= 700 and top == 0
        top, left, ch, cw = TrainTransform((64, 256), short_side=(64, 200)).box(400, 100, gen)  # wide out, tall source
        assert cw == 100 and ch == 25 and top + ch <= 400


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


# ---------------------------------------------------------------- bad and unusual files (issue #13)
@pytest.mark.parametrize("hw", [(1, 1), (1, 40), (2, 2), (3, 200)])
def test_tiny_images_crop_to_at_least_one_pixel(hw) -> None:
    x = torch.rand(3, *hw) * 2 - 1
    for transform in (TrainTransform((32, 32), short_side=(32, 96)), TrainTransform((32, 32))):
        top, left, ch, cw = transform.box(*hw, torch.Generator().manual_seed(0))
        assert ch >= 1 and cw >= 1 and top + ch <= hw[0] and left + cw <= hw[1]
        assert transform(x, torch.Generator().manual_seed(0)).shape == (3, 32, 32)


def _folder_with_broken_files(root) -> None:
    for i in range(3):
        io.save_image(smooth_image(20, 24, i), root / f"b_{i}.png")
    (root / "a_empty.jpg").write_bytes(b"")
    (root / "a_notes.png").write_text("not an image")


def test_training_substitutes_and_logs_each_unreadable_file_once(tmp_path, caplog) -> None:
    _folder_with_broken_files(tmp_path)
    data = MediaFolder([tmp_path], "image", TrainTransform((16, 16)))
    items = [data[(i % len(data), seed)] for seed, i in enumerate(range(20))]
    assert all(item["x"].shape == (3, 16, 16) and "b_" in item["path"] for item in items)
    skipped = [p for item in items for p in item["skipped"]]
    assert {p.rsplit("/", 1)[1] for p in skipped} == {"a_empty.jpg", "a_notes.png"}
    warnings = [r.getMessage() for r in caplog.records if "skipping unreadable file" in r.getMessage()]
    assert len(warnings) == 2  # one line per distinct file, not per draw
    substitutes = [item["path"] for item in items if item["skipped"]]
    assert len(set(substitutes)) > 1  # drawn from the seed, not always the next file in sort order
    large = 2**31 - 1  # the largest run seed a config accepts, times 1_000_003, plus the position
    item = data[(0, large * 1_000_003 + 7)]  # the unreadable first file: a substitute drawn from a large seed
    assert item["x"].shape == (3, 16, 16) and item["skipped"]


def test_evaluation_drops_unreadable_files_and_scores_each_file_once(tmp_path) -> None:
    from torch.utils.data import DataLoader

    _folder_with_broken_files(tmp_path)
    data = MediaFolder([tmp_path], "image", EvalTransform((16, 16)), random_clips=False, substitute=False)
    batches = list(DataLoader(data, batch_size=2, collate_fn=collate))
    paths = [p for b in batches for p in b["path"]]
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == ["b_0.png", "b_1.png", "b_2.png"]
    assert batches[0]["x"] is None and batches[0]["index"] == []  # both files of the first batch unreadable
    assert sum(len(b["skipped"]) for b in batches) == 2 and len(batches[0]["errors"]) == 2
    assert [b["x"].shape[0] for b in batches[1:]] == [2, 1] and batches[1]["index"] == [2, 3]


def test_no_readable_file_is_one_clear_line_even_from_a_worker(tmp_path) -> None:
    from vitok.data.datasets import UnreadableDataError
    from vitok.train.trainer import next_batch

    (tmp_path / "notes.png").write_text("not an image")
    data = MediaFolder([tmp_path], "image", TrainTransform((16, 16)), max_tries=4)
    with pytest.raises(UnreadableDataError, match=r"^none of the 1 image files under .* could be read \(first: "):
        data[(0, 0)]
    loader = iter(build_train_loader(DataConfig(train=[str(tmp_path)], image_size=16, workers=1), global_batch=1))
    with pytest.raises(UnreadableDataError) as caught:
        next_batch(loader)
    message = str(caught.value)
    assert message.startswith("none of the 1 image files under") and "\n" not in message
    assert message.count("notes.png") == 1  # named once, not once per try


def test_data_helpers_check_their_arguments(tmp_path) -> None:
    """Fuzz campaign kinds: raw TypeError / ZeroDivisionError / math domain error from deep inside,
    and silently accepted values (kind='audio', a negative clip length, a 5-D clip)."""
    from vitok.data.datasets import fit_clip
    from vitok.data.shards import expand_shards

    io.save_image(smooth_image(8, 8), tmp_path / "a.png")
    with pytest.raises(TypeError, match="roots must be a list"):
        list_files(None, "image")
    with pytest.raises(TypeError, match="roots must be a list"):
        list_files(str(tmp_path), "image")  # a bare string is not a list of roots
    with pytest.raises(ValueError, match="kind must be 'image' or 'video'"):
        list_files([tmp_path], "audio")
    assert list_files([tmp_path, tmp_path / "a.png"], "image") == [tmp_path / "a.png"]  # each file once
    clip = torch.zeros(3, 2, 4, 4)
    assert fit_clip(clip, 5).shape == (3, 5, 4, 4) and fit_clip(clip, 1).shape == (3, 1, 4, 4)
    for frames, num, error in ((clip, 0, ValueError), (clip, -1, ValueError), (clip, 2.5, TypeError),
                               (torch.zeros(1, 3, 2, 4, 4), 2, ValueError), ("clip", 2, TypeError)):
        with pytest.raises(error, match="frames|num_frames"):
            fit_clip(frames, num)
    with pytest.raises(TypeError, match="shard patterns must be a list"):
        expand_shards([None])
    for kwargs, name in (({"size": (0, 8)}, "size"), ({"size": (8,)}, "size"), ({"size": (8, 8), "short_side": (0, 0)},
                         "short_side"), ({"size": (8, 8), "ratio": (0.0, 1.0)}, "ratio"),
                         ({"size": (8, 8), "scale": (1.0, 0.5)}, "scale"), ({"size": (8, 8), "short_side": (16, 8)},
                                                                            "short_side")):
        with pytest.raises((TypeError, ValueError), match=name):
            TrainTransform(**kwargs)
    with pytest.raises(ValueError, match="size"):
        EvalTransform((-1, 4))
    gen = torch.Generator().manual_seed(0)
    out = TrainTransform((8, 8))(torch.rand(3, 20, 10, dtype=torch.bfloat16), gen)
    assert out.shape == (3, 8, 8) and out.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="x must be"):
        TrainTransform((8, 8))(torch.zeros(20, 10), gen)


def test_a_data_subset_is_fixed_nested_and_trained_on(tmp_path) -> None:
    from vitok.data.datasets import nested_subset

    files = [tmp_path / f"{i:02d}.png" for i in range(20)]
    small, large = nested_subset(files, 5), nested_subset(files, 12)
    assert len(small) == 5 and set(small) <= set(large) and small == sorted(small)
    assert nested_subset(list(reversed(files)), 5) == small  # the choice depends on the files only
    assert small != files[:5]  # spread over the list, not its first names
    with pytest.raises(ValueError, match="data.subset 21 exceeds the 20 training files"):
        nested_subset(files, 21)
    for i in range(6):
        io.save_image(smooth_image(16, 16, i), tmp_path / "photos" / f"{i}.png")
    cfg = DataConfig(train=[str(tmp_path / "photos")], image_size=8, subset=2)
    seen = {path for step in range(8) for path in next(iter(build_train_loader(cfg, 2, start_step=step)))["path"]}
    assert len(seen) == 2  # only the subset is drawn
