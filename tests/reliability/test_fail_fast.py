"""Before the first trial, search() checks what it is given: one clear
error, and no trial started."""

from __future__ import annotations

import os

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    return x, y


def make(tmp_path, hypermodel=None, **kwargs):
    hm = hypermodel or ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=4)
    kwargs.setdefault("objective", "val_accuracy")
    return ktplus.RandomSearch(hm, max_trials=2, directory=tmp_path, project_name="v", **kwargs)


def no_trial_started(tuner, tmp_path):
    return not tuner.oracle.trials and not any(n.startswith("trial_") for n in os.listdir(tmp_path / "v"))


CASES = {
    "length mismatch": (lambda x, y: dict(x=x, y=y[:-1], validation_data=(x, y)), "has 20 samples but `y` has 19"),
    "nan in x": (lambda x, y: dict(x=np.where(x > 1.5, np.nan, x), y=y, validation_data=(x, y)), "NaN or inf"),
    "inf in validation": (lambda x, y: dict(x=x, y=y, validation_data=(x * np.inf, y)), "NaN or inf"),
    "labels out of range": (lambda x, y: dict(x=x, y=y + 1, validation_data=(x, y)), "num_classes=2"),
    "float labels": (lambda x, y: dict(x=x, y=y + 0.5, validation_data=(x, y)), "integer class labels"),
    "wrong shape": (lambda x, y: dict(x=x[:, :3], y=y, validation_data=(x, y)), "input_shape is (4,)"),
    "val objective without validation": (lambda x, y: dict(x=x, y=y), "validation data"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_data_fails_before_any_trial(case, xy, tmp_path):
    x, y = xy
    kwargs_fn, needle = CASES[case]
    tuner = make(tmp_path)
    with pytest.raises(ValueError, match="search\\(\\)") as info:
        tuner.search(epochs=1, verbose=0, **kwargs_fn(x, y))
    assert needle in str(info.value)
    assert no_trial_started(tuner, tmp_path)


def test_objective_must_be_a_compiled_metric(xy, tmp_path):
    x, y = xy
    tuner = make(tmp_path, objective=keras_tuner.Objective("val_auc", "max"))
    with pytest.raises(ValueError, match="'val_auc' is not among the model's metrics") as info:
        tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
    assert "accuracy" in str(info.value)
    assert no_trial_started(tuner, tmp_path)


def test_user_build_function_whose_input_does_not_fit(xy, tmp_path):
    x, y = xy

    def build(hp):
        model = keras.Sequential([keras.Input((7,)), keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    tuner = make(tmp_path, hypermodel=build)
    with pytest.raises(ValueError, match="does not fit the model built with the default hyperparameters"):
        tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
    assert no_trial_started(tuner, tmp_path)


def test_good_data_passes_and_regression_targets_are_checked(xy, tmp_path):
    x, y = xy
    tuner = make(tmp_path, objective="val_loss",
                 hypermodel=ktplus.DenseHyperModel(input_shape=(4,), task="regression", num_outputs=2,
                                                   layers=1, units=4))
    with pytest.raises(ValueError, match="num_outputs=2"):
        tuner.search(x, y.astype("float32"), validation_split=0.25, epochs=1, verbose=0)
    tuner.search(x, np.stack([x[:, 0], x[:, 1]], axis=1), validation_split=0.25, epochs=1, verbose=0)
    assert len(tuner.oracle.trials) == 2


def test_a_custom_hypermodel_fit_is_trusted_with_its_data(xy, tmp_path):
    x, y = xy

    class Preprocessing(keras_tuner.HyperModel):
        def build(self, hp):
            model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            return model

        def fit(self, hp, model, x, y, validation_data=None, **kwargs):
            xv, yv = validation_data
            return model.fit(x[:, :2], y, validation_data=(xv[:, :2], yv), **kwargs)

    tuner = make(tmp_path, hypermodel=Preprocessing())
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)  # 4 features in, 2 used
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED"], trials[0].message
    assert trials[0].metrics.exists("val_accuracy")
