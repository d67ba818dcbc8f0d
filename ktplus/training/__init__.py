"""Training helpers used by the ktplus tuners: learning-rate decay, early
stopping, pruning, the NaN guard and the fast data path."""

from ktplus._quiet import import_quietly

import_quietly()

from ktplus.training._atomic import atomic_write_json, atomic_write_text  # noqa: E402
from ktplus.training._callbacks import NaNGuard, NonFiniteLoss, make_early_stopping, parse_early_stopping  # noqa: E402
from ktplus.training._data import DataCache, uses_batch_hooks  # noqa: E402
from ktplus.training._pruning import (  # noqa: E402
    CurveStore,
    MedianPruner,
    PercentilePruner,
    Pruner,
    PruningCallback,
    ThresholdPruner,
    parse_pruning,
)
from ktplus.training._schedules import LearningRateDecay, LRDecay, parse_lr_decay  # noqa: E402

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
    "atomic_write_text",
    "make_early_stopping",
    "parse_early_stopping",
    "parse_lr_decay",
    "parse_pruning",
    "uses_batch_hooks",
]
