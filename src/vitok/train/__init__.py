"""Training: typed config, the loop, checkpoints, EMA, LR schedule, distributed set-up."""
from typing import TYPE_CHECKING

from vitok.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "vitok.train.config": ["ModelSection", "OptimConfig", "RunConfig", "TrainConfig", "load_config"],
    "vitok.train.engine": ["NonFiniteLossError"],
    "vitok.train.trainer": ["Trainer", "train"],
})

if TYPE_CHECKING:  # for type checkers; at run time each name is imported on first use
    from vitok.train.config import ModelSection, OptimConfig, RunConfig, TrainConfig, load_config
    from vitok.train.engine import NonFiniteLossError
    from vitok.train.trainer import Trainer, train
