"""ktplus: hypermodels, tuners and TensorBoard logging for Keras Tuner.

>>> import ktplus
>>> hm = ktplus.DenseHyperModel(input_shape=(64,), num_classes=10)
"""

from ktplus._quiet import import_quietly

import_quietly()

from ktplus import datasets, training  # noqa: E402
from ktplus.hypermodels import (  # noqa: E402
    AutoHyperModel,
    BaseHyperModel,
    ConvHyperModel,
    DenseHyperModel,
    ResidualHyperModel,
    check_hypermodel,
)
from ktplus.training import LRDecay, MedianPruner, PercentilePruner, Pruner, ThresholdPruner  # noqa: E402
from ktplus.tuners import BayesianOptimization, GridSearch, Hyperband, RandomSearch  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AutoHyperModel",
    "BaseHyperModel",
    "BayesianOptimization",
    "GridSearch",
    "Hyperband",
    "LRDecay",
    "MedianPruner",
    "PercentilePruner",
    "Pruner",
    "RandomSearch",
    "ThresholdPruner",
    "ConvHyperModel",
    "DenseHyperModel",
    "ResidualHyperModel",
    "__version__",
    "check_hypermodel",
    "datasets",
    "training",
]
