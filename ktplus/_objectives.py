"""The objectives ktplus adds to keras-tuner's: ``"num_params"`` and
``"trial_seconds"``, both minimized, which need no compiled metric.

They are trial-level values, constant over the epochs of a trial: the built
model's parameter count and the wall seconds of the whole trial. ktplus
records them with every trial's metrics (as a constant per-epoch series, so
keras-tuner reads them at the best epoch like any metric), which lets users
trade accuracy against size or speed::

    ktplus.RandomSearch(hypermodel, objective=["val_accuracy", "num_params"], ...)

Whatever picks an epoch (the best-epoch checkpoint) watches only the
epoch-level part of the objective (`epoch_objective`): a constant never
changes which epoch is best.
"""

from __future__ import annotations

from typing import Any

import keras_tuner

from ktplus import _facts
from ktplus._compat import MultiObjective
from ktplus._compat import create_objective as _keras_tuner_create_objective

#: The built-in objectives and their directions.
BUILTIN_OBJECTIVES = {_facts.NUM_PARAMS: "min", _facts.TRIAL_SECONDS: "min"}


def _builtin(objective: Any) -> Any:
    if isinstance(objective, str) and objective in BUILTIN_OBJECTIVES:
        return keras_tuner.Objective(objective, BUILTIN_OBJECTIVES[objective])
    return objective


def create_objective(objective: Any) -> Any:
    """keras-tuner's ``create_objective``, which also knows the built-ins.

    Args:
        objective: None, a metric name, a `keras_tuner.Objective`, or a list
            of those. ``"num_params"`` and ``"trial_seconds"`` (alone or in
            a list) become ``keras_tuner.Objective(name, "min")``.

    Returns:
        A `keras_tuner.Objective` (a ``MultiObjective`` for a list, keras-tuner's
        ``DefaultObjective`` for None).

    Example:

    >>> from ktplus._objectives import create_objective
    >>> print(create_objective("num_params"))
    Objective(name="num_params", direction="min")
    >>> [o.direction for o in create_objective(["val_accuracy", "trial_seconds"]).objectives]
    ['max', 'min']
    """
    if isinstance(objective, list):
        objective = [_builtin(o) for o in objective]
    return _keras_tuner_create_objective(_builtin(objective))


def is_trial_level(name: str) -> bool:
    """Whether ``name`` is a built-in, trial-level objective (one value per
    trial, constant over its epochs) rather than a per-epoch metric.

    Example:

    >>> from ktplus._objectives import is_trial_level
    >>> is_trial_level("num_params"), is_trial_level("val_loss")
    (True, False)
    """
    return name in BUILTIN_OBJECTIVES


def epoch_objective(objective: Any) -> Any:
    """The part of ``objective`` that the epoch logs hold: the objective
    without its trial-level names.

    Args:
        objective: A `keras_tuner.Objective` (or ``MultiObjective``).

    Returns:
        ``objective`` itself when it has no trial-level name; a
        ``MultiObjective`` of the remaining objectives for a list (it ranks
        epochs as the whole list does: the left-out values are constant over
        a trial's epochs); None when nothing is left.

    Example:

    >>> from ktplus._objectives import create_objective, epoch_objective
    >>> print(epoch_objective(create_objective(["val_accuracy", "num_params"])))
    MultiObjective(name="multi_objective", direction="min"): [Objective(name="val_accuracy", direction="max")]
    >>> epoch_objective(create_objective("trial_seconds")) is None
    True
    """
    if isinstance(objective, MultiObjective):
        kept = [o for o in objective.objectives if not is_trial_level(o.name)]
        if len(kept) == len(objective.objectives):
            return objective
        return MultiObjective(kept) if kept else None
    if is_trial_level(objective.name):
        return None
    return objective
