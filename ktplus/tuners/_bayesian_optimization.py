"""ktplus.BayesianOptimization: keras-tuner's BayesianOptimization with ktplus's options."""

from __future__ import annotations

import keras_tuner

from ktplus.tuners._mixin import TunerOptionsMixin, tuner_docstring


class BayesianOptimization(TunerOptionsMixin, keras_tuner.BayesianOptimization):
    __doc__ = tuner_docstring("BayesianOptimization", "max_trials=2")
