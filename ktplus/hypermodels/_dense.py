"""The dense (MLP) family."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner

from ktplus.hypermodels import _knobs
from ktplus.hypermodels._base import BaseHyperModel, Shared


class DenseHyperModel(BaseHyperModel):
    """A multi-layer perceptron search space.

    Inputs of any rank are flattened. Each hidden layer is Dense, then batch
    norm (optional), activation and dropout. ``units_<i>`` is active only in
    trials with more than ``i`` layers.

    Args:
        input_shape: Shape of one sample, e.g. ``(64,)``.
        num_classes: Number of classes (>= 2) for classification.
        layers: Number of hidden layers (int, (min, max) or list).
        units: Units of each hidden layer (int, (min, max) tuned in powers of
            two, or list).
        activation: Hidden activation (see `ktplus.BaseHyperModel`).
        batch_norm: Batch normalization after each hidden layer.
        dropout: Dropout rate after each hidden layer.
        **kwargs: The shared options of `ktplus.BaseHyperModel`: ``task``,
            ``num_outputs``, ``regularizer``, ``regularizer_strength``,
            ``optimizer``, ``learning_rate``, ``batch_size``, ``metrics``, ...

    Example:

    >>> import keras_tuner
    >>> import ktplus
    >>> hm = ktplus.DenseHyperModel(input_shape=(64,), num_classes=10,
    ...                             units=(32, 128), regularizer=["l2", None])
    >>> model = hm.build(keras_tuner.HyperParameters())
    >>> model.output_shape
    (None, 10)
    """

    family = "dense"
    ranks = None

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int | None = None,
        *,
        layers: Any = (1, 3),
        units: Any = (32, 256),
        activation: Any = "relu",
        batch_norm: Any = False,
        dropout: Any = (0.0, 0.5),
        **kwargs: Any,
    ) -> None:
        super().__init__(input_shape, num_classes, activation=activation,
                         batch_norm=batch_norm, dropout=dropout, **kwargs)
        self.knobs["layers"] = _knobs.int_knob("layers", layers, minimum=1)
        self.knobs["units"] = _knobs.int_knob("units", units, minimum=1, log=True)
        self._family_config = {"layers": layers, "units": units}

    def _declare(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        layers_knob = self._knob("layers")
        n_layers = layers_knob.register(hp)
        units = []
        for i in range(layers_knob.max_value):
            with hp.conditional_scope("layers", layers_knob.values_where(lambda n, i=i: n > i)):
                units.append(self._knob("units").register(hp, f"units_{i}"))
        return {"layers": n_layers, "units": units}

    def _body(self, inputs: Any, params: dict[str, Any], shared: Shared) -> Any:
        x = inputs
        if len(self.input_shape) > 1:
            x = keras.layers.Flatten()(x)
        for i in range(params["layers"]):
            x = keras.layers.Dense(
                params["units"][i],
                use_bias=not shared.batch_norm,
                kernel_regularizer=shared.kernel_regularizer(),
            )(x)
            x = shared.norm_act(x)
            x = shared.drop(x)
        return x
