"""ktplus tuners: every option on each of the four classes, with real
(tiny) Keras models."""

from __future__ import annotations

import gc
import json
import math
import weakref
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus

TUNERS = [ktplus.RandomSearch, ktplus.BayesianOptimization, ktplus.Hyperband, ktplus.GridSearch]
IDS = [t.__name__ for t in TUNERS]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return (x[:64], y[:64]), (x[64:], y[64:])


def make(cls, hypermodel, tmp_path, **kwargs):
    # Hyperband: a bracket of three 1-epoch trials, one continued to 3 epochs, and two 3-epoch trials.
    budget = {"max_epochs": 3, "hyperband_iterations": 1} if cls is ktplus.Hyperband else {"max_trials": 2}
    kwargs.setdefault("objective", "val_accuracy")
    return cls(hypermodel, directory=tmp_path, project_name="p", seed=0, **budget, **kwargs)


def trial_metric(trial, name):
    return trial.metrics.get_last_value(name) if trial.metrics.exists(name) else None


class RecordLR(keras.callbacks.Callback):
    """Writes each trial's (epoch, lr) to a file (deep-copyable)."""

    def __init__(self, path):
        super().__init__()
        self.path = str(path)

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path, "a") as f:
            f.write(json.dumps([id(self.model), epoch, float(logs["learning_rate"])]) + "\n")


OPTIONS = {
    "lr_decay": dict(lr_decay="exponential"),
    "early_stopping": dict(early_stopping=1),
    # Accuracy never exceeds 1.01: every trial is pruned after its first epoch past the warmup.
    "pruning": dict(pruning=ktplus.ThresholdPruner(lower=1.01, n_warmup_epochs=1)),
}
# fast_path=False with every tuner: tests/combinations (all pairs of options).


class SeenSteps(keras.callbacks.Callback):
    """Records each fit's steps_per_execution (epoch-level only, deep-copyable)."""

    seen: list[int] = []

    def on_train_begin(self, logs=None):
        SeenSteps.seen.append(int(self.model.steps_per_execution))


def _budget(trial):
    """The epochs a trial was asked to train (Hyperband: its round's)."""
    values = trial.hyperparameters.values
    return values.get("tuner/epochs", 4) - values.get("tuner/initial_epoch", 0)


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("cls", TUNERS, ids=IDS)
def test_each_option_on_each_tuner(cls, option, data, tmp_path):
    (x, y), val = data
    # A negligible learning rate for early stopping: the objective is flat, so it must stop.
    lr = 1e-12 if option == "early_stopping" else [0.01, 0.001]
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=[8, 16],
                                learning_rate=lr, dropout=0.0)
    tuner = make(cls, hm, tmp_path, **OPTIONS[option])
    assert isinstance(tuner, getattr(keras_tuner, cls.__name__))
    SeenSteps.seen = []
    tuner.search(x, y, validation_data=val, epochs=4, verbose=0, callbacks=[SeenSteps()])
    trials = list(tuner.oracle.trials.values())
    assert trials and all(t.status == "COMPLETED" for t in trials)
    for t in trials:
        budget, epochs_run = _budget(t), trial_metric(t, "epochs_run")
        if option == "lr_decay":
            lr0 = t.hyperparameters.get("learning_rate")
            best_epoch = int(trial_metric(t, "best_epoch"))
            assert trial_metric(t, "learning_rate") == pytest.approx(lr0 * 0.9 ** (best_epoch - 1), rel=1e-4)
        if option == "early_stopping":
            assert epochs_run == min(2, budget)  # the first epoch, then patience 1
        if option == "pruning" and t.hyperparameters.values.get("tuner/initial_epoch", 0) == 0:
            assert trial_metric(t, "pruned") == (1.0 if budget >= 2 else 0.0)
            assert epochs_run == min(2, budget)
        if option != "early_stopping" and option != "pruning":
            assert epochs_run == budget
    if option == "pruning":
        curves = list(Path(tmp_path, "p", "ktplus_curves").glob("trial_*.json"))
        assert len(curves) == len(trials)
    # 64 samples in batches of 32: two steps per execution on the fast path.
    assert set(SeenSteps.seen) == {2}
    assert tuner.get_best_models(1)[0].output_shape == (None, 2)


@pytest.mark.parametrize("cls", TUNERS, ids=IDS)
def test_lr_decay_tune_makes_schedule_a_hyperparameter(cls, data, tmp_path):
    (x, y), val = data
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=8, dropout=0.0)
    tuner = make(cls, hm, tmp_path, lr_decay="tune")
    names = {hp.name for hp in tuner.oracle.get_space().space}
    assert {"lr_decay", "lr_decay_decay_rate", "lr_warmup_epochs"} <= names
    tuner.search(x, y, validation_data=val, epochs=2, verbose=0)
    for t in tuner.oracle.trials.values():
        assert t.hyperparameters.get("lr_decay") in ("none", "exponential", "step", "cosine",
                                                     "polynomial", "plateau")


