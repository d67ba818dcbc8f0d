"""What ktplus adds to a trial, kept small without changing a result: the
trial's model gets its training state before fit (Keras then traces its
train step once, not twice), the pre-flight check evaluates eagerly (no
traced function for two samples) and confirms an error traced, and a curve
is fsynced when its trial ends, not at every epoch (each write is still an
atomic rename: a killed process never leaves half a file)."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.backend.common.symbolic_scope import in_symbolic_scope

import ktplus
from ktplus._atomic import atomic_write_json
from ktplus.training._data import DataCache
from ktplus.tuners._fast_path import build_for_fit


class Calls(keras.layers.Layer):
    """The identity, counting the Python runs of ``call`` by mode: a traced
    function runs it once per trace, an eager one at every batch (Keras'
    symbolic shape inference, which also runs it, is not counted)."""

    traced = {True: 0, False: 0}
    eager = 0

    def call(self, x, training=None):
        if tf.executing_eagerly():
            Calls.eager += 1
        elif not in_symbolic_scope():  # a trace, not Keras' shape inference
            Calls.traced[bool(training)] += 1
        return x

    @classmethod
    def reset(cls):
        cls.traced = {True: 0, False: 0}
        cls.eager = 0


def model(units=8, seed=0):
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input((64,)), Calls(), keras.layers.Dense(units, activation="relu"),
                          keras.layers.Dropout(0.2), keras.layers.Dense(10, activation="softmax")])
    m.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def datasets(digits):
    (x, y), (xv, yv) = digits
    (train,), kwargs = DataCache().convert((x, y), {"validation_data": (xv, yv)}, batch_size=32)
    return train, kwargs["validation_data"]


def test_a_model_built_before_fit_traces_its_train_step_once_and_trains_exactly_as_without(digits):
    runs = {}
    for built in (False, True):
        m = model()
        keras.utils.set_random_seed(1)
        train, valid = datasets(digits)  # the same shuffles (each iteration of a pipeline draws anew)
        if built:
            assert build_for_fit(m, train.element_spec)
            assert m.optimizer.built and m._compile_metrics.built
        Calls.reset()  # fit's traces only
        history = m.fit(train, validation_data=valid, epochs=3, verbose=0).history
        runs[built] = (dict(Calls.traced), history, m.get_weights(), [v.numpy() for v in m.optimizer.variables])
    (before, h0, w0, o0), (after, h1, w1, o1) = runs[False], runs[True]
    assert before[True] == 2 and after[True] == 1  # the train step: traced again without its new variables
    assert before[False] == after[False] == 1  # the test step
    assert h0 == h1
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1))
    assert len(o0) == len(o1) and all(np.array_equal(a, b) for a, b in zip(o0, o1))


class OwnStep(keras.Sequential):
    def train_step(self, data):
        return super().train_step(data)


@pytest.mark.parametrize("case", ["not compiled", "own train_step", "unbuilt layers"])
def test_build_for_fit_leaves_alone_what_keras_should_build(case, digits):
    train, _ = datasets(digits)
    if case == "own train_step":
        m = OwnStep([keras.Input((64,)), keras.layers.Dense(10)])
    elif case == "unbuilt layers":
        m = keras.Sequential([keras.layers.Dense(10)])
    else:
        m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    if case != "not compiled":
        m.compile("adam", "sparse_categorical_crossentropy")
    assert not build_for_fit(m, train.element_spec)
    assert getattr(m, "optimizer", None) is None or not m.optimizer.built


class Seen(keras.callbacks.Callback):
    """Whether the trial's optimizer was built when its fit began."""

    built: list[bool] = []

    def on_train_begin(self, logs=None):
        Seen.built.append(bool(self.model.optimizer.built))


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_trial_model_has_its_optimizer_built_before_fit_with_the_data_part_only(fast_path, digits, tmp_path):
    (x, y), (xv, yv) = digits
    Seen.built = []
    hm = ktplus.DenseHyperModel(input_shape=(64,), num_classes=10, layers=1, units=(8, 16))
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=2, directory=tmp_path, seed=0,
                                fast_path=fast_path, tensorboard=False, pack=1)
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0, callbacks=[Seen()])
    assert Seen.built == [fast_path] * 2


