"""A trial's checkpoint write does not rebuild Keras' saving skip-sets:
Keras caches them under one key and reads another, so each
``save_weights`` would build reference Layer, Optimizer and Metric objects
again (`ktplus._compat.keras_saving_cached`)."""

from __future__ import annotations

import collections

import keras
import numpy as np
from keras.src.saving import saving_lib

import ktplus
from ktplus import _compat


def _counting(monkeypatch):
    calls: collections.Counter = collections.Counter()
    original = saving_lib.get_attr_skipset

    def counted(obj_type):
        calls[obj_type] += 1
        return original(obj_type)

    monkeypatch.setattr(saving_lib, "get_attr_skipset", counted)
    monkeypatch.setattr(_compat, "_SKIPSETS", {})  # this process may have filled it already
    return calls


def test_a_search_computes_each_skip_set_once_and_its_checkpoints_load(tmp_path, monkeypatch, digits):
    (x, y), val = digits
    calls = _counting(monkeypatch)
    hm = ktplus.DenseHyperModel(input_shape=(64,), num_classes=10, layers=1, units=[8, 16], dropout=0.0)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=3, seed=0, pack=1,
                                directory=tmp_path, project_name="p", tensorboard=False)
    tuner.search(x[:128], y[:128], validation_data=val, epochs=2, verbose=0)
    assert len(tuner.oracle.trials) == 3
    assert calls and set(calls.values()) == {1}, calls  # three checkpoints written, each set built once

    monkeypatch.undo()
    best = tuner.oracle.get_best_trials(1)[0]
    model = tuner.get_best_models(1)[0]  # the checkpoint, loaded by keras-tuner's own load_model
    assert model.evaluate(*val, verbose=0, return_dict=True)["accuracy"] == np.float32(best.score)


def test_the_file_written_loads_as_keras_own(tmp_path, monkeypatch):
    calls = _counting(monkeypatch)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile("adam", "mse")
    model.fit(np.ones((8, 4)), np.ones((8, 3)), verbose=0)
    for i in range(3):
        with _compat.keras_saving_cached():
            model.save_weights(tmp_path / f"{i}.weights.h5")
    assert calls and set(calls.values()) == {1}, calls
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    other.load_weights(tmp_path / "2.weights.h5")
    for a, b in zip(model.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert saving_lib.get_attr_skipset.__name__ == "counted"  # Keras' own function back after each block


def test_nested_blocks_restore_keras_function_when_the_last_ends(monkeypatch):
    calls = _counting(monkeypatch)
    with _compat.keras_saving_cached():
        with _compat.keras_saving_cached():
            inner = saving_lib.get_attr_skipset("Layer")
        outer = saving_lib.get_attr_skipset("Layer")  # the outer block still memoizes
    assert outer is inner and calls == {"Layer": 1}
    assert saving_lib.get_attr_skipset.__name__ == "counted"  # Keras' function back

