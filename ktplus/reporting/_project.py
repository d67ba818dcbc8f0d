"""A search as the report sees it: everything read from its directory.

The report reads files only (trials, ktplus's records, curves, the held-out
evaluation), so it works on a finished, running, resumed or distributed
search and on a plain keras-tuner directory, whose trials hold their
metrics and hyperparameters but none of ktplus's records.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from ktplus import _facts
from ktplus._facts import CURVES_DIR


@dataclass
class Search:
    """One search's records.

    Attributes:
        project: The project directory.
        trials: keras-tuner `Trial` records, in trial-number order.
        space: The search space (`keras_tuner.HyperParameters`), or None
            when ``oracle.json`` holds none.
        objective: The objective's name (None when unknown).
        direction: "min" or "max".
        objectives: ``(name, direction)`` of each objective (one entry for
            a single objective).
        tuner: The tuner's class name (recorded by ktplus), or None.
        data: What ``ktplus search`` recorded about the data ({} otherwise).
        evaluation: The held-out evaluation record, or None.

    Example:

    >>> from ktplus.reporting import load_search
    >>> search = load_search("runs/digits")  # doctest: +SKIP
    >>> search.frame().head(3)  # doctest: +SKIP
    """

    project: str
    trials: list[Any]
    space: Any
    objective: str | None
    direction: str
    objectives: list[tuple[str, str]]
    tuner: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] | None = None

    @property
    def space_names(self) -> list[str]:
        return [] if self.space is None else list(dict.fromkeys(hp.name for hp in self.space.space))

    def frame(self) -> Any:
        """The results table (`ktplus.load_results`'s)."""
        from ktplus.results import results_frame

        return results_frame(self.trials, self.objective, self.direction, self.space_names)

    def kt_objective(self) -> Any:
        """The objective as a keras-tuner ``Objective`` (a ``MultiObjective``
        for several)."""
        from ktplus._compat import MultiObjective
        from ktplus._quiet import import_quietly

        import_quietly()
        import keras_tuner

        objectives = [keras_tuner.Objective(n, d) for n, d in self.objectives]
        return objectives[0] if len(objectives) == 1 else MultiObjective(objectives)

    def curve_metric(self) -> tuple[str, str, float]:
        """What the learning curves show: ``(label, direction, sign)``.

        ktplus records each epoch's value of the objective's epoch-level
        part; for a list of objectives that is keras-tuner's combination
        (each "max" objective negated, summed), so a list with one
        epoch-level metric is shown as that metric (``sign`` -1 undoes the
        negation) and a longer one as the combination.
        """
        from ktplus._objectives import is_trial_level

        if len(self.objectives) == 1:
            return self.objective or "objective", self.direction, 1.0
        epoch_level = [(n, d) for n, d in self.objectives if not is_trial_level(n)]
        if len(epoch_level) == 1:
            name, direction = epoch_level[0]
            return name, direction, -1.0 if direction == "max" else 1.0
        return "combined objectives (keras-tuner's sum, minimized)", "min", 1.0

    def curves(self) -> dict[str, dict[int, float]]:
        """The objective by epoch (0-based) of each trial that has one: the
        epochs it trained itself (the mean over folds with cross-validation),
        from ktplus's curve records, or from a plain keras-tuner trial's
        metric history (see `curve_metric`)."""
        from ktplus.training._pruning import CurveStore

        store = CurveStore(os.path.join(self.project, CURVES_DIR))
        label, _, sign = self.curve_metric()
        out: dict[str, dict[int, float]] = {}
        for trial in self.trials:
            curve = {e: sign * v for e, v in store.trial_curve(trial.trial_id).items() if v is not None}
            if not curve and trial.metrics.exists(label):
                curve = {int(o.step): float(o.mean()) for o in trial.metrics.get_history(label)}
            curve = {e: v for e, v in curve.items() if v is not None and math.isfinite(v)}
            if curve:
                out[str(trial.trial_id)] = dict(sorted(curve.items()))
        return out

    def fold_scores(self) -> dict[str, list[float]]:
        """Each cross-validated trial's per-fold scores (the best epoch of
        each fold's curve, as `curve_metric` describes it), by trial id ({}
        for a search without cv)."""
        from ktplus.training._pruning import CurveStore

        store = CurveStore(os.path.join(self.project, CURVES_DIR))
        _, direction, sign = self.curve_metric()
        best_of = max if direction == "max" else min
        out: dict[str, dict[int, float]] = {}
        for curve in store.curves(None, states=(*_facts.STATUSES, "running")):
            if curve.fold is None:
                continue
            finite = [sign * v for v in curve.values.values() if v is not None and math.isfinite(v)]
            if finite:
                out.setdefault(curve.trial_id, {})[curve.fold] = best_of(finite)
        return {t: [folds[k] for k in sorted(folds)] for t, folds in out.items()}


def trial_number(trial_id: Any) -> float:
    """A trial id as a number for ordering and plotting (NaN if not numeric)."""
    try:
        return float(int(str(trial_id)))
    except ValueError:
        return math.nan


def _objectives(meta: dict[str, Any], data: dict[str, Any], objective: str | None,
                direction: str) -> list[tuple[str, str]]:
    recorded = meta.get("objectives")
    if isinstance(recorded, list) and recorded and all(
            isinstance(o, list) and len(o) == 2 and o[1] in ("min", "max") for o in recorded):
        return [(str(n), str(d)) for n, d in recorded]
    names = data.get("objective")
    if isinstance(names, list) and len(names) > 1:  # a CLI search recorded before ktplus.json held them
        from ktplus.cli._data import maximized

        return [(str(n), "max" if maximized(str(n)) else "min") for n in names]
    return [(objective or "score", direction)]


def load_search(directory: str | os.PathLike) -> Search:
    """Reads the search in ``directory``.

    Args:
        directory: The project directory, or a directory holding exactly one.

    Raises:
        ValueError: naming ``directory`` when it holds no search.
    """
    import json

    from ktplus._atomic import read_json_dict
    from ktplus.evaluation._heldout import load_evaluation
    from ktplus.results import META_FILE, read_project

    project, trials, objective, direction, _ = read_project(directory)
    trials.sort(key=lambda t: (math.isnan(trial_number(t.trial_id)), trial_number(t.trial_id), str(t.trial_id)))
    space = None
    try:
        from keras_tuner import HyperParameters

        with open(os.path.join(project, "oracle.json")) as f:
            space = HyperParameters.from_config(json.load(f)["hyperparameters"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    meta = read_json_dict(os.path.join(project, META_FILE))
    data = read_json_dict(os.path.join(project, "ktplus_data.json"))
    try:
        evaluation = load_evaluation(project)
    except ValueError:  # a damaged record: the report shows the rest
        evaluation = None
    return Search(project=project, trials=trials, space=space, objective=objective, direction=direction,
                  objectives=_objectives(meta, data, objective, direction), tuner=meta.get("tuner"),
                  data=data, evaluation=evaluation)


def load_pareto_front(directory: str | os.PathLike) -> Any:
    """The Pareto front of the search in ``directory``, as
    `ktplus.Tuner.pareto_front` gives it for a live tuner (the best trial and
    its ties for a single objective).

    Args:
        directory: The project directory, or a directory holding exactly one.

    Returns:
        A pandas DataFrame: ``trial_id``, one column per objective, then
        the hyperparameters; best first by the first objective;
        ``attrs["directions"]`` maps each objective to its direction.

    Example:

    >>> import ktplus
    >>> front = ktplus.load_pareto_front("runs/digits")  # doctest: +SKIP
    >>> front.attrs["directions"]  # doctest: +SKIP
    {'val_accuracy': 'max', 'num_params': 'min'}
    """
    from ktplus._pareto import pareto_front_frame

    search = load_search(directory)
    return pareto_front_frame(search.trials, search.kt_objective(), search.space_names)
