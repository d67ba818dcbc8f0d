"""The convolutional family: 1D, 2D and 3D by the rank of ``input_shape``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner

from ktplus.hypermodels import _knobs, _layers
from ktplus.hypermodels._base import BaseHyperModel, Shared
from ktplus.hypermodels._knobs import invalid

POOLINGS = ("max", "avg")
REDUCTIONS = ("global_avg", "global_max", "flatten")
MAX_FILTERS = 512


class ConvHyperModel(BaseHyperModel):
    """A convolutional network search space for sequences, images and volumes.

    ``input_shape`` of rank 2 ``(steps, channels)`` gives Conv1D, rank 3
    ``(height, width, channels)`` Conv2D and rank 4 Conv3D. Each block has
    ``convs_per_block`` 'same'-padded convolutions (batch norm, activation)
    and a 2x pooling; filters double from block to block. Pooling is skipped
    once a spatial side would fall below 2, so every configuration builds,
    even on an 8x8 image. The head reduces the feature map (global pooling or
    flatten), applies dropout and an optional dense layer.

    Args:
        input_shape: Shape of one sample, channels last, rank 2, 3 or 4.
        num_classes: Number of classes (>= 2) for classification.
        conv_blocks: Number of convolutional blocks.
        convs_per_block: Convolutions in each block.
        filters: Filters of the first block (doubled in each later block).
        kernel_size: Convolution kernel size.
        pooling: "max" or "avg" (or a list).
        separable: Use separable convolutions (1D and 2D only).
        reduction_type: "global_avg", "global_max" or "flatten".
        dense_units: Units of the dense layer before the output; 0 for none.
        activation: Hidden activation.
        batch_norm: Batch normalization after each convolution.
        dropout: Dropout rate in the head.
        **kwargs: The shared options of `ktplus.BaseHyperModel`.

    Example:

    >>> import keras_tuner
    >>> import ktplus
    >>> hm = ktplus.ConvHyperModel(input_shape=(8, 8, 1), num_classes=10,
    ...                            regularizer=["l2", None], dropout=(0.0, 0.5))
    >>> hm.build(keras_tuner.HyperParameters()).output_shape
    (None, 10)
    """

    family = "conv"
    ranks = (2, 3, 4)

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int | None = None,
        *,
        conv_blocks: Any = (1, 3),
        convs_per_block: Any = (1, 2),
        filters: Any = (16, 64),
        kernel_size: Any = 3,
        pooling: Any = "max",
        separable: Any = False,
        reduction_type: Any = ["global_avg", "flatten"],  # noqa: B006 (read-only)
        dense_units: Any = 64,
        activation: Any = "relu",
        batch_norm: Any = True,
        dropout: Any = (0.0, 0.5),
        **kwargs: Any,
    ) -> None:
        super().__init__(input_shape, num_classes, activation=activation,
                         batch_norm=batch_norm, dropout=dropout, **kwargs)
        self.dims = len(self.input_shape) - 1
        self.knobs["conv_blocks"] = _knobs.int_knob("conv_blocks", conv_blocks, minimum=1)
        self.knobs["convs_per_block"] = _knobs.int_knob("convs_per_block", convs_per_block, minimum=1)
        self.knobs["filters"] = _knobs.int_knob("filters", filters, minimum=1, log=True)
        self.knobs["kernel_size"] = _knobs.int_knob("kernel_size", kernel_size, minimum=1)
        self.knobs["pooling"] = _knobs.choice_knob("pooling", pooling, POOLINGS)
        self.knobs["separable"] = _knobs.bool_knob("separable", separable)
        if self.dims == 3 and self._knob("separable").can_be(bool):
            raise invalid("separable", separable,
                          "False for 3D inputs (Keras has no SeparableConv3D)")
        self.knobs["reduction_type"] = _knobs.choice_knob("reduction_type", reduction_type, REDUCTIONS)
        self.knobs["dense_units"] = _knobs.int_knob("dense_units", dense_units, minimum=0, log=True)
        self._family_config = {
            "conv_blocks": conv_blocks, "convs_per_block": convs_per_block,
            "filters": filters, "kernel_size": kernel_size, "pooling": pooling,
            "separable": separable, "reduction_type": reduction_type,
            "dense_units": dense_units,
        }

    def _declare(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        names = ["conv_blocks", "convs_per_block", "filters", "kernel_size", "pooling",
                 "separable", "reduction_type", "dense_units"]
        return {n: self._knob(n).register(hp) for n in names}

    def _body(self, inputs: Any, params: dict[str, Any], shared: Shared) -> Any:
        x = inputs
        spatial = list(self.input_shape[:-1])
        filters = params["filters"]
        for _ in range(params["conv_blocks"]):
            for _ in range(params["convs_per_block"]):
                x = _layers.conv(
                    self.dims, filters, params["kernel_size"],
                    separable=params["separable"],
                    regularizer=shared.kernel_regularizer(),
                    use_bias=not shared.batch_norm,
                )(x)
                x = shared.norm_act(x)
            if _layers.can_downsample(spatial):
                x = _layers.pool(self.dims, params["pooling"])(x)
                spatial = _layers.halve(spatial)
            filters = min(filters * 2, MAX_FILTERS)
        x = _layers.reduce(self.dims, params["reduction_type"])(x)
        x = shared.drop(x)
        if params["dense_units"]:
            x = keras.layers.Dense(params["dense_units"],
                                   kernel_regularizer=shared.kernel_regularizer())(x)
            x = keras.layers.Activation(shared.activation)(x)
            x = shared.drop(x)
        return x
