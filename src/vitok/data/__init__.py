"""Data: image/video folders, WebDataset shards, crops, and the resumable rank-aware loader."""
from typing import TYPE_CHECKING

from vitok.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "vitok.data.datasets": ["KeyedConcat", "MediaFolder", "collate", "list_files"],
    "vitok.data.config": ["DataConfig"],
    "vitok.data.loader": ["build_dataset", "build_train_loader"],
    "vitok.data.motion": ["CameraMotion", "MotionClips"],
    "vitok.data.sampler": ["StepBatchSampler"],
    "vitok.data.shards": ["ShardDataset", "write_shards"],
    "vitok.data.transforms": ["EvalTransform", "TrainTransform"],
})

if TYPE_CHECKING:  # for type checkers; at run time each name is imported on first use
    from vitok.data.config import DataConfig
    from vitok.data.datasets import KeyedConcat, MediaFolder, collate, list_files
    from vitok.data.loader import build_dataset, build_train_loader
    from vitok.data.motion import CameraMotion, MotionClips
    from vitok.data.sampler import StepBatchSampler
    from vitok.data.shards import ShardDataset, write_shards
    from vitok.data.transforms import EvalTransform, TrainTransform
