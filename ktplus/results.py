"""Trials as a table: ``tuner.results()``, ``ktplus.load_results(DIR)``,
``ktplus report``.

One row per trial: ``trial_id``, ``status`` (completed, pruned, failed,
infeasible: a model over ``max_model_size``, skipped; invalid, running),
``score`` (the best objective value; with
cross-validation the mean over the folds), ``score_std`` and ``folds``
(only for a cross-validated search), ``gap`` (overfitting: the best epoch's
training value of the objective's metric minus its validation value, in the
objective's direction, so positive means the model does better on the data
it trained on), ``epochs`` (run), ``best_epoch``, ``pruned_epoch``,
``num_params`` and ``trial_seconds`` (where trials recorded them: every
ktplus trial that ran), every hyperparameter of the space (empty where
inactive) and every metric at the best epoch as ``best/<metric>``. Best
first, in ktplus's one ranking (`ktplus._ranking`, the oracle's): fully
trained trials by score in the objective's direction, then pruned trials
(whose score covers part of their training or folds), then unscored ones.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from typing import Any

from ktplus import _facts
from ktplus._errors import invalid, invalid_type
from ktplus._ranking import ranked

META_FILE = "ktplus.json"
#: DataFrame column -> the trial metric it comes from.
FACTS = {"epochs": _facts.EPOCHS_RUN, "best_epoch": _facts.BEST_EPOCH, "pruned_epoch": _facts.PRUNED_EPOCH}
FACT_COLUMNS = tuple(FACTS)
#: Columns of a cross-validated search (absent otherwise).
CV_COLUMNS = (_facts.SCORE_STD, _facts.FOLDS)
#: The trial-level values (absent where no trial recorded them).
TRIAL_COLUMNS = (_facts.NUM_PARAMS, _facts.TRIAL_SECONDS)
#: Columns that are not hyperparameters or ``best/`` metrics.
INFO_COLUMNS = ("trial_id", "status", "score", *CV_COLUMNS, "gap", *FACT_COLUMNS, *TRIAL_COLUMNS, "message")
#: Columns holding counts (integers where every value is whole).
_COUNT_COLUMNS = (*FACT_COLUMNS, _facts.FOLDS, _facts.NUM_PARAMS)


def gap_of(metrics: Any, objective: str | None, direction: str) -> float:
    """The overfitting gap of a trial's best-epoch metrics: training value
    of the objective's metric minus its validation value, sign flipped for a
    "min" objective (positive: better on the training data); NaN when the
    objective is not a ``val_`` metric or either value is missing."""
    if not objective or not objective.startswith("val_"):
        return math.nan
    train = objective[len("val_"):]
    if not (metrics.exists(train) and metrics.exists(objective)):
        return math.nan
    t, v = metrics.get_last_value(train), metrics.get_last_value(objective)
    if t is None or v is None:
        return math.nan
    return float(t - v) if direction == "max" else float(v - t)


def hyperparameter_names(trials: Iterable[Any], space_names: Iterable[str] = ()) -> list[str]:
    """The hyperparameter columns of a table of ``trials``: the space's
    names in order, then any other name a trial holds (Hyperband's
    ``tuner/*`` bookkeeping left out)."""
    names: list[str] = list(dict.fromkeys(n for n in space_names if not n.startswith("tuner/")))
    for trial in trials:
        names += [n for n in trial.hyperparameters.values if n not in names and not n.startswith("tuner/")]
    return names


def results_frame(trials: Iterable[Any], objective: str | None, direction: str,
                  space_names: Iterable[str] = ()) -> Any:
    """Builds the results DataFrame from keras-tuner `Trial` objects, best
    first (`ktplus._ranking.ranked`)."""
    import pandas as pd

    trials = list(trials)
    names = hyperparameter_names(trials, space_names)
    trials = ranked(trials, direction)
    recorded = [f for f in TRIAL_COLUMNS if any(t.metrics.exists(f) for t in trials)]
    rows = []
    for trial in trials:
        metrics = trial.metrics
        row: dict[str, Any] = {"trial_id": trial.trial_id, "status": _facts.status_of(trial),
                               "score": trial.score if trial.score is not None else math.nan}
        for fact in CV_COLUMNS:
            if metrics.exists(fact):
                row[fact] = metrics.get_last_value(fact)
        row["gap"] = gap_of(metrics, objective, direction)
        for column, fact in FACTS.items():
            row[column] = metrics.get_last_value(fact) if metrics.exists(fact) else math.nan
        for fact in recorded:
            row[fact] = metrics.get_last_value(fact) if metrics.exists(fact) else math.nan
        values = trial.hyperparameters.values
        for name in names:
            row[name] = values.get(name)
        for name in sorted(metrics.metrics):
            if name not in _facts.FACTS:
                row[f"best/{name}"] = metrics.get_last_value(name)
        if trial.message:
            row["message"] = str(trial.message).strip().splitlines()[-1]
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["trial_id", "status", "score", "gap", *FACT_COLUMNS, *names])
        frame.attrs.update(objective=objective, direction=direction)
        return frame
    for fact in _COUNT_COLUMNS:
        values = frame[fact] if fact in frame else None
        if values is not None and values.notna().all() and (values.astype(float) % 1 == 0).all():
            frame[fact] = values.astype("Int64")  # a mean over folds or executions stays a float
    frame.attrs["objective"] = objective
    frame.attrs["direction"] = direction
    return frame.reset_index(drop=True)


def read_meta(project_dir: str) -> dict[str, Any]:
    """What `write_meta` and `record_fit_settings` recorded ({} if nothing)."""
    from ktplus._atomic import read_json_dict

    return read_json_dict(os.path.join(project_dir, META_FILE))


def write_meta(project_dir: str, objective: Any, tuner: str) -> None:
    """Records what `load_results` needs to rank trials without a tuner."""
    from ktplus._atomic import atomic_write_json

    name = getattr(objective, "name", None)
    parts = getattr(objective, "objectives", None)  # a MultiObjective's, for the Pareto front
    record = {**read_meta(project_dir), "objective": name,
              "direction": getattr(objective, "direction", "min"), "tuner": tuner}
    if parts:
        record["objectives"] = [[o.name, o.direction] for o in parts]
    atomic_write_json(os.path.join(project_dir, META_FILE), record)


def record_fit_settings(project_dir: str, fit_kwargs: dict) -> None:
    """Records the ``epochs`` and ``batch_size`` a search trained with, so
    a refit (in this process or a later one) replays them."""
    from ktplus._atomic import atomic_write_json

    fit = {k: fit_kwargs[k] for k in ("epochs", "batch_size")
           if isinstance(fit_kwargs.get(k), int) and not isinstance(fit_kwargs.get(k), bool)}
    meta = read_meta(project_dir)
    if meta.get("fit") != fit and os.path.isdir(project_dir):
        atomic_write_json(os.path.join(project_dir, META_FILE), {**meta, "fit": fit})


def _is_project(path: str) -> bool:
    """A search's project directory: keras-tuner's oracle.json, or (a ktplus
    tuner built, its search not yet past the first trial's start) ktplus's
    record."""
    return os.path.isfile(os.path.join(path, "oracle.json")) or os.path.isfile(os.path.join(path, META_FILE))


def _find_project(directory: str) -> str:
    if _is_project(directory):
        return directory
    candidates = [os.path.join(directory, d) for d in sorted(os.listdir(directory))
                  if _is_project(os.path.join(directory, d))]
    if len(candidates) == 1:
        return candidates[0]
    raise invalid("directory", directory,
                  "a search's project directory (the one holding oracle.json and trial_*/)"
                  + (f"; it holds several: {', '.join(map(os.path.basename, candidates))}"
                     if candidates else ""))


