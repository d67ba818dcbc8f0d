"""A list objective with results returned as a dict of its metrics (what an
Optuna user returns): ktplus computes the combined value keras-tuner wants
under ``multi_objective`` (``MultiObjective.get_value``: "min" metrics
added, "max" ones subtracted) instead of asking the user for it."""

from __future__ import annotations

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus
from ktplus._compat import TrialStatus

OBJECTIVE = [keras_tuner.Objective("error", "min"), keras_tuner.Objective("agreement", "max")]


def build(hp):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Int("units", 2, 8), activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(hp.Float("lr", 1e-3, 1e-1, sampling="log")), loss="mse")
    return model


def train(model, x, y):
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    error = float(model.evaluate(x, y, verbose=0))
    agreement = float(np.corrcoef(model.predict(x, verbose=0).ravel(), y.ravel())[0, 1])
    return {"error": error, "agreement": agreement}


class DictHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        return build(hp)

    def fit(self, hp, model, x, y, **kwargs):
        return train(model, x, y)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 4)).astype("float32")
    return x, x[:, :1] - x[:, 1:2]


def check(tuner):
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2
    for t in trials:
        assert t.status == TrialStatus.COMPLETED, t.message
        error, agreement = (t.metrics.get_last_value(n) for n in ("error", "agreement"))
        assert t.score == pytest.approx(error - agreement)
        assert t.metrics.get_last_value("multi_objective") == pytest.approx(error - agreement)


@pytest.mark.parametrize("tuner_class", [ktplus.RandomSearch, ktplus.OptunaSearch])
def test_hypermodel_fit_returning_the_objectives(tuner_class, data, tmp_path):
    tuner = tuner_class(DictHyperModel(), objective=OBJECTIVE, max_trials=2, directory=tmp_path,
                        tensorboard=False)
    tuner.search(*data)
    check(tuner)
    if tuner_class is ktplus.OptunaSearch:  # the sampler was told both values
        told = sorted(tuple(t.values) for t in tuner.oracle.study.trials)
        assert told == sorted((t.metrics.get_last_value("error"), t.metrics.get_last_value("agreement"))
                              for t in tuner.oracle.trials.values())


class DictTuner(ktplus.RandomSearch):
    def run_trial(self, trial, x, y):
        return [train(self.hypermodel.build(trial.hyperparameters), x, y)]  # one execution, as a list


def test_run_trial_override_returning_the_objectives(data, tmp_path):
    tuner = DictTuner(build, objective=OBJECTIVE, max_trials=2, directory=tmp_path)
    tuner.search(*data)
    check(tuner)


def test_a_dict_missing_an_objective_keeps_keras_tuners_error(data, tmp_path):
    class Partial(ktplus.RandomSearch):
        def run_trial(self, trial, x, y):
            return {"error": train(self.hypermodel.build(trial.hyperparameters), x, y)["error"]}

    tuner = Partial(build, objective=OBJECTIVE, max_trials=1, directory=tmp_path, tensorboard=False)
    with pytest.raises(keras_tuner.errors.FatalValueError, match="multi_objective"):
        tuner.search(*data)


def test_a_list_with_a_trial_level_objective_takes_ktplus_measured_value(data, tmp_path):
    """objective=["error" (returned by the fit), "num_params" (measured by
    ktplus)]: the combined value uses the parameter count ktplus measured."""

    class ErrorOnly(keras_tuner.HyperModel):
        def build(self, hp):
            return build(hp)

        def fit(self, hp, model, x, y, **kwargs):
            return {"error": train(model, x, y)["error"]}

    objective = [keras_tuner.Objective("error", "min"), "num_params"]
    tuner = ktplus.RandomSearch(ErrorOnly(), objective=objective, max_trials=2, directory=tmp_path,
                                tensorboard=False)
    tuner.search(*data)
    for t in tuner.oracle.trials.values():
        assert t.status == TrialStatus.COMPLETED, t.message
        units = t.hyperparameters.get("units")
        assert t.metrics.get_last_value("num_params") == 4 * units + units + units + 1
        assert t.score == pytest.approx(t.metrics.get_last_value("error") + 6 * units + 1)
