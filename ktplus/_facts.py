"""The facts ktplus records for every trial, and its statuses, defined once.

A trial's facts are stored with its metrics (so they reach the oracle and
``trial.json`` like any metric): how many epochs it really trained, its best
epoch (1-based), and whether (and after which epoch) it was pruned; with
cross-validation, the spread of its score over the folds. A pruned
trial keeps keras-tuner's COMPLETED status; ``status_of`` reports it as
"pruned".
"""

from __future__ import annotations

from typing import Any

EPOCHS_RUN = "epochs_run"
BEST_EPOCH = "best_epoch"
PRUNED = "pruned"
PRUNED_EPOCH = "pruned_epoch"
#: With cross-validation: the standard deviation of the score over the
#: folds, and how many folds the score averages (fewer when pruned).
SCORE_STD = "score_std"
FOLDS = "folds"
#: Every fact, in the order they are shown.
FACTS = (EPOCHS_RUN, BEST_EPOCH, PRUNED, PRUNED_EPOCH, SCORE_STD, FOLDS)

COMPLETED = "completed"
FAILED = "failed"
#: The statuses ktplus shows for a finished trial (TensorBoard, results).
STATUSES = (COMPLETED, PRUNED, FAILED)


def is_pruned(trial: Any) -> bool:
    """Whether a keras-tuner `Trial` was stopped by a ktplus pruner."""
    metrics = trial.metrics
    return bool(metrics.exists(PRUNED) and metrics.get_last_value(PRUNED))


def status_of(trial: Any) -> str:
    """A trial's status in lower case, "pruned" for a pruned completed trial."""
    status = str(getattr(trial.status, "value", trial.status)).lower()
    if status == COMPLETED and is_pruned(trial):
        return PRUNED
    return status


def best_trials_first(oracle: Any, n: int, among: int | None = None) -> list[Any]:
    """At most ``n`` of the oracle's scored, completed trials, best first,
    fully trained ones before pruned ones: a pruned trial's score covers
    part of its training (with cross-validation, part of its folds), so it
    is taken only when there are not enough fully trained trials.
    `tuner.evaluate`, `tuner.refit` and ``keep_checkpoints`` rank this way.
    ``among``: how many trials to rank (default: all the oracle holds; a
    distributed worker's oracle client holds none and must say)."""
    total = max(n, among or len(getattr(oracle, "trials", None) or {}))
    ranked = [t for t in oracle.get_best_trials(total)
              if status_of(t) in (COMPLETED, PRUNED) and t.score is not None]
    return ([t for t in ranked if not is_pruned(t)] + [t for t in ranked if is_pruned(t)])[:n]
