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
