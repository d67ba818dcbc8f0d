"""ktplus.Hyperband: keras-tuner's Hyperband with ktplus's options."""

from __future__ import annotations

import keras_tuner

from ktplus.tuners._mixin import TunerOptionsMixin, tuner_docstring


class Hyperband(TunerOptionsMixin, keras_tuner.Hyperband):
    __doc__ = tuner_docstring("Hyperband", "max_epochs=4")
