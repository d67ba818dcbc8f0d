"""The built-in objectives "num_params" and "trial_seconds", and
``max_model_size``: an oversized configuration is skipped as infeasible."""

from __future__ import annotations

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus
from ktplus._compat import TrialStatus
from ktplus._objectives import create_objective, epoch_objective, is_trial_level

EPOCHS = 6


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 1).astype("int64")
    return (x[:64], y[:64]), (x[64:], y[64:])


class WeightLog(keras.callbacks.Callback):
    """Each epoch's val_accuracy and weights, in training order
    (deep-copyable: the record lives on the class)."""

    epochs: list[tuple[int, float, np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        flat = np.concatenate([w.ravel() for w in self.model.get_weights()])
        WeightLog.epochs.append((epoch, float(logs["val_accuracy"]), flat))


@pytest.fixture(scope="module")
def listed(data, tmp_path_factory):
    """objective=["val_accuracy", "num_params"], TensorBoard off, trials
    trained one after another (fused trials end their epochs in turn;
    tests/tuners/test_pack.py checks a fused trial's checkpoint)."""
    (x, y), val = data
    WeightLog.epochs = []
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, learning_rate=0.05)
    tuner = ktplus.RandomSearch(hm, objective=["val_accuracy", "num_params"], max_trials=3, seed=2,
                                directory=tmp_path_factory.mktemp("listed"), project_name="p",
                                tensorboard=False, pack=1)  # WeightLog reads trials one after another
    tuner.search(x, y, validation_data=val, epochs=EPOCHS, batch_size=16, callbacks=[WeightLog()], verbose=0)
    runs = [WeightLog.epochs[i:i + EPOCHS] for i in range(0, len(WeightLog.epochs), EPOCHS)]
    return tuner, runs


def test_create_objective_knows_the_builtins():
    assert str(create_objective("num_params")) == str(keras_tuner.Objective("num_params", "min"))
    listed = create_objective(["val_loss", "trial_seconds"])
    assert [(o.name, o.direction) for o in listed.objectives] == [("val_loss", "min"), ("trial_seconds", "min")]
    assert create_objective("val_accuracy").direction == "max"  # keras-tuner's own inference
    with pytest.raises(ValueError, match="Could not infer"):
        create_objective("my_metric")
    assert is_trial_level("trial_seconds") and not is_trial_level("val_accuracy")
    assert [o.name for o in epoch_objective(listed).objectives] == ["val_loss"]
    assert epoch_objective(create_objective("num_params")) is None
    plain = create_objective("val_loss")
    assert epoch_objective(plain) is plain


def test_list_objective_records_both_builtins_on_every_trial(listed):
    tuner, _ = listed
    assert [(o.name, o.direction) for o in tuner.oracle.objective.objectives] == [
        ("val_accuracy", "max"), ("num_params", "min")]
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 3 and all(t.status == "COMPLETED" for t in trials)
    for t in trials:
        count = tuner.hypermodel.build(t.hyperparameters).count_params()
        assert t.metrics.get_last_value("num_params") == count  # from the build: TensorBoard is off
        assert 0 < t.metrics.get_last_value("trial_seconds") < 120
    frame = tuner.results()
    assert {"num_params", "trial_seconds"} <= set(frame.columns)
    assert "best/num_params" not in frame.columns
    by_id = frame.set_index("trial_id")
    for t in trials:
        assert by_id.loc[t.trial_id, "num_params"] == t.metrics.get_last_value("num_params")
        assert by_id.loc[t.trial_id, "trial_seconds"] == pytest.approx(t.metrics.get_last_value("trial_seconds"))


def test_list_objective_pareto_front_frame(listed):
    tuner, _ = listed
    front = tuner.pareto_front()
    names = [hp.name for hp in tuner.oracle.get_space().space]
    assert list(front.columns[:3]) == ["trial_id", "val_accuracy", "num_params"]
    assert set(names) <= set(front.columns)
    assert front.attrs["directions"] == {"val_accuracy": "max", "num_params": "min"}
    assert front["val_accuracy"].tolist() == sorted(front["val_accuracy"], reverse=True)  # best first
    trials = tuner.oracle.trials
    for row in front.itertuples():
        trial = trials[row.trial_id]
        assert row.val_accuracy == trial.metrics.get_last_value("val_accuracy")
        assert row.num_params == trial.metrics.get_last_value("num_params")
    assert len(front) >= 1


def test_checkpoint_is_the_best_val_accuracy_epoch(listed):
    """keras-tuner's checkpoint would save every epoch (num_params is never
    in the epoch logs): the checkpoint and best_step are the first epoch
    with the best val_accuracy."""
    tuner, runs = listed
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)
    assert len(runs) == len(trials)
    not_last = 0
    for trial, run in zip(trials, runs):
        accuracies = [acc for _, acc, _ in run]
        best = int(np.argmax(accuracies))
        assert trial.best_step == best
        assert trial.metrics.get_last_value("val_accuracy") == pytest.approx(accuracies[best])
        assert trial.metrics.get_last_value("best_epoch") == best + 1
        model = tuner.load_model(trial)
        saved = np.concatenate([w.ravel() for w in model.get_weights()])
        np.testing.assert_array_equal(saved, run[best][2])
        not_last += best != EPOCHS - 1
    assert not_last >= 1  # else the check could not tell the best epoch from the last


