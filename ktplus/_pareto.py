"""Pareto fronts: the completed trials no other completed trial beats in
every objective.

A trial dominates another when it is at least as good in every objective
and strictly better in one, each in its objective's direction ("min" or
"max"); the front is the set of trials nothing dominates (equal trials do
not dominate each other, so ties stay on the front together). The maths
works on plain arrays (`pareto_mask`), so anything holding keras-tuner
`Trial` records, a live tuner or a search directory read back, can draw its
front (`pareto_front_frame`, `pareto_membership`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ktplus._compat import MultiObjective
from ktplus._ranking import is_fully_scored

#: Candidates compared at once: bounds the memory to CHUNK x n x k booleans.
CHUNK = 256


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Which rows of ``values`` are on the Pareto front.

    Args:
        values: An array of shape ``(n, k)``: one row per point, one column
            per objective (shape ``(n,)`` for one objective). A row holding
            a NaN is never on the front and dominates nothing.
        directions: ``k`` directions, each "min" or "max".

    Returns:
        A boolean array of shape ``(n,)``, True for the non-dominated rows.

    Example:

    >>> import numpy as np
    >>> from ktplus._pareto import pareto_mask
    >>> pareto_mask(np.array([[0.9, 300], [0.8, 100], [0.7, 200], [0.8, 100]]), ["max", "min"])
    array([ True,  True, False,  True])
    """
    directions = list(directions)
    for d in directions:
        if d not in ("min", "max"):
            raise ValueError(f"pareto_mask(): each direction must be 'min' or 'max'; got {d!r}")
    points = np.asarray(values, dtype=float)
    if points.ndim == 1 and len(directions) == 1:
        points = points[:, None]
    if points.ndim != 2 or points.shape[1] != len(directions):
        raise ValueError(f"pareto_mask(): `values` must have shape (n, {len(directions)}) for "
                         f"{len(directions)} directions; got shape {points.shape}")
    costs = points * np.where(np.asarray(directions) == "max", -1.0, 1.0)  # every objective minimized
    valid = ~np.isnan(costs).any(axis=1)
    candidates = costs[valid]
    front = np.empty(len(candidates), dtype=bool)
    for start in range(0, len(candidates), CHUNK):
        block = candidates[start:start + CHUNK, None, :]  # (m, 1, k) against every point (1, n, k)
        no_worse = (candidates[None, :, :] <= block).all(axis=-1)
        better = (candidates[None, :, :] < block).any(axis=-1)
        front[start:start + CHUNK] = ~(no_worse & better).any(axis=1)
    mask = np.zeros(len(costs), dtype=bool)
    mask[valid] = front
    return mask


def objective_directions(objective: Any) -> tuple[list[str], list[str]]:
    """The objective's metric names and directions, one per objective (the
    objective itself when it is not a list)."""
    if isinstance(objective, MultiObjective):
        return [o.name for o in objective.objectives], [o.direction for o in objective.objectives]
    return [objective.name], [objective.direction]


def objective_values(trial: Any, objective: Any) -> list[float]:
    """A trial's value of each objective: for a list, each metric at the
    trial's best epoch; otherwise the trial's score (NaN where missing)."""
    if not isinstance(objective, MultiObjective):
        return [math.nan if trial.score is None else float(trial.score)]
    values = []
    for o in objective.objectives:
        value = trial.metrics.get_last_value(o.name) if trial.metrics.exists(o.name) else None
        values.append(math.nan if value is None else float(value))
    return values


def _completed(trials: Iterable[Any], objective: Any) -> tuple[list[Any], np.ndarray, list[str], list[str]]:
    names, directions = objective_directions(objective)
    done = [t for t in trials if is_fully_scored(t)]  # the ranking's first tier: not pruned, failed, infeasible
    values = np.array([objective_values(t, objective) for t in done], dtype=float).reshape(len(done),
                                                                                          len(names))
    return done, values, names, directions


def pareto_membership(trials: Iterable[Any], objective: Any) -> dict[str, bool]:
    """Whether each completed trial is on the front, by trial id.

    Args:
        trials: keras-tuner `Trial` records (any status).
        objective: The search's `keras_tuner.Objective`.

    Returns:
        One entry per completed trial (pruned, failed and infeasible trials
        have none).
    """
    done, values, _, directions = _completed(trials, objective)
    mask = pareto_mask(values, directions)
    return {str(t.trial_id): bool(on) for t, on in zip(done, mask)}


def pareto_front_frame(trials: Iterable[Any], objective: Any, space_names: Iterable[str] = ()) -> Any:
    """The Pareto front of ``trials`` as a pandas DataFrame.

    Args:
        trials: keras-tuner `Trial` records (any status: only completed
            trials count; pruned, failed and infeasible ones are left out).
        objective: The search's `keras_tuner.Objective` (a ``MultiObjective``
            for a list).
        space_names: The search space's hyperparameter names, in order.

    Returns:
        ``trial_id``, one column per objective named by its metric, then the
        hyperparameters (empty where inactive); one row per trial on the
        front, best first by the first objective (ties in their trial order).
        ``attrs["directions"]`` maps each objective to its direction.
    """
    import pandas as pd

    from ktplus.results import hyperparameter_names

    done, values, names, directions = _completed(trials, objective)
    hps = hyperparameter_names(done, space_names)
    mask = pareto_mask(values, directions)
    rows = []
    for trial, row, on in zip(done, values, mask):
        if on:
            hp_values = trial.hyperparameters.values
            rows.append({"trial_id": trial.trial_id, **dict(zip(names, row.tolist())),
                         **{name: hp_values.get(name) for name in hps}})
    frame = pd.DataFrame(rows, columns=["trial_id", *names, *hps])
    if not frame.empty:
        frame = frame.sort_values(names[0], ascending=directions[0] == "min", kind="stable")
    frame = frame.reset_index(drop=True)
    frame.attrs["directions"] = dict(zip(names, directions))
    return frame
