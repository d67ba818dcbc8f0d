"""Options in combination: every pair of option levels runs in at least one
search (all-pairs over the tuners and ktplus's options), and every search
keeps the invariants the README states:

1. every trial ends in a terminal status and the search ends;
2. the same trial is "best" everywhere (``get_best_trials``,
   ``get_best_hyperparameters``, ``results()``, ``evaluate``,
   ``pareto_front`` for one objective, ``keep_checkpoints``, the report);
3. the model ``get_best_models`` returns reproduces the trial's recorded
   objective on the validation data it was scored on;
4. nothing computed from data (normalization statistics, balanced class
   weights) saw a validation row;
5. (``test_keras_tuner_scores.py``) with ``fast_path=False`` and
   ``tensorboard=False``, a seeded search gives keras-tuner's trial scores;
6. no global state changed (warnings filters and registries, keras-tuner's
   functions and methods).
"""

from __future__ import annotations

import math

import pytest

import ktplus
from tests.combinations import common
from tests.combinations.pairwise import all_pairs, covered_pairs, feasible_pairs

FACTORS: dict[str, list] = {
    "tuner": ["random", "bayesian", "hyperband", "grid", "optuna"],
    "fast_path": [True, False],
    "lr_decay": [None, "cosine"],
    "early_stopping": [None, 1],
    "pruning": [None, "median"],  # a median rule that can prune in a 3-trial, 3-epoch search
    "cv": [None, 2],
    "validation": ["data", "split", "folds"],
    "custom_fit": [False, True],
    "objective": ["single", "list"],
    "prep": [None, "normalization", "class_weight"],
    "keep_checkpoints": [None, 1],
    "tensorboard": [True, False],
}


def allowed(row: dict) -> bool:
    """The combinations ktplus accepts (the others are refused with a clear
    error before any trial: tests/tuners/test_validation... and below)."""
    if (row["cv"] is None) == (row["validation"] == "folds"):
        return False  # cv's folds are the validation data, and only with cv
    if row["tuner"] == "hyperband" and row["cv"] is not None:
        return False  # refused: Hyperband continues one checkpoint per trial
    if row["objective"] == "list" and (row["early_stopping"] or row["pruning"]):
        return False  # refused: they watch one per-epoch metric
    return True


ROWS = all_pairs(FACTORS, allowed, seed=0)


def _id(row: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in row.items())


def test_the_rows_cover_every_feasible_pair():
    assert covered_pairs(FACTORS, ROWS) >= feasible_pairs(FACTORS, allowed)
    assert all(allowed(r) for r in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[_id(r) for r in ROWS])
def test_invariants_hold_in_combination(row, tmp_path):
    data = common.dataset()
    hypermodel = common.hypermodel(row["prep"], custom_fit=row["custom_fit"])
    objective = common.objective(row["objective"])
    tuner = common.tuner(row["tuner"], hypermodel, objective, tmp_path, seed=3,
                         fast_path=row["fast_path"], lr_decay=row["lr_decay"],
                         early_stopping=row["early_stopping"], pruning=common.pruner(row["pruning"]),
                         cv=row["cv"],
                         keep_checkpoints=row["keep_checkpoints"], tensorboard=row["tensorboard"])
    fit_kwargs = common.fit_kwargs(row["validation"], data)
    x_fit, y_fit = common.fit_xy(row["validation"], data)

    state = common.GlobalState()
    batches = common.BatchCounter()
    tuner.search(x_fit, y_fit, epochs=3, verbose=0, callbacks=[batches.callback], **fit_kwargs)
    state.assert_unchanged()  # invariant 6

    # a batch-level callback sees every batch of every epoch (whatever the fast path does)
    rows = [len(part[0][1]) for part in common.tuner_folds(tuner, data)] if row["cv"] else [common.N_TRAIN]
    assert batches.epochs and set(batches.epochs) <= {math.ceil(r / common.BATCH) for r in rows}, batches.epochs

    # 1. every trial ends, in a terminal status
    trials = list(tuner.oracle.trials.values())
    assert trials
    assert {str(t.status) for t in trials} <= {"COMPLETED", "FAILED", "INVALID", "STOPPED"}, \
        [(t.trial_id, t.status, t.message) for t in trials]
    assert not tuner.oracle.ongoing_trials
    completed = [t for t in trials if str(t.status) == "COMPLETED"]
    assert completed, [(t.trial_id, t.status, t.message) for t in trials]
    assert not [t for t in trials if str(t.status) == "FAILED"], [t.message for t in trials]

    # 2. one ranking: the same trial is best everywhere
    best = tuner.oracle.get_best_trials(1)[0]
    best_id = best.trial_id
    if any(not common.is_pruned(t) for t in completed):
        assert not common.is_pruned(best), "a pruned trial outranks a fully trained one"
    assert tuner.get_best_hyperparameters(1)[0].values == best.hyperparameters.values
    frame = tuner.results()
    assert frame.iloc[0]["trial_id"] == best_id
    if row["objective"] == "single":
        front = tuner.pareto_front()
        assert front.iloc[0]["trial_id"] == best_id
    (x_val, y_val) = data["val"]
    scores = tuner.evaluate(x_val, y_val)
    assert scores.iloc[0]["trial_id"] == best_id
    report = ktplus.reporting.load_search(tuner.project_dir)
    assert common.report_best(report) == best_id

    # 3. the best model reproduces its trial's recorded objective
    model = tuner.get_best_models(1)[0]
    if row["cv"] is None:  # with cv the score is a mean over folds: no one model holds it
        x_scored, y_scored = common.scored_on(row["validation"], data)
        common.assert_reproduces(model, best, objective, x_scored, y_scored)

    # 4. statistics from training rows only
    if row["prep"] is not None:
        common.assert_training_rows_only(tuner, model, row, data)