def read_project(directory: str | os.PathLike) -> tuple[str, list[Any], str | None, str, list[str]]:
    """Reads a search's records from its directory (nothing else).

    Args:
        directory: The project directory, or a directory holding exactly one.

    Returns:
        ``(project_dir, trials, objective, direction, space_names)``: the
        keras-tuner `Trial` records in trial-directory order, the objective's
        name and direction (recorded by ktplus, or inferred from a plain
        keras-tuner search's metrics) and the search space's names in order.

    Raises:
        ValueError: naming ``directory`` when it holds no search, or a trial
            file that cannot be read.
    """
    if not isinstance(directory, (str, os.PathLike)):
        raise invalid_type("directory", directory, "a search's directory path (str or os.PathLike)")
    directory = os.fspath(directory)
    if not isinstance(directory, str) or not os.path.isdir(directory):
        raise invalid("directory", directory, "an existing search directory")
    project = _find_project(directory)

    from ktplus._quiet import import_quietly

    import_quietly()
    from keras_tuner import HyperParameters
    from keras_tuner.engine import trial as trial_module

    trials = []
    for name in sorted(os.listdir(project)):
        path = os.path.join(project, name, "trial.json")
        if name.startswith("trial_") and os.path.isfile(path):
            try:
                trials.append(trial_module.Trial.load(path))
            except (ValueError, KeyError) as e:
                raise ValueError(f"Unreadable trial file {path}: {e}") from None
    objective, direction = None, "min"
    meta = read_meta(project)
    if meta:
        objective, direction = meta.get("objective"), meta.get("direction", "min")
    else:
        for t in trials:  # a plain keras-tuner search: infer from the metrics
            for name, tracker in t.metrics.metrics.items():
                if t.score is not None and tracker.direction and t.metrics.get_best_value(name) == t.score:
                    objective, direction = name, tracker.direction
                    break
            if objective:
                break
    names: list[str] = []
    try:
        with open(os.path.join(project, "oracle.json")) as f:
            space = HyperParameters.from_config(json.load(f)["hyperparameters"])
        names = list(dict.fromkeys(hp.name for hp in space.space))
    except (OSError, ValueError, KeyError):
        pass
    return project, trials, objective, direction, names


