"""Data: image/video folders, WebDataset shards, crops, and the resumable rank-aware loader."""

from vitok.data.datasets import KeyedConcat, MediaFolder, collate, list_files
from vitok.data.loader import DataConfig, build_dataset, build_train_loader
from vitok.data.motion import CameraMotion, MotionClips
from vitok.data.sampler import StepBatchSampler
from vitok.data.shards import ShardDataset, write_shards
from vitok.data.transforms import EvalTransform, TrainTransform

__all__ = [
    "CameraMotion", "DataConfig", "EvalTransform", "KeyedConcat", "MediaFolder", "MotionClips", "ShardDataset",
    "StepBatchSampler", "TrainTransform",
    "build_dataset", "build_train_loader", "collate", "list_files", "write_shards",
]
