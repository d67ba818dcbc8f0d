"""Pareto fronts: the dominance maths against a brute-force check, a real
search's ``pareto_front()``, and the ``pareto`` metric of the HParams
sessions."""

from __future__ import annotations

import glob
import math
import os

import keras
import keras_tuner
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ktplus
from ktplus._compat import TrialStatus
from ktplus._objectives import create_objective
from ktplus._pareto import pareto_front_frame, pareto_mask

# -- the maths -----------------------------------------------------------------------


def dominates(a, b, directions):
    """Brute force: ``a`` is at least as good as ``b`` everywhere and better somewhere."""
    sign = [1 if d == "min" else -1 for d in directions]
    no_worse = all(s * x <= s * y for s, x, y in zip(sign, a, b))
    better = any(s * x < s * y for s, x, y in zip(sign, a, b))
    return no_worse and better


def brute_front(rows, directions):
    return [not any(dominates(other, row, directions) for other in rows) for row in rows]


@st.composite
def points(draw):
    k = draw(st.integers(1, 3))
    directions = draw(st.lists(st.sampled_from(["min", "max"]), min_size=k, max_size=k))
    # Few distinct values: duplicates and ties in one objective are common.
    value = st.one_of(st.integers(-3, 3).map(float), st.floats(-1e6, 1e6, allow_nan=False))
    rows = draw(st.lists(st.lists(value, min_size=k, max_size=k), min_size=0, max_size=40))
    if rows and draw(st.booleans()):
        rows += draw(st.lists(st.sampled_from(rows), max_size=5))  # exact duplicate points
    return rows, directions


@settings(max_examples=300, deadline=None)
@given(points())
def test_pareto_mask_matches_brute_force(case):
    rows, directions = case
    values = np.array(rows, dtype=float).reshape(len(rows), len(directions))
    mask = pareto_mask(values, directions)
    assert mask.dtype == bool and mask.shape == (len(rows),)
    assert mask.tolist() == brute_front(rows, directions)
    if rows:
        assert mask.any()  # a non-empty set always has a non-dominated point


def test_pareto_mask_chunks_agree_with_brute_force():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 12, size=(600, 3)).astype(float)  # more rows than one chunk
    directions = ["max", "min", "min"]
    assert pareto_mask(values, directions).tolist() == brute_front(values.tolist(), directions)


def test_pareto_mask_edge_cases():
    assert pareto_mask(np.array([3.0, 1.0, 1.0, 2.0]), ["min"]).tolist() == [False, True, True, False]
    assert pareto_mask(np.array([[1.0, math.nan], [2.0, 2.0]]), ["max", "min"]).tolist() == [False, True]
    assert pareto_mask(np.zeros((0, 2)), ["min", "max"]).tolist() == []
    with pytest.raises(ValueError, match="'min' or 'max'"):
        pareto_mask(np.ones((2, 1)), ["up"])
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        pareto_mask(np.ones((2, 3)), ["min", "max"])


def _trial(trial_id, status, metrics, score=None, values=None):
    trial = keras_tuner.engine.trial.Trial(keras_tuner.HyperParameters(), trial_id=trial_id, status=status)
    for name, value in metrics.items():
        trial.metrics.register(name, direction="min")
        trial.metrics.update(name, value)
    # keras-tuner scores every completed trial (a list objective: the combined value)
    trial.score = 0.0 if score is None and status == TrialStatus.COMPLETED else score
    trial.hyperparameters.values = dict(values or {})
    return trial


def test_front_frame_keeps_completed_trials_only():
    objective = create_objective(["val_accuracy", "num_params"])
    trials = [
        _trial("0", TrialStatus.COMPLETED, {"val_accuracy": 0.8, "num_params": 100}, values={"u": 1}),
        _trial("1", TrialStatus.COMPLETED, {"val_accuracy": 0.9, "num_params": 300}, values={"u": 3}),
        _trial("2", TrialStatus.COMPLETED, {"val_accuracy": 0.9, "num_params": 300}, values={"u": 3}),  # a tie
        _trial("3", TrialStatus.COMPLETED, {"val_accuracy": 0.7, "num_params": 200}, values={"u": 2}),
        _trial("4", TrialStatus.COMPLETED, {"val_accuracy": 0.99, "num_params": 50, "pruned": 1}),  # pruned
        _trial("5", TrialStatus.FAILED, {"val_accuracy": 1.0, "num_params": 1}),
        _trial("6", TrialStatus.STOPPED, {}),  # infeasible
        _trial("7", TrialStatus.RUNNING, {"val_accuracy": 1.0, "num_params": 1}),
    ]
    front = pareto_front_frame(trials, objective, ["u"])
    assert list(front.columns) == ["trial_id", "val_accuracy", "num_params", "u"]
    assert front["trial_id"].tolist() == ["1", "2", "0"]  # best val_accuracy first, the tie kept
    assert front["u"].tolist() == [3, 3, 1]
    empty = pareto_front_frame(trials[4:], objective, ["u"])
    assert empty.empty and list(empty.columns) == ["trial_id", "val_accuracy", "num_params", "u"]
    single = pareto_front_frame(
        [_trial("a", TrialStatus.COMPLETED, {}, score=0.2), _trial("b", TrialStatus.COMPLETED, {}, score=0.1),
         _trial("c", TrialStatus.COMPLETED, {}, score=0.1)], keras_tuner.Objective("val_loss", "min"))
    assert single["trial_id"].tolist() == ["b", "c"] and single["val_loss"].tolist() == [0.1, 0.1]


