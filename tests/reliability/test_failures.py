"""Failing trials are recorded with their error and the search goes on;
keras-tuner's retry and consecutive-failure limits are honoured."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import ktplus


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    return (x[:32], y[:32]), (x[32:], y[32:])


def model(units):
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units, activation="relu"),
                          keras.layers.Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


class Exhausted(keras.callbacks.Callback):
    """Stands in for a resource error raised during training."""

    def on_epoch_end(self, epoch, logs=None):
        if self.model.count_params() > 100:
            raise MemoryError("out of memory (simulated) for a large model")


def test_failing_trials_are_recorded_and_the_search_goes_on(data, tmp_path):
    (x, y), val = data
    builds = []

    def build(hp):
        kind = hp.Choice("kind", ["ok", "build_error", "resource_error", "ok2"])
        builds.append(kind)
        if kind == "build_error":
            raise ValueError("cannot build this configuration (simulated)")
        return model(64 if kind == "resource_error" else 4)

    tuner = ktplus.GridSearch(build, objective="val_accuracy", max_trials=4, max_retries_per_trial=1,
                              max_consecutive_failed_trials=3, directory=tmp_path, project_name="f")
    tuner.search(x, y, validation_data=val, epochs=1, verbose=0, callbacks=[Exhausted()])
    frame = tuner.results().set_index("kind")
    assert frame.loc["ok", "status"] == "completed" and frame.loc["ok2", "status"] == "completed"
    assert frame.loc["build_error", "status"] == "failed"
    assert "cannot build this configuration" in frame.loc["build_error", "message"]
    assert frame.loc["resource_error", "status"] == "failed"
    assert "out of memory" in frame.loc["resource_error", "message"]
    # max_retries_per_trial=1: each failing configuration was tried twice
    # (builds: 1 to populate the space, 1 for the validation, then the trials).
    assert builds.count("build_error") == 2
    assert tuner.oracle.get_best_trials(1)[0].hyperparameters.get("kind") in ("ok", "ok2")


def test_the_consecutive_failure_limit_names_the_failed_trials(data, tmp_path):
    (x, y), val = data

    def build(hp):
        units = hp.Int("units", 2, 6)
        if units > 2:
            raise RuntimeError(f"no model with {units} units (simulated)")
        return model(units)

    tuner = ktplus.GridSearch(build, objective="val_accuracy", max_trials=5, max_consecutive_failed_trials=2,
                              directory=tmp_path, project_name="c")
    with pytest.raises(RuntimeError) as info:
        tuner.search(x, y, validation_data=val, epochs=1, verbose=0)
    message = str(info.value)
    assert "exceeded the limit of 2" in message and "failed trials:" in message
    assert "trial 1: RuntimeError: no model with 3 units (simulated)" in message
    assert "trial 2: RuntimeError: no model with 4 units (simulated)" in message
    statuses = {t.trial_id: str(t.status) for t in tuner.oracle.trials.values()}
    assert statuses["0"] == "COMPLETED"
