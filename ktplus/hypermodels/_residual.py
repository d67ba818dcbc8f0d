"""The residual (ResNet-style) family for 1D and 2D inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner

from ktplus.hypermodels import _knobs, _layers
from ktplus.hypermodels._base import BaseHyperModel, Shared

BLOCK_TYPES = ("basic", "bottleneck")
BOTTLENECK_EXPANSION = 4
MAX_FILTERS = 512


class ResidualHyperModel(BaseHyperModel):
    """A ResNet-style search space for sequences (rank 2) and images (rank 3).

    A 3-wide stem convolution, then ``stages`` stages of ``blocks_per_stage``
    residual blocks. Each stage after the first doubles the filters and
    halves the spatial size with a strided first block, unless that would
    make a side smaller than 2. Blocks are "basic" (two 3-wide convolutions)
    or "bottleneck" (1-3-1 with 4x expansion), in the original post-activation
    form or the pre-activation form (He et al., 2016). A 1-wide projection
    shortcut is used wherever the shape changes. The head is global average
    pooling and dropout.

    Args:
        input_shape: Shape of one sample, channels last, rank 2 or 3.
        num_classes: Number of classes (>= 2) for classification.
        stages: Number of stages.
        blocks_per_stage: Residual blocks in each stage.
        filters: Filters of the first stage (doubled in each later stage).
        block_type: "basic" or "bottleneck" (or a list).
        preactivation: Use pre-activation blocks (or ``[False, True]``).
        activation: Hidden activation.
        batch_norm: Batch normalization inside blocks.
        dropout: Dropout rate in the head.
        **kwargs: The shared options of `ktplus.BaseHyperModel`.

    Example:

    >>> import keras_tuner
    >>> import ktplus
    >>> hm = ktplus.ResidualHyperModel(input_shape=(8, 8, 1), num_classes=10,
    ...                                block_type=["basic", "bottleneck"])
    >>> hm.build(keras_tuner.HyperParameters()).output_shape
    (None, 10)
    """

    family = "residual"
    ranks = (2, 3)

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int | None = None,
        *,
        stages: Any = (1, 3),
        blocks_per_stage: Any = (1, 2),
        filters: Any = (16, 64),
        block_type: Any = "basic",
        preactivation: Any = False,
        activation: Any = "relu",
        batch_norm: Any = True,
        dropout: Any = (0.0, 0.5),
        **kwargs: Any,
    ) -> None:
        super().__init__(input_shape, num_classes, activation=activation,
                         batch_norm=batch_norm, dropout=dropout, **kwargs)
        self.dims = len(self.input_shape) - 1
        self.knobs["stages"] = _knobs.int_knob("stages", stages, minimum=1)
        self.knobs["blocks_per_stage"] = _knobs.int_knob("blocks_per_stage", blocks_per_stage, minimum=1)
        self.knobs["filters"] = _knobs.int_knob("filters", filters, minimum=1, log=True)
        self.knobs["block_type"] = _knobs.choice_knob("block_type", block_type, BLOCK_TYPES)
        self.knobs["preactivation"] = _knobs.bool_knob("preactivation", preactivation)
        self._family_config = {
            "stages": stages, "blocks_per_stage": blocks_per_stage, "filters": filters,
            "block_type": block_type, "preactivation": preactivation,
        }

    def _declare(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        names = ["stages", "blocks_per_stage", "filters", "block_type", "preactivation"]
        return {n: self._knob(n).register(hp) for n in names}

    def _conv(self, shared: Shared, filters: int, kernel: int, strides: int = 1) -> keras.layers.Layer:
        return _layers.conv(self.dims, filters, kernel, strides=strides,
                            regularizer=shared.kernel_regularizer(),
                            use_bias=not shared.batch_norm)

    def _bn(self, x: Any, shared: Shared) -> Any:
        return keras.layers.BatchNormalization()(x) if shared.batch_norm else x

    def _block(self, x: Any, filters: int, strides: int, params: dict[str, Any], shared: Shared) -> Any:
        bottleneck = params["block_type"] == "bottleneck"
        out_filters = filters * BOTTLENECK_EXPANSION if bottleneck else filters
        project = strides != 1 or x.shape[-1] != out_filters
        act = shared.activation
        if params["preactivation"]:
            y = shared.norm_act(x)
            shortcut = self._conv(shared, out_filters, 1, strides)(y) if project else x
        else:
            y = x
            shortcut = (self._bn(self._conv(shared, out_filters, 1, strides)(x), shared)
                        if project else x)
        if bottleneck:
            kernels = [(filters, 1, 1), (filters, 3, strides), (out_filters, 1, 1)]
        else:
            kernels = [(filters, 3, strides), (filters, 3, 1)]
        for i, (f, k, s) in enumerate(kernels):
            last = i == len(kernels) - 1
            y = self._conv(shared, f, k, s)(y)
            if params["preactivation"]:
                if not last:
                    y = shared.norm_act(y)
            else:
                y = self._bn(y, shared)
                if not last:
                    y = keras.layers.Activation(act)(y)
        y = keras.layers.Add()([shortcut, y])
        if not params["preactivation"]:
            y = keras.layers.Activation(act)(y)
        return y

    def _body(self, inputs: Any, params: dict[str, Any], shared: Shared) -> Any:
        x = self._conv(shared, params["filters"], 3)(inputs)
        if not params["preactivation"]:
            x = shared.norm_act(x)
        spatial = list(self.input_shape[:-1])
        for stage in range(params["stages"]):
            filters = min(params["filters"] * 2**stage, MAX_FILTERS)
            for block in range(params["blocks_per_stage"]):
                strides = 1
                if stage > 0 and block == 0 and _layers.can_downsample(spatial):
                    strides = 2
                    spatial = _layers.halve(spatial)
                x = self._block(x, filters, strides, params, shared)
        if params["preactivation"]:
            x = shared.norm_act(x)
        x = _layers.reduce(self.dims, "global_avg")(x)
        return shared.drop(x)