def graph_only(hp):
    """A model whose layer runs only traced (refused eagerly)."""

    class GraphOnly(keras.layers.Layer):
        def call(self, x):
            if tf.executing_eagerly():
                raise RuntimeError("this layer runs only in a traced function")
            return x

    m = keras.Sequential([keras.Input((64,)), GraphOnly(), keras.layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def counted(hp):
    m = keras.Sequential([keras.Input((64,)), Calls(), keras.layers.Dense(hp.Int("units", 4, 8),
                                                                         activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_the_preflight_check_traces_nothing_and_confirms_an_error_traced(digits, tmp_path):
    from ktplus.tuners._validate import validate_search_inputs

    (x, y), (xv, yv) = digits
    fit = {"validation_data": (xv, yv), "epochs": 1}
    Calls.reset()
    tuner = ktplus.RandomSearch(counted, objective="val_accuracy", max_trials=1, directory=tmp_path,
                                project_name="counted", tensorboard=False)
    validate_search_inputs(tuner, (x, y), fit, True)
    assert Calls.eager == 1 and Calls.traced == {True: 0, False: 0}
    # Run only traced, the model passes (and trains): an eager failure is not the data's fault.
    tuner = ktplus.RandomSearch(graph_only, objective="val_accuracy", max_trials=1, directory=tmp_path,
                                project_name="graph_only", tensorboard=False)
    tuner.search(x, y, **fit, verbose=0)
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED"]
    # Data that does not fit fails both ways: one clear error.
    with pytest.raises(ValueError, match="does not fit the model built with the default"):
        validate_search_inputs(tuner, (x[:, :10], y), {"validation_data": (xv[:, :10], yv)}, True)


@pytest.fixture
def fsyncs(monkeypatch):
    """The paths fsynced (the real fsync still runs)."""
    paths: list[str] = []
    real = os.fsync

    def fsync(fd):
        try:
            paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # no /proc: counted, unnamed
            paths.append("")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return paths


def test_an_atomic_write_without_durable_replaces_the_file_whole_without_fsync(tmp_path, fsyncs):
    path = tmp_path / "state.json"
    atomic_write_json(path, {"a": 1})
    assert len(fsyncs) == 2  # the file, then its directory
    atomic_write_json(path, {"a": [2] * 1000}, durable=False)
    assert len(fsyncs) == 2
    assert json.loads(path.read_text()) == {"a": [2] * 1000}
    assert os.listdir(tmp_path) == ["state.json"]  # no temporary file left


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads fsynced paths from /proc")
def test_a_curve_is_fsynced_when_its_trial_ends_not_at_every_epoch(digits, tmp_path, fsyncs):
    (x, y), (xv, yv) = digits
    hm = ktplus.DenseHyperModel(input_shape=(64,), num_classes=10, layers=1, units=8)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=2, directory=tmp_path, seed=0,
                                pruning="median", pack=1)
    tuner.search(x, y, validation_data=(xv, yv), epochs=3, verbose=0)
    curves = [p for p in fsyncs if os.path.basename(p).startswith(".trial_") and "ktplus_curves" in p]
    assert len(curves) == 2  # one per trial (its end), none of the six epochs' writes
    for trial_id in tuner.oracle.trials:
        state = json.loads(tuner.curves.path(trial_id).read_text())
        assert state["state"] == "completed" and len(state["values"]) == 3
    # keras-tuner's own state files: atomic (renamed into place) but never fsynced, as keras-tuner writes them
    assert not [p for p in fsyncs if "trial.json" in p or "oracle.json" in p]
    assert all((tuner.project_dir and os.path.exists(os.path.join(tuner.project_dir, f"trial_{t}", "trial.json")))
               for t in tuner.oracle.trials)
