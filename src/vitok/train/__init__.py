"""Training: typed config, the loop, checkpoints, EMA, LR schedule, distributed set-up."""

from vitok.train.config import ModelSection, OptimConfig, RunConfig, TrainConfig, load_config
from vitok.train.engine import NonFiniteLossError
from vitok.train.trainer import Trainer, train

__all__ = [
    "ModelSection", "NonFiniteLossError", "OptimConfig", "RunConfig", "TrainConfig", "Trainer",
    "load_config", "train",
]