def test_builtin_alone_needs_no_metric_and_no_validation_data(data, tmp_path):
    (x, y), _ = data
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
    tuner = ktplus.RandomSearch(hm, "num_params", 2, seed=1, directory=tmp_path, project_name="p")
    assert (tuner.oracle.objective.name, tuner.oracle.objective.direction) == ("num_params", "min")
    tuner.search(x, y, epochs=1, verbose=0)  # no validation data: nothing is measured on it
    trials = list(tuner.oracle.trials.values())
    assert all(t.score == t.metrics.get_last_value("num_params") for t in trials)
    frame = tuner.results()
    assert frame["score"].tolist() == sorted(frame["score"])  # smallest first
    front = tuner.pareto_front()
    assert list(front.columns[:2]) == ["trial_id", "num_params"]
    assert front["num_params"].tolist() == [min(t.score for t in trials)] * len(front)
    seconds = ktplus.RandomSearch(hm, objective="trial_seconds", max_trials=1, directory=tmp_path,
                                  project_name="s", tensorboard=False)
    seconds.search(x, y, epochs=1, verbose=0)
    (trial,) = seconds.oracle.trials.values()
    assert trial.score == trial.metrics.get_last_value("trial_seconds") > 0


class NoTraining(keras_tuner.HyperModel):
    """A custom fit that trains nothing: it reports a dict of metrics."""

    def build(self, hp):
        units = hp.Int("units", 1, 32)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return model

    def fit(self, hp, model, *args, **kwargs):
        return {"val_accuracy": (hp["units"] * 7 % 11) / 10}


def test_custom_fit_without_training_still_records_num_params(tmp_path):
    tuner = ktplus.RandomSearch(NoTraining(), objective="val_accuracy", max_trials=3, seed=0,
                                directory=tmp_path, tensorboard=False)
    tuner.search(verbose=0)
    for t in tuner.oracle.trials.values():
        assert t.status == "COMPLETED"
        assert t.metrics.get_last_value("num_params") == 6 * t.hyperparameters["units"] + 1
        assert t.metrics.get_last_value("trial_seconds") >= 0


@pytest.mark.parametrize("objective", ["num_params", "trial_seconds"])
@pytest.mark.parametrize("option", [{"early_stopping": 3}, {"pruning": "median"}, {"lr_decay": "plateau"}])
def test_options_that_watch_an_epoch_metric_refuse_a_trial_level_objective(objective, option, tmp_path):
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
    (arg, value), = option.items()
    with pytest.raises(ValueError) as info:
        ktplus.RandomSearch(hm, objective=objective, max_trials=1, directory=tmp_path, **option)
    message = str(info.value)
    assert f"`{arg}`" in message and repr(objective) in message and "per-epoch metric" in message
    assert f"{arg}=" in message
    assert not (tmp_path / "untitled_project").exists()  # refused before keras-tuner made its directory


def test_options_that_watch_nothing_accept_a_trial_level_objective(tmp_path):
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
    tuner = ktplus.RandomSearch(hm, objective="num_params", max_trials=1, directory=tmp_path, lr_decay="cosine")
    assert tuner.lr_decay is not None


# -- max_model_size ---------------------------------------------------------------

LIMIT = 60  # Dense(units) on 4 inputs and Dense(2): 7 * units + 2 parameters; units <= 8 fit


def sized(hp):
    units = hp.Int("units", 1, 40, default=40)  # the default configuration is oversized
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def oversized(data, tmp_path_factory):
    (x, y), val = data
    tuner = ktplus.RandomSearch(sized, objective="val_accuracy", max_trials=10, seed=4, max_model_size=LIMIT,
                                max_consecutive_failed_trials=1, directory=tmp_path_factory.mktemp("size"),
                                project_name="p")
    tuner.search(x, (y > 0).astype("int64"), validation_data=(val[0], (val[1] > 0).astype("int64")),
                 epochs=2, verbose=0)  # neither the default configuration nor a streak of oversized stops it
    return tuner