def load_results(directory: str | os.PathLike) -> Any:
    """Loads a finished or running search's trials as a pandas DataFrame.

    Args:
        directory: The project directory (``<directory>/<project_name>``), or
            a directory holding exactly one project.

    Returns:
        A DataFrame with one row per trial (see the module docstring); its
        ``attrs`` hold the objective's name and direction.

    Example:

    >>> import ktplus
    >>> ktplus.load_results("runs/digits")  # doctest: +SKIP
    """
    _, trials, objective, direction, names = read_project(directory)
    return results_frame(trials, objective, direction, names)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def leaderboard(frame: Any, top: int | None = None) -> Any:
    """The columns a leaderboard shows: status, epochs, score, the
    parameter count and wall time, and the hyperparameters."""
    columns = [c for c in frame.columns if not c.startswith("best/") and c not in ("message", "best_epoch",
                                                                                     "pruned_epoch")]
    if "gap" in columns and frame["gap"].isna().all():
        columns.remove("gap")  # an objective with no training counterpart
    frame = frame[columns]
    return frame.head(top) if top else frame


def format_table(frame: Any, top: int | None = None) -> str:
    """A plain-text leaderboard table."""
    frame = leaderboard(frame, top)
    if frame.empty:
        return "(no trials yet)"
    columns = [str(c) for c in frame.columns]
    cells = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def plot(frame: Any, path: str) -> None:
    """Objective per trial with the best-so-far line, and the objective
    against each tuned hyperparameter, in one PNG.

    Draws on a standalone `matplotlib.figure.Figure`: no pyplot, so the
    process's matplotlib backend (a notebook's, say) is left as it was.
    """
    import pandas as pd
    from matplotlib.figure import Figure

    objective = frame.attrs.get("objective") or "objective"
    direction = frame.attrs.get("direction", "min")
    scored = frame[frame["score"].notna()].copy()
    scored["n"] = pd.to_numeric(scored["trial_id"], errors="coerce")
    scored = scored.sort_values("n")
    hp_columns = [c for c in frame.columns if c not in INFO_COLUMNS
                  and not c.startswith("best/") and frame[c].nunique(dropna=True) > 1]
    n = 1 + len(hp_columns)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(5 * cols, 3.6 * rows), layout="tight")
    axes = fig.subplots(rows, cols, squeeze=False)
    ax = axes[0][0]
    ax.scatter(scored["n"], scored["score"], label=objective, color="tab:blue")
    best = scored["score"].cummax() if direction == "max" else scored["score"].cummin()
    ax.step(scored["n"], best, where="post", color="tab:orange", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.legend()
    ax.set_title(f"{objective} per trial")
    for i, column in enumerate(hp_columns, start=1):
        ax = axes[i // cols][i % cols]
        data = scored[scored[column].notna()]
        values = data[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            ax.scatter(values.astype(float), data["score"])
            if values.min() > 0 and values.max() / values.min() >= 50:
                ax.set_xscale("log")
        else:
            labels = sorted(map(str, values.unique()))
            ax.scatter([labels.index(str(v)) for v in values], data["score"])
            ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(column)
        ax.set_ylabel(objective)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.savefig(path, dpi=90)
