"""ktplus.GridSearch: `ktplus.Tuner` with keras-tuner's GridSearch oracle."""

from __future__ import annotations

import keras_tuner

from ktplus.tuners._tuner import Tuner, tuner_docstring


class GridSearch(Tuner, keras_tuner.GridSearch):
    __doc__ = tuner_docstring("GridSearch", "max_trials=2")