def test_early_stopping_stops_a_plateau_and_restores_best_weights(data, tmp_path):
    (x, y), val = data
    seen = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.setdefault("val", []).append(logs["val_loss"])

        def on_train_end(self, logs=None):
            seen["final"] = self.model.evaluate(val[0], val[1], verbose=0, return_dict=True)["loss"]

    def build(hp):
        # A zero learning rate: the loss is flat from the first epoch on.
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.SGD(hp.Choice("lr", [0.0])), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    tuner = ktplus.RandomSearch(build, objective="val_loss", max_trials=1, early_stopping=2,
                                directory=tmp_path, project_name="es")
    tuner.search(x, y, validation_data=val, epochs=30, verbose=0, callbacks=[Probe()])
    trial = next(iter(tuner.oracle.trials.values()))
    assert trial_metric(trial, "epochs_run") == 3  # the first epoch, then patience 2
    assert seen["final"] == pytest.approx(min(seen["val"]), rel=1e-5)


def test_early_stopping_restores_the_best_weights_not_the_last(data, tmp_path):
    (x, y), val = data
    out = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            out.setdefault("val", []).append(logs["val_loss"])

        def on_train_end(self, logs=None):
            out["final"] = self.model.evaluate(val[0], val[1], verbose=0, return_dict=True)["loss"]

    def build(hp):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.SGD(hp.Fixed("lr", 5.0)), "sparse_categorical_crossentropy")
        return model

    tuner = ktplus.RandomSearch(build, objective="val_loss", max_trials=1,
                                early_stopping={"patience": 2, "min_delta": 0.0},
                                directory=tmp_path, project_name="es2", fast_path=False)
    tuner.search(x, y, validation_data=val, epochs=12, verbose=0, callbacks=[Probe()])
    assert out["final"] == pytest.approx(min(out["val"]), rel=1e-4)
    assert out["final"] <= out["val"][-1]


@pytest.mark.parametrize("objective", ["val_accuracy", "val_loss"])
def test_pruning_stops_a_bad_trial_and_leaves_good_ones(objective, data, tmp_path):
    (x, y), val = data

    def build(hp):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.Adam(hp.Choice("lr", [0.05, 0.03, 0.0])),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    tuner = ktplus.GridSearch(build, objective=objective, max_trials=3,
                              pruning=ktplus.MedianPruner(n_startup_trials=2, n_warmup_epochs=2),
                              directory=tmp_path, project_name="prune")
    tuner.search(x, y, validation_data=val, epochs=5, verbose=0)
    by_lr = {t.hyperparameters.get("lr"): t for t in tuner.oracle.trials.values()}
    assert trial_metric(by_lr[0.0], "pruned") == 1.0
    # Optuna's warmup: epochs 0 and 1 (0-based) never prune; the third epoch can.
    assert trial_metric(by_lr[0.0], "pruned_epoch") == 3
    assert trial_metric(by_lr[0.0], "epochs_run") == 3
    assert by_lr[0.0].status == "COMPLETED" and by_lr[0.0].score is not None  # counts with its best
    for lr in (0.05, 0.03):
        assert trial_metric(by_lr[lr], "pruned") == 0.0
        assert trial_metric(by_lr[lr], "epochs_run") == 5
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.hyperparameters.get("lr") != 0.0


def test_hyperband_with_schedule_and_early_stopping(data, tmp_path):
    (x, y), val = data
    log = tmp_path / "lr.jsonl"

    def build(hp):
        hp.Int("units", 4, 32)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.get("units"), activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    # max_epochs=3, factor=3: a bracket of three 1-epoch trials whose best continues to epoch 3, and
    # a bracket of two 3-epoch trials (6 trials; 9 and 3 ran 20 for the same check).
    tuner = ktplus.Hyperband(build, objective="val_accuracy", max_epochs=3, factor=3,
                             lr_decay="cosine", early_stopping=20, directory=tmp_path, project_name="hb")
    tuner.search(x, y, validation_data=val, verbose=0, callbacks=[RecordLR(log)])
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert rows
    for _, epoch, lr in rows:  # absolute epochs: continuations continue the schedule
        assert lr == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * epoch / 3)), rel=1e-5)
    continued = [t for t in tuner.oracle.trials.values() if t.hyperparameters.get("tuner/initial_epoch") > 0]
    assert continued, "Hyperband ran no continuation"
    assert any(epoch >= 1 for _, epoch, _ in rows)


