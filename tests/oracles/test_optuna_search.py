"""ktplus.OptunaSearch / OptunaOracle: every sampler, the hyperparameter
mapping through a real search, conditional spaces, seeding, pruned and
failed trials told to the sampler, and bad arguments."""

from __future__ import annotations

import keras_tuner
import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import ktplus
from ktplus.oracles import SAMPLERS, distribution
from tests.oracles.synthetic import Synthetic


def _search(tmp_path, sampler="tpe", seed=1, trials=6, objective="loss", name="p", **kwargs):
    tuner = ktplus.OptunaSearch(Synthetic(), objective=keras_tuner.Objective("loss", "min")
                                if objective == "loss" else objective, max_trials=trials,
                                sampler=sampler, seed=seed, directory=tmp_path, project_name=name,
                                tensorboard=False, **kwargs)
    tuner.search(verbose=0)
    return tuner


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_a_search_whose_study_mirrors_the_trials(tmp_path, sampler):
    objective: object = "loss"
    if sampler == "nsga2":
        objective = [keras_tuner.Objective("loss", "min"), keras_tuner.Objective("size", "min")]
    tuner = _search(tmp_path, sampler, objective=objective)
    study = tuner.oracle.study
    expected = {"tpe": optuna.samplers.TPESampler, "cmaes": optuna.samplers.CmaEsSampler,
                "gp": optuna.samplers.GPSampler, "qmc": optuna.samplers.QMCSampler,
                "random": optuna.samplers.RandomSampler, "nsga2": optuna.samplers.NSGAIISampler}[sampler]
    assert isinstance(study.sampler, expected)
    assert len(study.trials) == len(tuner.oracle.trials) == 6
    space = {hp.name: hp for hp in tuner.oracle.get_space().space}
    for frozen in study.trials:
        assert frozen.state == TrialState.COMPLETE
        trial = tuner.oracle.trials[frozen.user_attrs["keras_tuner_trial_id"]]
        values = trial.hyperparameters.values
        # The study holds exactly the active values the trial used, each with its distribution.
        assert frozen.params == {k: v for k, v in values.items() if k != "lr" or values["kind"] == "a"}
        assert ("lr" in frozen.params) == (values["kind"] == "a")
        for name, dist in frozen.distributions.items():
            assert dist == distribution(space[name])
        loss = (values["x"] - 1) ** 2 + (values["y"] + 0.5) ** 2
        assert frozen.values[0] == pytest.approx(loss)
        if sampler == "nsga2":
            assert frozen.values[1] == values["n"]


def test_the_same_seed_suggests_the_same_sequence_and_another_seed_does_not(tmp_path):
    def sequence(seed, name):
        tuner = _search(tmp_path, "tpe", seed=seed, trials=14, name=name)  # past TPE's 10 startup trials
        return [tuner.oracle.trials[t].hyperparameters.values for t in sorted(tuner.oracle.trials)]

    first = sequence(7, "a")
    assert sequence(7, "b") == first
    assert sequence(8, "c") != first


def test_tpe_learns_from_the_trials_it_is_told(tmp_path):
    """After its startup trials TPE concentrates near the optimum (x=1, y=-0.5), random does not."""
    def late_losses(sampler, name):
        tuner = _search(tmp_path, sampler, seed=3, trials=30, name=name)
        frame = tuner.results().sort_values("trial_id", key=lambda s: s.astype(int))
        return float(np.median(frame["score"].to_numpy()[15:]))

    assert late_losses("tpe", "t") < late_losses("random", "r")


def test_failed_trials_are_told_as_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_FAIL_X", "1.5")
    tuner = _search(tmp_path, "random", seed=2, trials=8, max_consecutive_failed_trials=8)
    states = {f.user_attrs["keras_tuner_trial_id"]: f.state for f in tuner.oracle.study.trials}
    failed = {t for t, trial in tuner.oracle.trials.items() if trial.status == "FAILED"}
    assert failed, "no trial failed"
    assert {t for t, s in states.items() if s == TrialState.FAIL} == failed
    assert all(s == TrialState.COMPLETE for t, s in states.items() if t not in failed)


