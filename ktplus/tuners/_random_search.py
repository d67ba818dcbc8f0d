"""ktplus.RandomSearch: keras-tuner's RandomSearch with ktplus's options."""

from __future__ import annotations

import keras_tuner

from ktplus.tuners._mixin import TunerOptionsMixin, tuner_docstring


class RandomSearch(TunerOptionsMixin, keras_tuner.RandomSearch):
    __doc__ = tuner_docstring("RandomSearch", "max_trials=2")
