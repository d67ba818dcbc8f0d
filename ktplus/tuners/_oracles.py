"""How keras-tuner's learning oracles see a pruned or an infeasible trial.

A pruned trial keeps keras-tuner's COMPLETED status (it did run, and its
best value so far is a real measurement), but its score is not a
full-budget result:

* Hyperband never promotes it to a later round: while Hyperband picks the
  candidates of the next round, pruned trials are not among the completed
  ones.
* BayesianOptimization learns it as no better than the worst fully trained
  trial (its own value when that is worse), so the Gaussian process marks
  its region as poor without taking a truncated score for a finished one.

An infeasible trial (a model over ``max_model_size``, ended as STOPPED)
has no score. keras-tuner's Bayesian oracle skips only FAILED and INVALID
trials and would give a STOPPED one the score of the trial before it (or
fail on a first one): it learns an infeasible trial as the worst fully
trained trial, so the Gaussian process steers away from oversized
configurations (and skips it while no trial is fully trained). Hyperband
already promotes completed trials only.

`adopt_oracle` gives keras-tuner's own Hyperband and Bayesian oracles (exact
classes only) this behaviour; a user's oracle subclass is left as it is and
sees a pruned trial as COMPLETED with the metric ``pruned`` = 1.

Every oracle of a ktplus tuner (keras-tuner's, ktplus's Optuna oracle or a
user's) ranks its trials with `ktplus._ranking`: ``adopt_oracle`` makes its
``get_best_trials`` put pruned trials after the fully trained ones, so
keras-tuner's ``get_best_hyperparameters``/``get_best_models`` name the same
best trial as ``results()``, ``evaluate()`` and ``refit()``. A distributed
worker's oracle is a gRPC client: the chief's oracle ranks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ktplus._compat import (
    BayesianOptimizationOracle,
    HyperbandOracle,
    TrialStatus,
    hyperband_promotable,
    local_oracle,
)
from ktplus._facts import is_pruned
from ktplus._ranking import ranked_best


def _pruned(trials: Any) -> list[Any]:
    return [t for t in trials if t.status == TrialStatus.COMPLETED and is_pruned(t)]


@contextmanager
def _shown(trials: list[Any], status: str, score: float | None = None) -> Iterator[None]:
    """Shows ``trials`` with ``status`` (and ``score``, if given) inside the
    context; restores their own after."""
    saved = [(t.status, t.score) for t in trials]
    for t in trials:
        t.status = status
        if score is not None:
            t.score = score
    try:
        yield
    finally:
        for t, (status_before, score_before) in zip(trials, saved):
            t.status, t.score = status_before, score_before


def _hidden(trials: list[Any]) -> Any:
    """Shows ``trials`` as STOPPED (not completed) inside the context."""
    return _shown(trials, TrialStatus.STOPPED)


class PruningAwareHyperbandOracle(HyperbandOracle):
    """keras-tuner's HyperbandOracle that never promotes a pruned trial."""

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        with _hidden(_pruned(self.trials.values())):
            return super().populate_space(trial_id)


class PruningAwareBayesianOptimizationOracle(BayesianOptimizationOracle):
    """keras-tuner's BayesianOptimizationOracle that learns a pruned trial
    as no better than the worst fully trained one."""

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        pruned = _pruned(self.trials.values())
        infeasible = [t for t in self.trials.values() if t.status == TrialStatus.STOPPED]
        full = [t.score for t in self.trials.values() if t.status == TrialStatus.COMPLETED
                and t.score is not None and t not in pruned]
        if not full:
            with _shown(infeasible, TrialStatus.FAILED):  # skipped, as failed trials are
                return super().populate_space(trial_id)
        maximize = self.objective.direction == "max"
        worst = min(full) if maximize else max(full)
        saved = {t.trial_id: t.score for t in pruned}
        for t in pruned:
            if t.score is not None:
                t.score = min(t.score, worst) if maximize else max(t.score, worst)
        try:
            with _shown(infeasible, TrialStatus.COMPLETED, score=worst):
                return super().populate_space(trial_id)
        finally:
            for t in pruned:
                t.score = saved[t.trial_id]


_ADOPTED = {HyperbandOracle: PruningAwareHyperbandOracle,
            BayesianOptimizationOracle: PruningAwareBayesianOptimizationOracle}


class RankedBestTrials:
    """An oracle's ``get_best_trials`` under ktplus's ranking: its class's
    own method (keras-tuner's order, or a user's), pruned trials moved after
    the fully trained ones (`ktplus._ranking.ranked_best`). Set on the
    oracle instance by `adopt_oracle`, so the oracle keeps its class."""

    def __init__(self, oracle: Any) -> None:
        self.oracle = oracle

    def __call__(self, num_trials: int = 1) -> list[Any]:
        own = type(self.oracle).get_best_trials.__get__(self.oracle)
        return ranked_best(self.oracle, own, num_trials)


def adopt_oracle(oracle: Any) -> None:
    """Gives keras-tuner's own Hyperband/Bayesian oracle (exact class) the
    pruning-aware behaviour above, and every oracle that holds the trials
    (not a distributed worker's client: the chief's oracle ranks) the
    ranking of `ktplus._ranking` for ``get_best_trials``."""
    cls = _ADOPTED.get(type(oracle))
    if cls is not None:
        oracle.__class__ = cls
    if local_oracle(oracle) is oracle and not isinstance(vars(oracle).get("get_best_trials"), RankedBestTrials):
        oracle.get_best_trials = RankedBestTrials(oracle)


def promotable_trials(oracle: Any) -> set[str] | None:
    """The trials a later Hyperband round may still continue from (their
    checkpoints must stay), or None when ``oracle`` is no Hyperband oracle.
    The pruning-aware Hyperband above never promotes a pruned trial; a
    user's Hyperband subclass may promote any completed one."""
    ids = hyperband_promotable(oracle)
    if ids is None or not isinstance(oracle, PruningAwareHyperbandOracle):
        return ids
    return {tid for tid in ids if tid not in oracle.trials or not is_pruned(oracle.trials[tid])}


def retry_unrecorded(oracle: Any) -> list[str]:
    """Sends to keras-tuner's retry queue the trials saved as RUNNING that the
    oracle's state does not know were started.

    keras-tuner's ``create_trial`` writes the new trial's ``trial.json``, then
    ``oracle.json``; a kill between the two leaves a trial that a reload
    counts (its id is taken, it uses up ``max_trials``) but never runs, so a
    resumed search ends with it still "running". keras-tuner retries the
    trials ``oracle.json`` records as ongoing; this retries those it missed
    the same way (recording their values as tried).

    Returns:
        The ids sent for retry.
    """
    started = set(getattr(oracle, "start_order", ()))
    queued = set(getattr(oracle, "_retry_queue", ()))
    lost = sorted(tid for tid, t in oracle.trials.items()
                  if t.status == TrialStatus.RUNNING and tid not in started and tid not in queued)
    for tid in lost:
        oracle.start_order.append(tid)
        oracle._retry_queue.append(tid)
        oracle._record_values(oracle.trials[tid])
    if lost:
        oracle.save()
    return lost
