"""A HyperModel with every keras-tuner hyperparameter type and a conditional
scope, whose ``fit`` returns a synthetic objective (no training), shared by
the oracle tests and their subprocess."""

from __future__ import annotations

import os
import time
from typing import Any

import keras
import keras_tuner


class Synthetic(keras_tuner.HyperModel):
    """``loss = (x - 1)^2 + (y + 0.5)^2`` (min), ``size = n`` (min).

    ``lr`` exists only when ``kind == "a"``; ``SYNTH_FAIL_X`` (a number)
    makes ``fit`` raise when ``x`` is above it; ``SYNTH_SLEEP`` sleeps in fit.
    """

    def build(self, hp: Any) -> keras.Model:
        hp.Float("x", -3.0, 3.0)
        hp.Float("y", -3.0, 3.0, step=0.5)
        hp.Int("n", 1, 64, sampling="log")
        hp.Int("u", 8, 128, step=2, sampling="log")
        hp.Int("k", 2, 10, step=2)
        hp.Float("w", 1e-4, 1e-1, sampling="log")
        kind = hp.Choice("kind", ["a", "b"])
        hp.Boolean("flag")
        hp.Fixed("fixed", 3)
        with hp.conditional_scope("kind", ["a"]):
            if kind == "a":
                hp.Float("lr", 1e-4, 1e-1, sampling="log")
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(hp.get("k"))])
        return model

    def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        time.sleep(float(os.environ.get("SYNTH_SLEEP", "0")))
        limit = os.environ.get("SYNTH_FAIL_X")
        if limit is not None and hp.get("x") > float(limit):
            raise ValueError(f"synthetic failure at x={hp.get('x')}")
        loss = (hp.get("x") - 1.0) ** 2 + (hp.get("y") + 0.5) ** 2
        return {"loss": loss, "size": float(hp.get("n")), "multi_objective": loss + hp.get("n")}
