"""check_hypermodel compares the normalization layer with statistics it
computes itself from the training rows: a hypermodel whose layer holds other
statistics (e.g. taken from part of the rows) fails the check."""

from __future__ import annotations

import numpy as np
import pytest

import ktplus
from ktplus.hypermodels._check import expected_normalization


@pytest.fixture
def data(rng):
    x = rng.normal(loc=3.0, scale=2.0, size=(12, 4)).astype("float32")
    return x, rng.integers(0, 3, size=12)


@pytest.mark.parametrize("mode", ["standardize", "minmax"])
def test_a_correct_hypermodel_passes(mode, data):
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, normalization=mode)
    assert len(ktplus.check_hypermodel(hm, n_samples=0, x=data[0], y=data[1])) == 1


class SkipsRows(ktplus.DenseHyperModel):
    """Takes its statistics from all rows but the last two (as a validation
    row leaking into, or a training row missing from, the statistics)."""

    def adapt(self, x, y=None, *, validation_split=None):
        super().adapt(np.asarray(x)[:-2], None if y is None else np.asarray(y)[:-2])


@pytest.mark.parametrize("mode", ["standardize", "minmax"])
def test_a_layer_with_other_statistics_fails(mode, data):
    hm = SkipsRows(input_shape=(4,), num_classes=3, normalization=mode)
    with pytest.raises(AssertionError, match=f"'{mode}' layer does not hold the training data's statistics"):
        ktplus.check_hypermodel(hm, n_samples=0, x=data[0], y=data[1])


def test_expected_statistics_are_numpys_per_channel():
    x = np.array([[[1.0, 7.0]], [[3.0, 7.0]], [[5.0, 7.0]]])  # 3 samples of shape (1, 2): channel 1 constant
    mean, var = expected_normalization(x, "standardize")
    np.testing.assert_allclose(mean, [3.0, 7.0])
    np.testing.assert_allclose(var, [8.0 / 3.0, 1.0])
    low, squared_range = expected_normalization(x, "minmax")
    np.testing.assert_allclose(low, [1.0, 7.0])
    np.testing.assert_allclose(squared_range, [16.0, 1.0])