def test_a_trial_retried_by_keras_tuner_is_told_once_it_ends(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_FAIL_X", "1.5")
    tuner = _search(tmp_path, "random", seed=2, trials=8, max_consecutive_failed_trials=8,
                    max_retries_per_trial=1)
    study = tuner.oracle.study
    assert len(study.trials) == 8  # a retry is the same Optuna trial, not a new one
    assert all(f.state.is_finished() for f in study.trials)


def test_pruned_trials_are_told_as_pruned_with_their_curve(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=[4, 8],
                                learning_rate=(1e-4, 1e-1))
    tuner = ktplus.OptunaSearch(hm, objective="val_accuracy", max_trials=6, sampler="tpe", seed=0,
                                pruning=ktplus.MedianPruner(n_startup_trials=1, n_warmup_epochs=0),
                                directory=tmp_path, tensorboard=False)
    tuner.search(x[:64], y[:64], validation_data=(x[64:], y[64:]), epochs=4, verbose=0)
    frame = tuner.results().set_index("trial_id")
    by_id = {f.user_attrs["keras_tuner_trial_id"]: f for f in tuner.oracle.study.trials}
    pruned = [t for t in frame.index if frame.loc[t, "status"] == "pruned"]
    assert pruned, "no trial was pruned"
    for tid, frozen in by_id.items():
        curve = tuner.curves.trial_curve(tid)
        assert frozen.intermediate_values == pytest.approx(curve)
        if tid in pruned:
            assert frozen.state == TrialState.PRUNED and len(curve) < 4
        else:
            assert frozen.state == TrialState.COMPLETE
            assert frozen.values[0] == pytest.approx(frame.loc[tid, "score"])


def test_several_objectives_default_to_the_multi_objective_tpe(tmp_path):
    objective = [keras_tuner.Objective("loss", "min"), keras_tuner.Objective("size", "min")]
    tuner = _search(tmp_path, objective=objective, trials=5)
    assert isinstance(tuner.oracle.sampler, optuna.samplers.TPESampler)
    assert tuner.oracle.study.directions == [optuna.study.StudyDirection.MINIMIZE] * 2
    assert all(len(f.values) == 2 for f in tuner.oracle.study.trials)


class _NotASampler:
    pass


@pytest.mark.parametrize("sampler, objective, words", [
    ("bogus", "loss", "expected one of 'tpe', 'cmaes', 'gp', 'qmc', 'random', 'nsga2'"),
    (_NotASampler(), "loss", "optuna.samplers.BaseSampler instance"),
    (optuna.pruners.MedianPruner(), "loss", "optuna.samplers.BaseSampler instance"),
    (3, "loss", "optuna.samplers.BaseSampler instance"),
    ("nsga2", "loss", "NSGA-II needs two or more objectives"),
    ("cmaes", ["loss", "size"], "CMA-ES optimizes one objective"),
    (optuna.samplers.CmaEsSampler(), ["loss", "size"], "CmaEsSampler optimizes one objective"),
])
def test_bad_samplers_are_clear_errors_at_construction(tmp_path, sampler, objective, words):
    if isinstance(objective, list):
        objective = [keras_tuner.Objective(n, "min") for n in objective]
    else:
        objective = keras_tuner.Objective(objective, "min")
    with pytest.raises(ValueError, match="`sampler`") as info:
        ktplus.OptunaSearch(Synthetic(), objective=objective, max_trials=2, sampler=sampler,
                            directory=tmp_path)
    assert words in str(info.value)
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_sampler_object_of_the_wrong_type_is_also_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="`sampler`"):
        ktplus.OptunaOracle(objective="val_loss", max_trials=2, sampler=object())


def test_the_oracle_works_with_ktplus_tuner(tmp_path):
    oracle = ktplus.OptunaOracle(objective=keras_tuner.Objective("loss", "min"), max_trials=3,
                                 sampler="random", seed=0)
    tuner = ktplus.Tuner(oracle=oracle, hypermodel=Synthetic(), directory=tmp_path, tensorboard=False)
    tuner.search(verbose=0)
    assert len(oracle.study.trials) == 3
    assert [f.state for f in oracle.study.trials] == [TrialState.COMPLETE] * 3


def test_oversized_models_are_told_as_infeasible_and_never_halt_the_search(tmp_path):
    # Synthetic's model has 2 * k parameters, k in {2, 4, ..., 10}: k > 6 is over the limit.
    tuner = _search(tmp_path, "tpe", seed=0, trials=12, max_model_size=12, max_consecutive_failed_trials=1)
    trials = tuner.oracle.trials
    assert len(trials) == 12  # no RuntimeError: oversized trials are no failures
    oversized = {t for t, trial in trials.items() if trial.hyperparameters.values["k"] > 6}
    assert oversized and oversized != set(trials)
    frame = tuner.results().set_index("trial_id")
    assert set(frame.loc[sorted(oversized), "status"]) == {"infeasible"}
    by_id = {f.user_attrs["keras_tuner_trial_id"]: f for f in tuner.oracle.study.trials}
    feasible_losses = [by_id[t].values[0] for t in trials if t not in oversized]
    for tid, frozen in by_id.items():
        if tid in oversized:  # a violated constraint, told with the worst loss seen by then
            assert frozen.constraints == {"max_model_size": 1.0}
            assert frozen.state == TrialState.COMPLETE
            assert any(frozen.values[0] == pytest.approx(v) for v in feasible_losses)
            assert frozen.values[0] >= min(feasible_losses)
        else:
            assert frozen.constraints == {}