def test_nan_loss_fails_the_trial(data, tmp_path):
    (x, y), val = data

    def build(hp):
        scale = hp.Choice("scale", [1.0, float("inf")])
        model = keras.Sequential([keras.Input((4,)), keras.layers.Rescaling(scale),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    tuner = ktplus.GridSearch(build, objective="val_accuracy", max_trials=2, directory=tmp_path,
                              project_name="nan")
    tuner.search(x, y, validation_data=val, epochs=2, verbose=0)
    by_scale = {t.hyperparameters.get("scale"): t for t in tuner.oracle.trials.values()}
    bad = by_scale[float("inf")]
    assert bad.status == "FAILED"
    assert "nan" in bad.message.lower() and "marked failed" in bad.message
    assert tuner.oracle.get_best_trials(1)[0].hyperparameters.get("scale") == 1.0


def test_custom_objective_direction_drives_early_stopping(data, tmp_path):
    (x, y), val = data
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=8, dropout=0.0,
                                metrics=["accuracy", "auc"])
    tuner = ktplus.RandomSearch(hm, objective=keras_tuner.Objective("val_auc", "max"), max_trials=1,
                                early_stopping=True, pruning="median", directory=tmp_path, project_name="o")
    es = tuner._build_and_fit_model.__self__  # the tuner itself
    from ktplus.training._callbacks import make_early_stopping

    cb = make_early_stopping(es.early_stopping, tuner.oracle.objective)
    assert (cb.monitor, cb.mode, cb.restore_best_weights, cb.patience) == ("val_auc", "max", True, 5)
    tuner.search(x, y, validation_data=val, epochs=2, verbose=0)
    assert tuner.oracle.get_best_trials(1)[0].score > 0.5


def test_fast_path_uses_cached_pipeline_steps_per_execution_and_tuned_batch_size(data, tmp_path):
    (x, y), val = data
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append((self.model.steps_per_execution, self.params["steps"]))

    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=8, dropout=0.0,
                                batch_size=[8, 16])
    tuner = ktplus.GridSearch(hm, objective="val_accuracy", max_trials=2, directory=tmp_path,
                              project_name="fast")
    tuner.search(x, y, validation_data=val, epochs=1, verbose=0, callbacks=[Probe()])
    assert sorted(seen) == [(4, 4), (8, 8)]  # 64 samples in batches of 16 and 8
    seen.clear()
    off = ktplus.GridSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path,
                            project_name="slow", fast_path=False)
    off.search(x, y, validation_data=val, epochs=1, verbose=0, callbacks=[Probe()])
    assert seen[0][0] == 1


def test_batch_level_callback_keeps_steps_per_execution_at_one(data, tmp_path):
    (x, y), val = data
    seen = []

    class PerBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(self.model.steps_per_execution)

    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=8)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path,
                                project_name="b")
    tuner.search(x, y, validation_data=val, epochs=1, verbose=0, callbacks=[PerBatch()])
    assert seen and set(seen) == {1} and len(seen) == 2  # every batch seen


_models: list = []


class KeepWeakref(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        _models.append(weakref.ref(self.model))


def test_finished_trial_models_are_not_kept_alive(data, tmp_path):
    (x, y), val = data
    _models.clear()
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=8)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=3, lr_decay="plateau",
                                early_stopping=True, pruning="median", directory=tmp_path, project_name="m")
    tuner.search(x, y, validation_data=val, epochs=2, verbose=0, callbacks=[KeepWeakref()])
    keras.backend.clear_session()
    gc.collect()
    assert len(_models) == 3
    assert all(ref() is None for ref in _models)


@pytest.mark.parametrize(("kwargs", "arg"), [
    (dict(lr_decay="linear"), "lr_decay"),
    (dict(early_stopping=-1), "early_stopping"),
    (dict(early_stopping="yes"), "early_stopping"),
    (dict(early_stopping={"paitence": 3}), "early_stopping"),
    (dict(pruning="hyperband-ish"), "pruning"),
    (dict(fast_path="turbo"), "fast_path"),
    (dict(early_stopping=True, objective=["val_loss", "val_accuracy"]), "early_stopping"),
])
def test_bad_options_fail_before_anything_is_touched(kwargs, arg, tmp_path):
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2)
    keep = tmp_path / "p" / "trial_00" / "trial.json"
    keep.parent.mkdir(parents=True)
    keep.write_text("{}")
    kwargs.setdefault("objective", "val_accuracy")
    with pytest.raises(ValueError, match=f"`{arg}`"):
        ktplus.RandomSearch(hm, max_trials=1, directory=tmp_path, project_name="p", overwrite=True, **kwargs)
    assert keep.read_text() == "{}"  # overwrite=True did not run


@pytest.mark.parametrize("fast_path", [True, ["data"], "trial_overhead", False])
def test_gc_freeze_is_undone_after_the_search_even_on_error(fast_path, data, tmp_path):
    import gc

    (x, y), val = data
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=8)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path,
                                project_name="gc", fast_path=fast_path)
    tuner.search(x, y, validation_data=val, epochs=1, verbose=0)
    assert gc.get_freeze_count() == 0
    assert Path(tmp_path, "gc", "trial_0", "checkpoint.weights.h5").exists()
    assert tuner.get_best_models(1)[0].output_shape == (None, 2)

    class Boom(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path,
                            project_name="gc2", fast_path=fast_path).search(
            x, y, validation_data=val, epochs=1, verbose=0, callbacks=[Boom()])
    assert gc.get_freeze_count() == 0
