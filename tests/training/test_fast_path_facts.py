"""The fast path reads its facts from Keras: the dtypes of converted data are
those of Keras' own array adapter, and steps_per_execution steps aside for
any callback with a batch-level hook as Keras' CallbackList tells it (a
function set on the instance, as LambdaCallback does, included)."""

from __future__ import annotations

import keras
import keras_tuner
import numpy as np
import pytest
from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

import ktplus
from ktplus._compat import batch_hook_names
from ktplus.training._data import DataCache
from ktplus.tuners._fast_path import FastPath

N = 70  # epochs of 3 batches of 32 (the last one partial)


def regression(n=N):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))  # float64, as numpy makes it
    return x, x.sum(axis=1, keepdims=True), rng.uniform(0.5, 1.5, size=n)


def squared_difference(y_true, y_pred):
    """keras-io's "custom metric as the objective": plain ``y_true - y_pred``."""
    return keras.ops.mean(keras.ops.square(y_true - y_pred))


def build(hp):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(hp.Int("units", 2, 4)),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), loss="mse", metrics=[squared_difference])
    return model


def test_float64_numpy_data_trains_with_a_metric_subtracting_y_true_and_y_pred(tmp_path):
    x, y, w = regression()
    tuner = ktplus.RandomSearch(build, objective=keras_tuner.Objective("val_squared_difference", "min"),
                                max_trials=2, directory=tmp_path, project_name="f64", tensorboard=False)
    tuner.search(x, y, sample_weight=w, validation_data=(x[:20], y[:20], w[:20]), epochs=2, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED"] * 2
    assert all(np.isfinite(t.score) for t in trials)


def test_converted_data_has_the_dtypes_of_keras_own_array_adapter():
    x, y, w = regression()
    x16 = x.astype("float16")
    labels = np.arange(N) % 3  # int64: kept as it is
    (ds,), kwargs = DataCache().convert((x16, y), {"sample_weight": w, "validation_data": (x, labels, w),
                                                   "shuffle": False}, batch_size=32)
    ours = [tuple(np.asarray(t) for t in batch) for batch in ds]
    theirs = list(ArrayDataAdapter(x16, y, sample_weight=w, batch_size=32, shuffle=False).get_numpy_iterator())
    assert [tuple(a.dtype for a in b) for b in ours] == [tuple(a.dtype for a in b) for b in theirs]
    assert ours[0][0].dtype == keras.backend.floatx()
    assert all(np.array_equal(a, b) for o, t in zip(ours, theirs) for a, b in zip(o, t))
    val = next(iter(kwargs["validation_data"]))
    theirs = next(iter(ArrayDataAdapter(x, labels, sample_weight=w, batch_size=256, shuffle=False)
                       .get_numpy_iterator()))
    assert [np.asarray(t).dtype for t in val] == [a.dtype for a in theirs]


class _Overriding(keras.callbacks.Callback):
    def on_test_batch_end(self, batch, logs=None):
        pass


def _on_instance(hook):
    callback = keras.callbacks.Callback()
    setattr(callback, hook, lambda batch, logs=None: None)
    return callback


def _steps_per_execution(callbacks):
    """The steps_per_execution the fast path gives a trial's model."""
    x, y, _ = regression()
    fast = FastPath(frozenset({"data", "steps_per_execution"}))
    with fast.search(), fast.fit(keras_tuner.HyperModel(), keras_tuner.HyperParameters(), (x, y), {},
                                 callbacks):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        return fast.after_build(model).steps_per_execution


@pytest.mark.parametrize("hook", batch_hook_names())
def test_a_batch_hook_set_on_the_instance_keeps_steps_per_execution_at_one(hook):
    assert _steps_per_execution([_on_instance(hook)]) == 1


@pytest.mark.parametrize("callback", [
    lambda: keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: None),
    lambda: keras.callbacks.LambdaCallback(on_batch_begin=lambda batch, logs: None),
    _Overriding,
], ids=["lambda_train_batch_end", "lambda_batch_begin", "overriding_test_batch_end"])
def test_batch_level_callbacks_keep_steps_per_execution_at_one(callback):
    assert _steps_per_execution([callback()]) == 1


def test_epoch_level_callbacks_keep_steps_per_execution_raised():
    callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None),
                 keras.callbacks.EarlyStopping(), keras.callbacks.ReduceLROnPlateau()]
    assert _steps_per_execution(callbacks) == 3


def test_a_lambda_callback_on_train_batch_end_is_called_at_every_batch(tmp_path):
    x, y = (a.astype("float32") for a in regression()[:2])
    batches: list[int] = []
    every_batch = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))
    tuner = ktplus.RandomSearch(build, objective="val_loss", max_trials=1, directory=tmp_path,
                                project_name="lambda", tensorboard=False)
    tuner.search(x, y, validation_data=(x, y), epochs=2, verbose=0, callbacks=[every_batch])
    assert batches == [0, 1, 2] * 2
