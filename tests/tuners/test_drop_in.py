"""Drop-in: keras-tuner's patterns give the same results under ktplus's
tuners, and ktplus changes nothing for code that does not use it."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 4)).astype("float32")
    y = (x[:, 0] - x[:, 2] > 0).astype("int64")
    return (x[:80], y[:80]), (x[80:], y[80:])


def build(hp):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Choice("units", [4, 8]), activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class StepCounter(keras.callbacks.Callback):
    """Counts the batches of each epoch (a batch-level callback)."""

    steps: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        StepCounter.steps.append(0)

    def on_train_batch_end(self, batch, logs=None):
        StepCounter.steps[-1] += 1


@pytest.mark.parametrize("module", [keras_tuner, ktplus], ids=["keras_tuner", "ktplus"])
def test_batch_size_chosen_inside_a_custom_fit_takes_effect(module, data, tmp_path):
    (x, y), val = data

    class HM(keras_tuner.HyperModel):
        def build(self, hp):
            return build(hp)

        def fit(self, hp, model, *args, **kwargs):
            return model.fit(*args, batch_size=hp.Choice("batch_size", [40]), **kwargs)

    StepCounter.steps = []
    tuner = module.RandomSearch(HM(), objective="val_accuracy", max_trials=1, directory=tmp_path)
    tuner.search(x, y, validation_data=val, epochs=2, verbose=0, callbacks=[StepCounter()])
    assert StepCounter.steps == [2, 2]  # 80 samples in batches of 40


def test_a_batch_level_callback_inside_a_custom_fit_sees_every_batch(data, tmp_path):
    (x, y), val = data

    class HM(keras_tuner.HyperModel):
        def build(self, hp):
            return build(hp)

        def fit(self, hp, model, *args, callbacks=None, **kwargs):
            return model.fit(*args, callbacks=[*callbacks, StepCounter()], **kwargs)

    StepCounter.steps = []
    tuner = ktplus.RandomSearch(HM(), objective="val_accuracy", max_trials=1, directory=tmp_path)
    tuner.search(x, y, validation_data=val, epochs=1, batch_size=8, verbose=0)
    assert StepCounter.steps == [10]  # steps_per_execution stepped aside: every batch reported


def test_a_custom_fit_receives_the_arrays_keras_tuner_passes(data, tmp_path):
    (x, y), val = data
    received = []

    class HM(keras_tuner.HyperModel):
        def build(self, hp):
            return build(hp)

        def fit(self, hp, model, x, y, validation_data=None, **kwargs):
            received.append((type(x), type(y), type(validation_data[0])))
            return model.fit(x / 2.0, y, validation_data=validation_data, **kwargs)

    tuner = ktplus.RandomSearch(HM(), objective="val_accuracy", max_trials=2, directory=tmp_path)
    tuner.search(x, y, validation_data=val, epochs=1, verbose=0)
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED", "COMPLETED"]
    assert received == [(np.ndarray, np.ndarray, np.ndarray)] * 2


def test_fit_returning_a_dict_or_a_float_with_no_data(tmp_path):
    class Dict(keras_tuner.HyperModel):
        def build(self, hp):
            return build(hp)

        def fit(self, hp, model, *args, **kwargs):
            return {"score": hp.get("units") / 8.0}

    class Float(Dict):
        def fit(self, hp, model, *args, **kwargs):
            return hp.get("units") / 8.0

    t1 = ktplus.RandomSearch(Dict(), objective=keras_tuner.Objective("score", "max"), max_trials=2,
                             directory=tmp_path, project_name="d")
    t1.search()
    assert t1.oracle.get_best_trials(1)[0].score == 1.0
    t2 = ktplus.RandomSearch(Float(), max_trials=2, directory=tmp_path, project_name="f")
    t2.search()
    assert t2.oracle.get_best_trials(1)[0].score == 0.5  # the default objective is minimised


def test_multi_objective_list_works_as_in_keras_tuner(data, tmp_path):
    (x, y), val = data
    tuner = ktplus.RandomSearch(build, objective=["val_accuracy", "val_loss"], max_trials=2,
                                directory=tmp_path, project_name="mo")
    tuner.search(x, y, validation_data=val, epochs=2, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED", "COMPLETED"]
    for t in trials:
        value = t.metrics.get_last_value("val_loss") - t.metrics.get_last_value("val_accuracy")
        assert t.score == pytest.approx(value, rel=1e-5)
    frame = tuner.results()
    assert {"best/val_accuracy", "best/val_loss"} <= set(frame.columns)


@pytest.mark.parametrize("option", [dict(early_stopping=2), dict(lr_decay="plateau"), dict(pruning="median")])
def test_single_metric_options_refuse_a_list_objective(option, tmp_path):
    arg = next(iter(option))
    with pytest.raises(ValueError, match=f"`{arg}`.*objective"):
        ktplus.RandomSearch(build, objective=["val_accuracy", "val_loss"], max_trials=1, directory=tmp_path,
                            **option)


def test_best_models_keep_the_compiled_steps_per_execution(data, tmp_path):
    (x, y), val = data
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(self.model.steps_per_execution)

    tuner = ktplus.RandomSearch(build, objective="val_accuracy", max_trials=1, directory=tmp_path)
    tuner.search(x, y, validation_data=val, epochs=1, verbose=0, callbacks=[Probe()])
    assert seen == [3]  # raised for the trial's own fit (80 samples, batch 32)
    assert tuner.get_best_models(1)[0].steps_per_execution == 1
    assert tuner.load_model(tuner.oracle.get_best_trials(1)[0]).steps_per_execution == 1


def test_empty_validation_data_is_refused_before_any_trial(data, tmp_path):
    (x, y), _ = data
    tuner = ktplus.RandomSearch(build, objective="val_accuracy", max_trials=1, directory=tmp_path)
    with pytest.raises(ValueError, match="validation_data.*no samples"):
        tuner.search(x, y, validation_data=(x[:0], y[:0]), epochs=1, verbose=0)
    assert not tuner.oracle.trials


def test_a_second_search_trains_on_arrays_fixed_in_place(data, tmp_path):
    (x, y), _ = data
    x = x.copy()
    y = np.zeros_like(y)

    def constant(hp):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax",
                                                                        kernel_initializer="zeros")])
        model.compile(keras.optimizers.Adam(hp.Choice("lr", [0.2, 0.3])), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    tuner = ktplus.RandomSearch(constant, objective="accuracy", max_trials=1, directory=tmp_path)
    with pytest.raises(KeyboardInterrupt):  # keras-tuner skips on_search_end
        tuner.search(x, y, epochs=4, verbose=0, callbacks=[Interrupt()])
    y[:] = 1  # the labels were wrong: fixed in place, same array object
    tuner.search(x, y, epochs=4, verbose=0)
    trial = tuner.oracle.trials["0"]
    assert trial.status == "COMPLETED"
    assert trial.metrics.get_last_value("accuracy") == 1.0  # trained on the fixed labels


def test_subclass_overriding_run_trial_and_a_user_oracle(tmp_path):
    class MyTuner(ktplus.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            x = trial.hyperparameters.Float("x", -1.0, 1.0)
            return {"loss": (x - 0.5) ** 2}

    oracle = keras_tuner.oracles.RandomSearchOracle(objective="loss", max_trials=4, seed=3)
    tuner = MyTuner(oracle=oracle, directory=tmp_path, early_stopping=None)
    assert isinstance(tuner, keras_tuner.Tuner)
    tuner.search()
    assert len(tuner.oracle.trials) == 4
    best = tuner.get_best_hyperparameters(1)[0]
    scores = sorted(t.score for t in tuner.oracle.trials.values())
    assert tuner.oracle.get_best_trials(1)[0].score == scores[0]
    assert (best.get("x") - 0.5) ** 2 == pytest.approx(scores[0])
    # Every trial has its TensorBoard session, even with run_trial overridden.
    runs = sorted(p.name for p in Path(tuner.tensorboard_dir).glob("trial_*"))
    assert len(runs) == 4


def test_ktplus_tuner_with_any_oracle_gets_every_option(data, tmp_path):
    (x, y), val = data
    oracle = keras_tuner.oracles.GridSearchOracle(objective="val_accuracy", max_trials=2)
    tuner = ktplus.Tuner(oracle=oracle, hypermodel=build, directory=tmp_path, lr_decay="exponential",
                         early_stopping=5)
    tuner.search(x, y, validation_data=val, epochs=2, verbose=0)
    for t in tuner.oracle.trials.values():
        assert t.status == "COMPLETED" and t.metrics.get_last_value("epochs_run") == 2
        assert t.metrics.exists("learning_rate")  # the schedule logged its rate
    assert (tmp_path / "untitled_project" / "tensorboard").is_dir()


def test_importing_and_building_ktplus_changes_nothing_for_keras_tuner(tmp_path):
    code = f"""
