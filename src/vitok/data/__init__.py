"""Data: image/video folders, WebDataset shards, crops, and the resumable rank-aware loader."""

from vitok.data.datasets import MediaFolder, collate, list_files
from vitok.data.loader import DataConfig, build_train_loader
from vitok.data.sampler import StepBatchSampler
from vitok.data.shards import ShardDataset, write_shards
from vitok.data.transforms import EvalTransform, TrainTransform

__all__ = [
    "DataConfig", "EvalTransform", "MediaFolder", "ShardDataset", "StepBatchSampler", "TrainTransform",
    "build_train_loader", "collate", "list_files", "write_shards",
]
