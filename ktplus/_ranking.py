"""The one ranking of a search's trials, best first.

keras-tuner ranks the completed trials by score (``Oracle.get_best_trials``:
a stable sort, so equal scores keep the oracle's order), then the others. A
pruned trial keeps keras-tuner's COMPLETED status, but its score covers part
of its training (with cross-validation, part of its folds): it must never
outrank a trial scored on its whole budget. So ktplus ranks in three tiers,
each in keras-tuner's order:

1. fully trained completed trials with a score;
2. pruned trials with a score (taken only when too few trials are fully
   trained);
3. every other trial (failed, infeasible, running, ... or without a score,
   or with a NaN score), in the order given.

Every place that names "the best" trial reads this ranking: the oracle's own
``get_best_trials`` (hence keras-tuner's ``get_best_hyperparameters``,
``get_best_models`` and its verbose display; on a distributed worker, the
chief's oracle ranks), ``tuner.results()`` and the CLI's leaderboard,
``evaluate``, ``refit``, the CLI's printed best and export,
``keep_checkpoints``, the Pareto front (tier 1 only) and the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from ktplus import _facts

#: The tiers of the ranking (see the module's documentation).
FULL, PRUNED, UNSCORED = 0, 1, 2


def tier(trial: Any) -> int:
    """A trial's tier: `FULL`, `PRUNED` or `UNSCORED` (no score, or NaN)."""
    if trial.score is None or math.isnan(trial.score):
        return UNSCORED
    status = _facts.status_of(trial)
    if status == _facts.COMPLETED:
        return FULL
    return PRUNED if status == _facts.PRUNED else UNSCORED


def is_fully_scored(trial: Any) -> bool:
    """Whether a trial completed its whole budget with a score (the trials
    a Pareto front and a "best so far" line are drawn from)."""
    return tier(trial) == FULL


def tiered(trials: Iterable[Any]) -> list[Any]:
    """``trials`` (already ordered by score) with each tier's trials after
    the better tiers', keeping their order within a tier."""
    return sorted(trials, key=tier)


def ranked(trials: Iterable[Any], direction: str) -> list[Any]:
    """Every one of ``trials``, best first.

    Args:
        trials: keras-tuner `Trial` records (any status), in the oracle's
            order (ties keep it).
        direction: The objective's direction, "min" or "max".

    Returns:
        The trials, fully trained ones by score first, then pruned ones by
        score, then the others in the order given.
    """
    trials = list(trials)
    scored = [t for t in trials if tier(t) != UNSCORED]
    by_score = sorted(scored, key=lambda t: t.score, reverse=direction == "max")  # keras-tuner's sort
    return tiered(by_score) + [t for t in trials if tier(t) == UNSCORED]


def ranked_best(oracle: Any, own: Callable[[int], list[Any]], num_trials: int = 1) -> list[Any]:
    """What ``oracle.get_best_trials(num_trials)`` returns under this
    ranking: the oracle's own order (``own``, its class's method: for
    keras-tuner's, completed trials by score, then the others), tiered, so a
    pruned trial never comes before a fully trained one."""
    total = max(num_trials, len(getattr(oracle, "trials", None) or {}))
    return tiered(own(total))[:num_trials]


def best_trials(oracle: Any, n: int) -> list[Any]:
    """At most ``n`` of the oracle's scored (completed or pruned) trials,
    best first: what `tuner.evaluate`, `tuner.refit` and the CLI's printed
    best and export take. A pruned trial only when fewer than ``n`` trials
    are fully trained."""
    return [t for t in oracle.get_best_trials(n) if tier(t) != UNSCORED]
