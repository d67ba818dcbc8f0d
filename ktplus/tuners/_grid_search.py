"""ktplus.GridSearch: keras-tuner's GridSearch with ktplus's options."""

from __future__ import annotations

import keras_tuner

from ktplus.tuners._mixin import TunerOptionsMixin, tuner_docstring


class GridSearch(TunerOptionsMixin, keras_tuner.GridSearch):
    __doc__ = tuner_docstring("GridSearch", "max_trials=2")
