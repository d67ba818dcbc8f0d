"""ktplus.BayesianOptimization: `ktplus.Tuner` with keras-tuner's BayesianOptimization oracle."""

from __future__ import annotations

import keras_tuner

from ktplus.tuners._tuner import Tuner, tuner_docstring


class BayesianOptimization(Tuner, keras_tuner.BayesianOptimization):
    __doc__ = tuner_docstring("BayesianOptimization", "max_trials=2")
