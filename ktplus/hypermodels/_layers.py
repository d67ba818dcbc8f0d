"""Rank-dependent layer classes and the downsampling guard."""

from __future__ import annotations

import math
from typing import Any

import keras

_CONV = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_SEPARABLE = {1: keras.layers.SeparableConv1D, 2: keras.layers.SeparableConv2D}
_MAX_POOL = {1: keras.layers.MaxPooling1D, 2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D}
_AVG_POOL = {1: keras.layers.AveragePooling1D, 2: keras.layers.AveragePooling2D,
             3: keras.layers.AveragePooling3D}
_GLOBAL_AVG = {1: keras.layers.GlobalAveragePooling1D, 2: keras.layers.GlobalAveragePooling2D,
               3: keras.layers.GlobalAveragePooling3D}
_GLOBAL_MAX = {1: keras.layers.GlobalMaxPooling1D, 2: keras.layers.GlobalMaxPooling2D,
               3: keras.layers.GlobalMaxPooling3D}

#: Smallest spatial size a 2x downsampling may produce.
MIN_SPATIAL = 2


def can_downsample(spatial: list[int]) -> bool:
    """Whether halving every spatial dimension keeps each >= MIN_SPATIAL."""
    return min(spatial) >= 2 * MIN_SPATIAL


def halve(spatial: list[int]) -> list[int]:
    return [math.ceil(s / 2) for s in spatial]


def conv(dims: int, filters: int, kernel_size: int, *, strides: int = 1,
         separable: bool = False, regularizer: Any = None, use_bias: bool = True) -> keras.layers.Layer:
    """A 'same'-padded convolution of the given spatial rank."""
    if separable:
        return _SEPARABLE[dims](
            filters, kernel_size, strides=strides, padding="same", use_bias=use_bias,
            depthwise_regularizer=regularizer, pointwise_regularizer=regularizer,
        )
    return _CONV[dims](
        filters, kernel_size, strides=strides, padding="same", use_bias=use_bias,
        kernel_regularizer=regularizer,
    )


def pool(dims: int, kind: str) -> keras.layers.Layer:
    cls = _MAX_POOL[dims] if kind == "max" else _AVG_POOL[dims]
    return cls(pool_size=2, padding="same")


def reduce(dims: int, kind: str) -> keras.layers.Layer:
    """Global average/max pooling or flatten."""
    if kind == "global_avg":
        return _GLOBAL_AVG[dims]()
    if kind == "global_max":
        return _GLOBAL_MAX[dims]()
    return keras.layers.Flatten()