# -- a real search --------------------------------------------------------------------

LIMIT = 6 * 34 + 1  # Dense(units) on 4 inputs, Dense(1): 6 * units + 1 parameters


class Synthetic(keras_tuner.HyperModel):
    """Trains nothing: reports two epochs of made-up metrics (a History),
    fails for multiples of 13 and is over ``LIMIT`` above 34 units."""

    def build(self, hp):
        units = hp.Int("units", 1, 40)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return model

    def fit(self, hp, model, *args, **kwargs):
        units = hp["units"]
        if units % 13 == 0:
            raise keras_tuner.errors.FailedTrialError("unlucky")
        history = keras.callbacks.History()
        accuracy = (units * 7 % 11) / 10
        history.history = {"val_accuracy": [accuracy / 2, accuracy], "val_loss": [1.0, (units * 5 % 9) / 9]}
        return history


def search(tmp_path, objective, **kwargs):
    tuner = ktplus.RandomSearch(Synthetic(), objective=objective, max_trials=16, seed=5, max_model_size=LIMIT,
                                max_consecutive_failed_trials=16, directory=tmp_path, project_name="p", **kwargs)
    tuner.search(verbose=0)
    return tuner


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    return search(tmp_path_factory.mktemp("two"), ["val_accuracy", "num_params"])


def _values(trial, names):
    return [trial.metrics.get_last_value(n) for n in names]


def check_front(tuner, names, directions):
    completed = [t for t in tuner.oracle.trials.values() if t.status == TrialStatus.COMPLETED]
    rows = [_values(t, names) for t in completed]
    expected = {t.trial_id for t, on in zip(completed, brute_front(rows, directions)) if on}
    front = tuner.pareto_front()
    assert set(front["trial_id"]) == expected and len(front) == len(expected)
    assert list(front.columns[:len(names) + 1]) == ["trial_id", *names]
    first = front[names[0]].tolist()
    assert first == sorted(first, reverse=directions[0] == "max")
    for row in front.itertuples(index=False):
        trial = tuner.oracle.trials[row.trial_id]
        assert list(row[1:len(names) + 1]) == _values(trial, names)
        assert row.units == trial.hyperparameters["units"]
    return expected


def test_search_has_every_kind_of_trial(two):
    statuses = {str(t.status) for t in two.oracle.trials.values()}
    assert statuses == {"COMPLETED", "FAILED", "STOPPED"}


def test_pareto_front_of_a_real_search_matches_brute_force(two):
    expected = check_front(two, ["val_accuracy", "num_params"], ["max", "min"])
    completed = [t for t in two.oracle.trials.values() if t.status == TrialStatus.COMPLETED]
    assert 1 < len(expected) < len(completed)  # a front that leaves trials out


def test_pareto_front_with_three_objectives(tmp_path):
    tuner = search(tmp_path, ["val_accuracy", "num_params", "val_loss"], tensorboard=False)
    check_front(tuner, ["val_accuracy", "num_params", "val_loss"], ["max", "min", "min"])


# -- the HParams sessions ----------------------------------------------------------------


def pareto_events(run_dir):
    """(step, value) of every ``pareto`` scalar in a trial's run, and the number of files holding them."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    found, files = [], 0
    for path in glob.glob(os.path.join(run_dir, "events.out.tfevents*")):
        here = [(event.step, float(tensor_util.make_ndarray(v.tensor)))
                for event in EventFileLoader(path).Load() for v in event.summary.value if v.tag == "pareto"]
        files += bool(here)
        found += here
    return found, files


def experiment_metrics(root):
    """The metric tags of the HParams experiment config in ``root``."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    (path,) = glob.glob(os.path.join(root, "events.out.tfevents*.ktplus-experiment"))
    for event in EventFileLoader(path).Load():
        for value in event.summary.value:
            if value.tag == "_hparams_/experiment":
                data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                return [m.name.tag for m in data.experiment.metric_infos]
    raise AssertionError("no experiment config")


def test_sessions_mark_the_front_updated_where_membership_changed(two):
    root = two.tensorboard_dir
    trials = two.oracle.trials
    names, directions = ["val_accuracy", "num_params"], ["max", "min"]
    # Replay the search: after each completed trial, which trials were on the front.
    completed, last_change, member = [], {}, {}
    for trial_id in sorted(trials):
        if trials[trial_id].status != TrialStatus.COMPLETED:
            continue
        completed.append(trials[trial_id])
        front = brute_front([_values(t, names) for t in completed], directions)
        for t, on in zip(completed, front):
            if member.get(t.trial_id) != on:
                member[t.trial_id], last_change[t.trial_id] = on, len(completed)
    assert any(step > 1 for step in last_change.values()) and not all(member.values())
    for trial_id, trial in trials.items():
        events, files = pareto_events(os.path.join(root, f"trial_{trial_id}"))
        if trial.status != TrialStatus.COMPLETED:
            assert events == []  # failed and infeasible trials are on no front
            continue
        assert files == 1  # a change replaces the trial's earlier file
        assert events == [(last_change[trial_id], 1.0 if member[trial_id] else 0.0)]
    assert "pareto" in experiment_metrics(root)


def test_a_single_objective_search_writes_no_pareto_metric(tmp_path):
    tuner = search(tmp_path, "val_accuracy")
    assert not glob.glob(os.path.join(tuner.tensorboard_dir, "trial_*", "*.ktplus-pareto"))
    assert "score" in experiment_metrics(tuner.tensorboard_dir)
    assert "pareto" not in experiment_metrics(tuner.tensorboard_dir)
