"""ktplus.RandomSearch: `ktplus.Tuner` with keras-tuner's RandomSearch oracle."""

from __future__ import annotations

import keras_tuner

from ktplus.tuners._tuner import Tuner, tuner_docstring


class RandomSearch(Tuner, keras_tuner.RandomSearch):
    __doc__ = tuner_docstring("RandomSearch", "max_trials=2")