def test_oversized_configurations_are_skipped_not_failed(oversized):
    trials = list(oversized.oracle.trials.values())
    assert len(trials) == 10  # every trial ran: no "consecutive failures" RuntimeError
    big = [t for t in trials if 7 * t.hyperparameters["units"] + 2 > LIMIT]
    small = [t for t in trials if t not in big]
    assert len(big) >= 6 and small  # most configurations are oversized, several in a row
    assert all(t.status == TrialStatus.STOPPED and t.score is None for t in big)
    assert all(t.status == TrialStatus.COMPLETED for t in small)
    assert not any(t.status in (TrialStatus.FAILED, TrialStatus.INVALID) for t in trials)
    for t in big:
        assert t.message == (f"Oversized model: {7 * t.hyperparameters['units'] + 2} parameters > "
                             f"max_model_size={LIMIT}; skipped")


def test_oversized_trials_are_infeasible_in_results(oversized):
    frame = oversized.results().set_index("trial_id")
    for trial_id, trial in oversized.oracle.trials.items():
        expected = "infeasible" if trial.status == TrialStatus.STOPPED else "completed"
        assert frame.loc[trial_id, "status"] == expected
        if expected == "infeasible":
            assert np.isnan(frame.loc[trial_id, "score"])
            assert "max_model_size=60; skipped" in frame.loc[trial_id, "message"]
    loaded = ktplus.load_results(oversized.project_dir).set_index("trial_id")
    assert (loaded["status"] == frame.loc[loaded.index, "status"]).all()
    assert oversized.pareto_front()["trial_id"].isin(
        [t for t, tr in oversized.oracle.trials.items() if tr.status == TrialStatus.COMPLETED]).all()


def test_oversized_trials_show_infeasible_in_tensorboard(oversized):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    root = oversized.tensorboard_dir
    import glob
    import os

    for trial_id, trial in oversized.oracle.trials.items():
        statuses = []
        for f in glob.glob(os.path.join(root, f"trial_{trial_id}", "events.out.tfevents*")):
            for event in EventFileLoader(f).Load():
                for value in event.summary.value:
                    if value.tag == "_hparams_/session_start_info":
                        data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                        statuses.append(data.session_start_info.hparams["_status"].string_value)
        assert statuses == ["infeasible" if trial.status == TrialStatus.STOPPED else "completed"]


def test_a_search_where_no_model_fits_tries_every_trial_then_raises(data, tmp_path):
    """keras-tuner raises "Oversized model" (through its consecutive
    failures); ktplus raises it too, but only once every trial was tried."""
    (x, y), val = data
    tuner = ktplus.RandomSearch(sized, objective="val_accuracy", max_trials=4, seed=4, max_model_size=5,
                                max_consecutive_failed_trials=1, directory=tmp_path)
    with pytest.raises(RuntimeError, match="Oversized model: every one of the 4 trials") as info:
        tuner.search(x, (y > 0).astype("int64"), validation_data=(val[0], (val[1] > 0).astype("int64")),
                     epochs=1, verbose=0)
    assert "max_model_size=5" in str(info.value)
    assert [t.status for t in tuner.oracle.trials.values()] == [TrialStatus.STOPPED] * 4


def test_plain_keras_tuner_halts_on_the_same_search(data, tmp_path):
    """What ktplus fixes: keras-tuner fails an oversized trial, and the
    consecutive failures end the search."""
    (x, y), val = data
    tuner = keras_tuner.RandomSearch(sized, objective="val_accuracy", max_trials=10, seed=4,
                                     max_model_size=LIMIT, max_consecutive_failed_trials=1, directory=tmp_path)
    with pytest.raises(RuntimeError, match="consecutive failures"):
        tuner.search(x, (y > 0).astype("int64"), epochs=1, verbose=0)


def test_bayesian_oracle_learns_an_infeasible_trial_as_the_worst(tmp_path):
    """keras-tuner's Bayesian oracle would read a STOPPED trial's score from
    the trial before it (or fail on a first one)."""
    tuner = ktplus.BayesianOptimization(sized, objective="val_accuracy", max_trials=10, num_initial_points=2,
                                        seed=0, directory=tmp_path)
    oracle = tuner.oracle
    for trial_id, (status, score) in enumerate([(TrialStatus.STOPPED, None), (TrialStatus.COMPLETED, 0.5),
                                                (TrialStatus.COMPLETED, 0.75)]):
        trial = keras_tuner.engine.trial.Trial(oracle.get_space(), trial_id=str(trial_id), status=status)
        trial.hyperparameters.values = {"units": 30 + trial_id}
        trial.score = score
        oracle.trials[trial.trial_id] = trial
    seen = []
    original = type(oracle).__mro__[1]._vectorize_trials

    def spy(self):
        x, y = original(self)
        seen.append(y.tolist())
        return x, y

    type(oracle).__mro__[1]._vectorize_trials = spy
    try:
        response = oracle.populate_space("3")
    finally:
        type(oracle).__mro__[1]._vectorize_trials = original
    assert response["status"] == TrialStatus.RUNNING
    assert seen == [[-0.5, -0.5, -0.75]]  # the infeasible trial as the worst score (maximized: negated)
    assert oracle.trials["0"].status == TrialStatus.STOPPED and oracle.trials["0"].score is None