import warnings, keras, numpy as np, keras_tuner
import tensorboard.summary.writer.event_file_writer  # adds urllib3's filter on import: not ours
from keras_tuner.src import utils
original, filters = utils.save_json, list(warnings.filters)
import ktplus, ktplus.tuners
def build(hp):
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(hp.Choice("u", [2]))])
    m.compile("sgd", "mse")
    return m
t = ktplus.RandomSearch(build, objective="loss", max_trials=1, directory={str(tmp_path)!r}, project_name="k")
assert utils.save_json is original, "building a tuner replaced keras-tuner's writer"
seen = []
class Probe(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        seen.append(utils.save_json is original)
x = np.ones((8, 2), "float32")
t.search(x, x, epochs=1, verbose=0, callbacks=[Probe()])
assert seen == [False], "keras-tuner's state writes were not atomic during a ktplus search"
assert utils.save_json is original and list(warnings.filters) == filters
kt = keras_tuner.RandomSearch(build, objective="loss", max_trials=1, directory={str(tmp_path)!r}, project_name="p")
kt.search(x, x, epochs=1, verbose=0)
assert utils.save_json is original
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_remote_directories_are_refused_at_construction():
    with pytest.raises(ValueError, match="`directory`.*gs://"):
        ktplus.RandomSearch(build, objective="loss", max_trials=1, directory="gs://bucket/runs")


def test_an_untested_keras_tuner_version_fails_loudly(monkeypatch):
    from ktplus import _compat

    monkeypatch.delenv("KTPLUS_SKIP_KERAS_TUNER_CHECK", raising=False)
    with pytest.raises(ImportError, match="keras-tuner 9.9.9 is installed"):
        _compat.check_keras_tuner_version("9.9.9")
    _compat.check_keras_tuner_version(keras_tuner.__version__)


@pytest.mark.parametrize("parts", [["gc_freeze"], ["checkpoint"]])
def test_each_fast_path_part_is_its_own_switch(parts, data, tmp_path):
    (x, y), val = data
    seen = []

    class Probe(keras.callbacks.Callback):
        def __init__(self, path):
            super().__init__()
            self.path = path

        def on_epoch_end(self, epoch, logs=None):
            seen.append((gc.get_freeze_count() > 0, os.path.exists(self.path)))

    tuner = ktplus.RandomSearch(build, objective="val_accuracy", max_trials=1, directory=tmp_path,
                                fast_path=parts)
    checkpoint = tuner._checkpoint_path("0")
    tuner.search(x, y, validation_data=val, epochs=2, verbose=0, callbacks=[Probe(checkpoint)])
    frozen = {f for f, _ in seen}
    written_during_training = any(w for _, w in seen)
    assert frozen == {parts == ["gc_freeze"]}
    assert written_during_training == (parts != ["checkpoint"])  # deferred: written once, at the end
    assert os.path.exists(checkpoint)


def test_no_warning_filters_are_installed(data, tmp_path):
    (x, y), val = data
    before = list(warnings.filters)
    tuner = ktplus.RandomSearch(build, objective="val_accuracy", max_trials=1, directory=tmp_path)
    tuner.search(x, y, validation_data=val, epochs=1, verbose=0)
    assert list(warnings.filters) == before


@pytest.mark.parametrize("make", [
    lambda d: ktplus.RandomSearch(max_trials=2, directory=d),
    lambda d: ktplus.Hyperband(objective="val_loss", max_epochs=2, directory=d),
    lambda d: ktplus.Tuner(keras_tuner.oracles.RandomSearchOracle(max_trials=2), directory=d),
])
def test_no_hypermodel_without_an_own_run_trial_is_keras_tuners_error(tmp_path, make):
    with pytest.raises(ValueError, match="Received `hypermodel=None`"):
        make(tmp_path / "p")
    assert not (tmp_path / "p").exists()

    class OwnRunTrial(ktplus.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            return trial.hyperparameters.Float("x", 0, 1)

    tuner = OwnRunTrial(keras_tuner.oracles.RandomSearchOracle(keras_tuner.Objective("score", "max"), max_trials=2),
                        directory=tmp_path / "own")
    tuner.search()
    assert len(tuner.oracle.trials) == 2
