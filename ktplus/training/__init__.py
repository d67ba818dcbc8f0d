"""Training helpers used by the ktplus tuners: learning-rate decay, early
stopping, pruning, the NaN guard and the fast data path."""

from ktplus.training._callbacks import NaNGuard, NonFiniteLoss, make_early_stopping, parse_early_stopping
from ktplus.training._data import DataCache, uses_batch_hooks
from ktplus.training._pruning import (
    CurveStore,
    MedianPruner,
    PercentilePruner,
    Pruner,
    PruningCallback,
    ThresholdPruner,
    atomic_write_json,
    parse_pruning,
)
from ktplus.training._schedules import LearningRateDecay, LRDecay, parse_lr_decay

__all__ = [
    "CurveStore",
    "DataCache",
    "LRDecay",
    "LearningRateDecay",
    "MedianPruner",
    "NaNGuard",
    "NonFiniteLoss",
    "PercentilePruner",
    "Pruner",
    "PruningCallback",
    "ThresholdPruner",
    "atomic_write_json",
    "make_early_stopping",
    "parse_early_stopping",
    "parse_lr_decay",
    "parse_pruning",
    "uses_batch_hooks",
]
