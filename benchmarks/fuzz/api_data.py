"""API cases of :mod:`vitok.data`: listing files, clips, transforms, media folders, tar shards."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fuzz.api_env import ApiEnv, Case, api_value, random_tensor
from fuzz.judge import expect, finite, short

DATA_CALLS = ["list_files", "fit_clip", "folder", "folder", "transform", "split", "expand", "shards", "describe"]


def case_data(rng: random.Random, env: ApiEnv) -> Case:
    name = rng.choice(DATA_CALLS)
    return DATA_CASES[name](rng, env)


def data_list_files(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.data.datasets import list_files

    media = env.media["rgb.png"]["path"].parent
    roots = rng.choice([[media], [media / "rgb.png"], [env.root / "no-such"], [], [media, media], [str(media)],
                        [media / "text.jpg"], [env.root / "empty-dir"], media, None])
    kind = rng.choice(["image", "video", "audio", None])

    def check(out: Any) -> None:
        expect(kind in ("image", "video"), "list_files accepted kind", repr(kind))
        expect(bool(out) and all(Path(p).is_file() for p in out), "list_files: not existing files", short(out))
        expect(len(set(out)) == len(out), "list_files: a file listed twice", short(roots))
    return f"list_files({short(roots)}, {kind!r})", lambda: list_files(roots, kind), check


def data_fit_clip(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.data.datasets import fit_clip

    frames = random_tensor(rng, 4, 3, allow_odd=False) if rng.random() < 0.8 else api_value(rng)
    num = rng.choice([1, 2, 4, 8, 0, -1, 2.5])

    def check_clip(out: Any) -> None:
        expect(isinstance(num, int) and num >= 1, "fit_clip accepted num_frames", repr(num))
        expect(frames.ndim == 4 and tuple(out.shape) == (frames.shape[0], num, *frames.shape[2:]),
               "fit_clip: wrong shape", f"{short(frames)}, {num} -> {short(out)}")
    return f"fit_clip({short(frames)}, {num!r})", lambda: fit_clip(frames, num), check_clip


def data_transform(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.data.transforms import EvalTransform, TrainTransform

    x = random_tensor(rng, rng.choice([3, 4]), 3, allow_odd=False)
    size = rng.choice([(8, 8), (16, 24), (1, 1), (0, 8), (-1, 4), (8,), 8])
    kwargs = {k: rng.choice(v) for k, v in (("scale", [(0.8, 1.0), (0.0, 0.0), (1.0, 0.5), (2.0, 3.0)]),
                                            ("ratio", [(0.75, 1.33), (0.0, 1.0), (5.0, 0.1)]),
                                            ("short_side", [None, (8, 16), (1, 1), (0, 0), (16, 8)]))
              if rng.random() < 0.3}
    train = rng.random() < 0.6

    def run_transform() -> Any:
        transform = TrainTransform(size, **kwargs) if train else EvalTransform(size)
        return transform(x, torch.Generator().manual_seed(rng.randrange(100)))

    def check_transform(out: Any) -> None:
        valid = isinstance(size, tuple) and len(size) == 2 and min(size) >= 1
        valid = valid or (not train and isinstance(size, int) and size >= 1)  # like resize_center_crop
        expect(valid, "transform accepted size", repr(size))
        want = (size, size) if isinstance(size, int) else size
        expect(tuple(out.shape[-2:]) == want and out.shape[:-2] == x.shape[:-2], "transform: wrong output shape",
               f"{'Train' if train else 'Eval'}Transform({size}, {kwargs}) {tuple(x.shape)} -> {tuple(out.shape)}")
        expect(finite(out), "transform: NaN from finite input", kwargs)
    return (f"{'TrainTransform' if train else 'EvalTransform'}({size!r}, {short(kwargs)})({short(x)})",
            run_transform, check_transform)


def data_folder(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.data.datasets import MediaFolder, collate
    from vitok.data.transforms import EvalTransform, TrainTransform

    media = env.media["rgb.png"]["path"].parent
    kind = rng.choice(["image", "image", "video"])
    roots = rng.choice([[media], [media / "rgb.png"], [media / "text.jpg", media / "trunc.png"],
                        [media / "clip.webm"], [media / "audio.mp4", media / "clip.mkv"], [media / "one.png"],
                        [media / "bomb.png"], [media / "exif6.jpg"], [media / "gray16.png"]])
    size = rng.choice([8, 16, 17])
    transform = rng.choice([TrainTransform((size, size)), TrainTransform((size, size), short_side=(8, 32)),
                            EvalTransform((size, size))])
    substitute = rng.random() < 0.6
    frames = rng.choice([1, 2, 4])
    stride = rng.choice([1, 2, 3])
    keys = [(rng.randrange(20), rng.randrange(1000)) for _ in range(rng.choice([1, 3]))]

    def run_folder() -> Any:
        data = MediaFolder(roots, kind, transform, num_frames=frames, frame_stride=stride,
                           random_clips=rng.random() < 0.5, substitute=substitute, max_tries=4)
        items = [data[(index % len(data), seed)] for index, seed in keys]
        return data, items, collate(items)

    def check_folder(out: Any) -> None:
        _data, items, batch = out
        for item in items:
            if item["x"] is None:
                expect(not substitute and item["error"], "MediaFolder: an item without x or reason")
                continue
            want = (3, size, size) if kind == "image" else (3, frames, size, size)
            expect(tuple(item["x"].shape) == want, "MediaFolder: wrong item shape",
                   f"{short(roots)} {kind}: {tuple(item['x'].shape)}")
            expect(finite(item["x"]) and float(item["x"].abs().max()) <= 1, "MediaFolder: values out of range")
            expect(item["path"] not in item["skipped"], "MediaFolder: a used file is listed as skipped")
        kept = [i for i in items if i["x"] is not None]
        if batch["x"] is not None:
            expect(batch["x"].shape[0] == len(kept), "collate: batch size differs from the readable items")
    return (f"MediaFolder({short(roots)}, {kind}, {type(transform).__name__}{transform.size}, frames={frames}, "
            f"stride={stride}, substitute={substitute})[{keys}]", run_folder, check_folder)


def data_split(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.data.shards import split_last_extension

    member = rng.choice(["a.jpg", "scan.2023.01.jpg", "dir/x.y.png", ".hidden", "noext", "dir.d/file", "a.",
                         "", "a/b/", "x.tar.gz", "dir/.png"])

    def check_split(out: Any) -> None:
        stem, ext = out
        if stem is not None:
            expect(f"{stem}.{ext}" == member and "." not in ext and "/" not in ext, "split_last_extension: wrong",
                   f"{member!r} -> {out}")
    return f"split_last_extension({member!r})", lambda: split_last_extension(member), check_split


def data_expand(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.data.shards import expand_shards

    patterns = rng.choice([[str(env.shards["dotted"])], [str(env.root / "shards" / "*.tar")], [], ["/no/*.tar"],
                           str(env.shards["dotted"]), [None]])
    return f"expand_shards({short(patterns)})", lambda: expand_shards(patterns), None


def data_shards(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.data.shards import ShardDataset
    from vitok.data.transforms import EvalTransform

    which = rng.choice(["dotted", "mixed", "broken", "empty", "videos", "not"])
    kind = "video" if which == "videos" else "image"
    want_items = rng.choice([1, 3, 5])

    def run_shards() -> Any:
        data = ShardDataset([str(env.shards[which])], kind, EvalTransform((8, 8)), num_frames=2)
        items = []
        for item in data:
            items.append(item)
            if len(items) == want_items:
                break
        return items

    def check_shards(items: Any) -> None:
        expect(which in ("dotted", "mixed", "videos"), "ShardDataset: items from unreadable shards", which)
        for item in items:
            shape = (3, 8, 8) if kind == "image" else (3, 2, 8, 8)
            expect(tuple(item["x"].shape) == shape, "ShardDataset: wrong item shape", tuple(item["x"].shape))
    return f"ShardDataset({which}.tar, {kind}) first {want_items}", run_shards, check_shards


def data_describe(rng: random.Random, env: ApiEnv) -> Case:
    from vitok.data.datasets import describe_skipped

    paths = [f"f{i}.png" for i in range(rng.choice([0, 1, 2, 7]))]

    def check_describe(out: Any) -> None:
        expect(out.startswith(f"skipped {len(paths)} unreadable file"), "describe_skipped: wrong count", out)
    return f"describe_skipped({len(paths)} paths)", lambda: describe_skipped(paths), check_describe


DATA_CASES: dict[str, Callable[[random.Random, ApiEnv], Case]] = {
    "list_files": data_list_files, "fit_clip": data_fit_clip, "folder": data_folder, "transform": data_transform,
    "split": data_split, "expand": data_expand, "shards": data_shards, "describe": data_describe,
}
