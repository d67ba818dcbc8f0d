"""The facts ktplus records for every trial, and its statuses, defined once.

A trial's facts are stored with its metrics (so they reach the oracle and
``trial.json`` like any metric): how many epochs it really trained, its best
epoch (1-based), and whether (and after which epoch) it was pruned; with
cross-validation, the spread of its score over the folds; and two
trial-level values, also the built-in objectives of `ktplus._objectives`:
the model's parameter count and the trial's wall time. A pruned trial keeps
keras-tuner's COMPLETED status; ``status_of`` reports it as "pruned". A
trial whose model is over ``max_model_size`` ends with keras-tuner's STOPPED
status (which keras-tuner never gives an ended trial itself): ``status_of``
reports it as "infeasible".
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
#: The built model's parameter count (``model.count_params()``).
NUM_PARAMS = "num_params"
#: Wall seconds of the whole trial (every fold and execution).
TRIAL_SECONDS = "trial_seconds"
#: Every fact, in the order they are shown.
FACTS = (EPOCHS_RUN, BEST_EPOCH, PRUNED, PRUNED_EPOCH, SCORE_STD, FOLDS, NUM_PARAMS, TRIAL_SECONDS)

#: Where a project keeps every trial's objective curve (`ktplus.training._pruning.CurveStore`),
#: read by the pruners, the Optuna oracle's intermediate values, TensorBoard and the report.
CURVES_DIR = "ktplus_curves"

COMPLETED = "completed"
FAILED = "failed"
#: A configuration skipped because its model is over ``max_model_size``.
INFEASIBLE = "infeasible"
#: The statuses ktplus shows for a finished trial (TensorBoard, results).
STATUSES = (COMPLETED, PRUNED, FAILED, INFEASIBLE)


def is_pruned(trial: Any) -> bool:
    """Whether a keras-tuner `Trial` was stopped by a ktplus pruner."""
    metrics = trial.metrics
    return bool(metrics.exists(PRUNED) and metrics.get_last_value(PRUNED))


def status_of(trial: Any) -> str:
    """A trial's status in lower case, "pruned" for a pruned completed trial
    and "infeasible" for a stopped one (a model over ``max_model_size``)."""
    status = str(getattr(trial.status, "value", trial.status)).lower()
    if status == COMPLETED and is_pruned(trial):
        return PRUNED
    if status == "stopped":
        return INFEASIBLE
    return status

