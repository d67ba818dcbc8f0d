"""Training-time pieces of the ktplus tuners that users may use directly:
learning-rate schedules and pruners (the tuners' other helpers live in the
private modules of this package)."""

from ktplus._quiet import import_quietly

import_quietly()

from ktplus.training._pruning import MedianPruner, PercentilePruner, Pruner, ThresholdPruner  # noqa: E402
from ktplus.training._schedules import LearningRateDecay, LRDecay  # noqa: E402

__all__ = ["LRDecay", "LearningRateDecay", "MedianPruner", "PercentilePruner", "Pruner", "ThresholdPruner"]
