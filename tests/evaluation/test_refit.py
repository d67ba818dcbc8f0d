"""``tuner.refit``: the best configuration retrained on all the data, with
the search's epochs, batch size, schedule and seed; refused before any
training when it cannot work."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import ktplus
from ktplus.training import LRDecay


def _data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    keras.utils.set_random_seed(0)
    x, y = _data()
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=[8, 16])
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=2, seed=3,
                                lr_decay={"schedule": "step", "factor": 0.5, "step_size": 1},
                                directory=tmp_path_factory.mktemp("refit"), project_name="p", tensorboard=False)
    tuner.search(x[:60], y[:60], validation_data=(x[60:], y[60:]), epochs=3, batch_size=20, verbose=0)
    return tuner


class _Rates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        self.rates.append(float(logs["learning_rate"]))


def test_refit_replays_epochs_batch_size_and_schedule(searched):
    x, y = _data()
    best = searched.oracle.get_best_trials(1)[0]
    epochs = int(round(best.metrics.get_last_value("best_epoch")))
    rates = _Rates()
    model = searched.refit(x, y, callbacks=[rates])
    assert isinstance(model, keras.Model)
    # the search's batch size (20): 80 samples -> 4 steps per epoch
    assert int(model.optimizer.iterations.numpy()) == 4 * epochs
    base = best.hyperparameters.get("learning_rate")
    step = LRDecay("step", params={"factor": 0.5, "step_size": 1})
    expected = [base * step.factor(e, 3) for e in range(epochs)]
    np.testing.assert_allclose(rates.rates, expected, rtol=1e-5)
    assert model.get_layer(index=1).units == best.hyperparameters.get("units_0")


def test_refit_is_reproducible_and_takes_epochs(searched):
    x, y = _data()
    a = searched.refit(x, y, epochs=2)
    b = searched.refit(x, y, epochs=2)
    assert int(a.optimizer.iterations.numpy()) == 8
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])


def test_refit_from_a_resumed_tuner_uses_the_recorded_settings(searched):
    x, y = _data()
    again = ktplus.RandomSearch(searched.hypermodel, objective="val_accuracy", max_trials=2, seed=3,
                                lr_decay={"schedule": "step", "factor": 0.5, "step_size": 1},
                                directory=searched.directory, project_name="p", tensorboard=False)
    model = again.refit(x, y)
    best_epoch = again.oracle.get_best_trials(1)[0].metrics.get_last_value("best_epoch")
    assert int(model.optimizer.iterations.numpy()) == 4 * int(round(best_epoch))


def test_refit_on_data_of_another_shape_is_refused(searched):
    x, y = _data()
    with pytest.raises(ValueError, match=r"refit\(\): the samples of `x` have shape \(3,\)"):
        searched.refit(x[:, :3], y)
    with pytest.raises(ValueError, match=r"refit\(\): `x` has 80 samples but `y` has 10"):
        searched.refit(x, y[:10])


def test_refit_before_any_trial_is_refused(tmp_path):
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path)
    x, y = _data(10)
    with pytest.raises(ValueError, match=r"refit\(\): no trial has completed"):
        tuner.refit(x, y)


def test_fully_trained_trials_come_before_pruned_ones(tmp_path):
    from keras_tuner.engine.trial import Trial

    from ktplus.evaluation._heldout import best_trials

    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=3, directory=tmp_path)
    for trial_id, score, pruned in [("0", 0.95, 1.0), ("1", 0.80, 0.0), ("2", 0.85, 0.0)]:
        trial = Trial(tuner.oracle.get_space(), trial_id=trial_id, status="COMPLETED")
        trial.score = score
        trial.metrics.register("pruned", direction="min")
        trial.metrics.update("pruned", pruned)
        tuner.oracle.trials[trial_id] = trial
    # a pruned trial's score covers only part of its training (with cv, part of its folds)
    assert [t.trial_id for t in best_trials(tuner, 3)] == ["2", "1", "0"]
    assert [t.trial_id for t in best_trials(tuner, 1, "refit")] == ["2"]
