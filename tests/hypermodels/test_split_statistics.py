"""With ``validation_split=``, the statistics of data preparation (the
normalization layer's mean, the balanced class weights) come from exactly the
rows Keras trains on: Keras' own split, the first ``floor(n * (1 - split))``
samples, never the boundary row Keras validates on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from keras.src.trainers.data_adapters.array_slicing import train_validation_split
from sklearn.utils.class_weight import compute_class_weight

import ktplus

N, SPLIT = 10, 0.25  # 7.5 training rows: Keras trains on 7; ceil() would take 8


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3)).astype("float32")
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    x[7] = 1e4  # the first validation row: an extreme outlier
    return x, y


def test_keras_trains_on_the_rows_the_test_expects():
    x, y = _data()
    (x_train, y_train), _ = train_validation_split((x, y), SPLIT)
    assert len(x_train) == math.floor(N * (1 - SPLIT)) == 7


@pytest.mark.parametrize("normalization", ["standardize", "minmax"])
def test_normalization_statistics_come_from_the_rows_keras_trains_on(normalization, tmp_path):
    x, y = _data()
    hm = ktplus.DenseHyperModel((3,), 2, layers=1, units=4, normalization=normalization)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path,
                                project_name="p", tensorboard=False)
    tuner.search(x, y, validation_split=SPLIT, epochs=1, verbose=0)
    (x_train, _), _ = train_validation_split((x, y), SPLIT)
    layer = tuner.get_best_models(1)[0].get_layer(normalization)
    expected = x_train.mean(0) if normalization == "standardize" else x_train.min(0)
    np.testing.assert_allclose(np.asarray(layer.adapt_mean), expected, rtol=1e-5, atol=1e-5)
    if normalization == "standardize":
        np.testing.assert_allclose(np.asarray(layer.adapt_variance), x_train.var(0), rtol=1e-4, atol=1e-5)
    else:  # minmax: the range is max - min of the training rows
        np.testing.assert_allclose(np.asarray(layer.adapt_variance), (x_train.max(0) - x_train.min(0)) ** 2,
                                   rtol=1e-4, atol=1e-5)


def test_balanced_class_weights_come_from_the_rows_keras_trains_on(tmp_path):
    x, y = _data()
    hm = ktplus.DenseHyperModel((3,), 2, layers=1, units=4, class_weight="balanced")
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path,
                                project_name="p", tensorboard=False)
    tuner.search(x, y, validation_split=SPLIT, epochs=1, verbose=0)
    (y_train, _), _ = train_validation_split((y, None), SPLIT)
    weights = compute_class_weight("balanced", classes=np.array([0, 1]), y=y_train)
    assert tuner.hypermodel.statistics.count == 7
    assert tuner.hypermodel.statistics.class_weights(2) == pytest.approx({0: weights[0], 1: weights[1]})
