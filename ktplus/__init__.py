"""ktplus: hypermodels, tuners and TensorBoard logging for Keras Tuner.

The public names are loaded on first use, so ``import ktplus`` is instant
and quiet, and the ``ktplus`` command reports bad input before TensorFlow
is imported.

>>> import ktplus
>>> hm = ktplus.DenseHyperModel(input_shape=(64,), num_classes=10)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AutoHyperModel": "ktplus.hypermodels",
    "BaseHyperModel": "ktplus.hypermodels",
    "ConvHyperModel": "ktplus.hypermodels",
    "DenseHyperModel": "ktplus.hypermodels",
    "ResidualHyperModel": "ktplus.hypermodels",
    "check_hypermodel": "ktplus.hypermodels",
    "RandomSearch": "ktplus.tuners",
    "BayesianOptimization": "ktplus.tuners",
    "Hyperband": "ktplus.tuners",
    "GridSearch": "ktplus.tuners",
    "Tuner": "ktplus.tuners",
    "OptunaSearch": "ktplus.tuners",
    "OptunaOracle": "ktplus.oracles",
    "TunerOptions": "ktplus.tuners",
    "LRDecay": "ktplus.training",
    "MedianPruner": "ktplus.training",
    "PercentilePruner": "ktplus.training",
    "Pruner": "ktplus.training",
    "ThresholdPruner": "ktplus.training",
    "load_results": "ktplus.results",
    "importance": "ktplus.reporting",
    "load_pareto_front": "ktplus.reporting",
    "report": "ktplus.reporting",
    "export": "ktplus._export",
}
_SUBMODULES = ("datasets", "training", "results", "logging", "hypermodels", "tuners", "oracles", "reporting")

__all__ = [
    "AutoHyperModel",
    "BaseHyperModel",
    "BayesianOptimization",
    "ConvHyperModel",
    "DenseHyperModel",
    "GridSearch",
    "Hyperband",
    "LRDecay",
    "MedianPruner",
    "OptunaOracle",
    "OptunaSearch",
    "PercentilePruner",
    "Pruner",
    "RandomSearch",
    "ResidualHyperModel",
    "ThresholdPruner",
    "Tuner",
    "TunerOptions",
    "__version__",
    "check_hypermodel",
    "datasets",
    "export",
    "importance",
    "load_pareto_front",
    "load_results",
    "oracles",
    "report",
    "reporting",
    "training",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"ktplus.{name}")
    else:
        raise AttributeError(f"module 'ktplus' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))


if TYPE_CHECKING:
    from ktplus import datasets, training
    from ktplus._export import export
    from ktplus.hypermodels import (
        AutoHyperModel,
        BaseHyperModel,
        ConvHyperModel,
        DenseHyperModel,
        ResidualHyperModel,
        check_hypermodel,
    )
    from ktplus.oracles import OptunaOracle
    from ktplus.reporting import importance, load_pareto_front, report
    from ktplus.results import load_results
    from ktplus.training import LRDecay, MedianPruner, PercentilePruner, Pruner, ThresholdPruner
    from ktplus.tuners import (
        BayesianOptimization,
        GridSearch,
        Hyperband,
        OptunaSearch,
        RandomSearch,
        Tuner,
        TunerOptions,
    )
