"""Hyperparameter importance with Optuna's evaluators, over an in-memory
study built from keras-tuner trials.

Optuna's rules apply: only fully trained trials count (completed, not
pruned, failed or infeasible: a pruned trial's score is not a full-budget
result), and the hyperparameters ranked are the tuned ones active in every
counted trial (a conditional hyperparameter active in some trials only is
left out, as Optuna leaves out a parameter some trials lack). Fixed values
and Hyperband's ``tuner/*`` bookkeeping are never ranked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ktplus import _facts
from ktplus._errors import invalid, invalid_type
from ktplus._warnings import warnings_registries_kept

#: ``method`` -> the name the report shows.
METHODS = {"fanova": "fANOVA", "ped_anova": "PED-ANOVA"}
#: The columns of an importance table.
COLUMNS = ["hyperparameter", "importance"]


def check_method(method: Any, arg: str = "method") -> str:
    """Validates an importance method name."""
    if not isinstance(method, str):
        raise invalid_type(arg, method, f"a string, one of {sorted(METHODS)}")
    if method not in METHODS:
        raise invalid(arg, method, f"one of {sorted(METHODS)} (Optuna's fANOVA or PED-ANOVA evaluator)")
    return method


def _evaluator(method: str) -> Any:
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    if method == "fanova":
        return FanovaImportanceEvaluator(seed=0)  # a random forest: seeded, so a report is repeatable
    return PedAnovaImportanceEvaluator()


def importance_frame(trials: Iterable[Any], space: Any, direction: str, method: str = "fanova") -> Any:
    """The importance of each tuned hyperparameter for the trials' score.

    Args:
        trials: keras-tuner `Trial` records (any status: completed ones count).
        space: The search space (`keras_tuner.HyperParameters`).
        direction: The objective's direction, "min" or "max".
        method: "fanova" (Optuna's default) or "ped_anova".

    Returns:
        A pandas DataFrame with ``hyperparameter`` and ``importance``
        (summing to 1), most important first; ``attrs`` hold ``method`` (its
        name, e.g. "fANOVA") and ``trials`` (how many trials it used).

    Raises:
        ValueError: with no tuned hyperparameter, fewer than two completed
            trials with a score, scores that are all equal, or no tuned
            hyperparameter active in all of them.
    """
    import optuna
    import pandas as pd

    from ktplus.oracles._samplers import quiet_optuna
    from ktplus.oracles._space import active_params, distribution, tunable

    method = check_method(method)
    if not any(not distribution(hp).single() for hp in tunable(space)):
        raise ValueError("Hyperparameter importance needs a tuned hyperparameter (a range or a list of "
                         "choices); this search has none")
    done = [t for t in trials if _facts.status_of(t) == _facts.COMPLETED
            and t.score is not None and math.isfinite(float(t.score))]
    if len(done) < 2:
        raise ValueError(f"Hyperparameter importance needs at least 2 completed trials with a score; "
                         f"the search has {len(done)}")
    if len({float(t.score) for t in done}) == 1:
        raise ValueError(f"Hyperparameter importance needs scores that differ; all {len(done)} completed "
                         f"trials scored {float(done[0].score):.4g}")
    rows = [active_params(space, t.hyperparameters.values) for t in done]
    shared = set.intersection(*(set(dists) for _, dists in rows))
    tuned = [n for n in dict.fromkeys(n for _, dists in rows for n in dists)
             if n in shared and not rows[0][1][n].single()]
    if not tuned:
        raise ValueError("Hyperparameter importance needs a tuned hyperparameter active in every completed "
                         "trial (conditional ones are left out, as Optuna does); this search has none")
    with quiet_optuna(), warnings_registries_kept():
        study = optuna.create_study(direction="maximize" if direction == "max" else "minimize")
        for trial, (params, dists) in zip(done, rows):
            study.add_trial(optuna.trial.create_trial(
                params={n: params[n] for n in tuned}, distributions={n: dists[n] for n in tuned},
                value=float(trial.score)))
        if len(tuned) == 1:
            scores = {tuned[0]: 1.0}
        else:
            try:
                scores = {n: float(v) for n, v in optuna.importance.get_param_importances(
                    study, evaluator=_evaluator(method), params=tuned, normalize=True).items()}
            except RuntimeError as e:  # fANOVA's forest saw no variance (too few distinct trials)
                raise ValueError(f"Hyperparameter importance ({METHODS[method]}) could not be computed from "
                                 f"{len(done)} completed trials: {e}") from None
    total = sum(v for v in scores.values() if math.isfinite(v))
    if not total > 0:  # the scores differ, but no hyperparameter active in every trial explains it
        raise ValueError(f"Hyperparameter importance found no share for {', '.join(tuned)}: the scores vary "
                         "with something else (a conditional hyperparameter, or chance)")
    scores = {n: (v / total if math.isfinite(v) else 0.0) for n, v in scores.items()}
    order = sorted(tuned, key=lambda n: (-scores.get(n, 0.0), tuned.index(n)))
    frame = pd.DataFrame({"hyperparameter": order, "importance": [scores.get(n, 0.0) for n in order]},
                         columns=COLUMNS)
    frame.attrs["method"] = METHODS[method]
    frame.attrs["trials"] = len(done)
    return frame


def importance(directory: Any, method: str = "fanova") -> Any:
    """The importance of each tuned hyperparameter of a saved search.

    Computed with Optuna's importance evaluators (``optuna.importance``)
    over the search's fully trained trials, read from its directory (a
    running, resumed, distributed or plain keras-tuner search too).

    Args:
        directory: The project directory (``<directory>/<project_name>``),
            or a directory holding exactly one project.
        method: "fanova" (fANOVA, Optuna's default) or "ped_anova".

    Returns:
        A pandas DataFrame with ``hyperparameter`` and ``importance``
        (summing to 1), most important first; ``attrs["method"]`` names the
        method.

    Raises:
        ValueError: for a directory that holds no search, fewer than two
            completed trials, or no tuned hyperparameter.

    Example:

    >>> import ktplus
    >>> ktplus.importance("runs/digits")  # doctest: +SKIP
      hyperparameter  importance
    0  learning_rate        0.71
    1        dropout        0.29
    """
    from ktplus.reporting._project import load_search

    method = check_method(method)
    search = load_search(directory)
    if search.space is None:
        raise invalid("directory", str(directory), "a search whose oracle.json holds its search space")
    return importance_frame(search.trials, search.space, search.direction, method)
