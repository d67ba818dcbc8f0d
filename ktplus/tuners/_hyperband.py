"""ktplus.Hyperband: `ktplus.Tuner` with keras-tuner's Hyperband oracle."""

from __future__ import annotations

import keras_tuner

from ktplus.tuners._tuner import Tuner, tuner_docstring


class Hyperband(Tuner, keras_tuner.Hyperband):
    __doc__ = tuner_docstring("Hyperband", "max_epochs=2")
