"""The report's figures, each a plotly ``Figure`` built from a `Search`.

Every builder returns None when the search holds nothing to draw (no scored
trial, no curve, a single objective for the Pareto front, ...): the page
then says why instead of showing an empty frame.
"""

from __future__ import annotations

import math
from typing import Any

from ktplus import _facts
from ktplus._ranking import is_fully_scored, tiered
from ktplus.reporting._project import Search, trial_number

#: Marker and colour of each status, the same in every figure.
STYLE = {
    _facts.COMPLETED: {"symbol": "circle", "color": "#1f77b4"},
    _facts.PRUNED: {"symbol": "x", "color": "#ff7f0e"},
    _facts.FAILED: {"symbol": "x-thin-open", "color": "#d62728"},
    _facts.INFEASIBLE: {"symbol": "diamond-open", "color": "#7f7f7f"},
    "running": {"symbol": "circle-open", "color": "#9467bd"},
}
#: Scored statuses: a pruned trial's score is its best value before it stopped.
SCORED = (_facts.COMPLETED, _facts.PRUNED)
INACTIVE = "(inactive)"
_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "height": 420}


def _go() -> Any:
    import plotly.graph_objects as go

    return go


def _x_of(trials: list[Any]) -> dict[str, float]:
    """Each trial's x: its number, or its position for a non-numeric id."""
    return {str(t.trial_id): (n if not math.isnan(n := trial_number(t.trial_id)) else float(i))
            for i, t in enumerate(trials)}


def _status(trial: Any) -> str:
    return _facts.status_of(trial)


def _score(trial: Any) -> float:
    return math.nan if trial.score is None else float(trial.score)


def _is_scored(trial: Any) -> bool:
    return _status(trial) in SCORED and math.isfinite(_score(trial))


def _objective_label(search: Search) -> str:
    if len(search.objectives) > 1:
        return "score (keras-tuner's combination of the objectives)"
    return search.objective or "score"


def history(search: Search) -> Any:
    """Each trial's score by trial number, the best so far among the
    completed trials, pruned, failed and infeasible trials marked apart
    (trials with no score sit on the axis floor)."""
    go = _go()
    if not search.trials:
        return None
    xs = _x_of(search.trials)
    scored = [t for t in search.trials if _is_scored(t)]
    floor = min((_score(t) for t in scored), default=0.0)
    fig = go.Figure()
    for status, style in STYLE.items():
        group = [t for t in search.trials if _status(t) == status]
        if not group:
            continue
        ys = [_score(t) if _is_scored(t) else floor for t in group]
        text = [f"trial {t.trial_id}: {status}" + (f"<br>{(t.message or '').strip().splitlines()[-1][:200]}"
                                                   if t.message and str(t.message).strip() else "")
                for t in group]
        fig.add_trace(go.Scatter(x=[xs[str(t.trial_id)] for t in group], y=ys, mode="markers",
                                 name=f"{status} ({len(group)})", text=text,
                                 hovertemplate="%{text}<br>score %{y:.4g}<extra></extra>",
                                 marker={"symbol": style["symbol"], "color": style["color"], "size": 10,
                                         "line": {"width": 2, "color": style["color"]}}))
    done = sorted((t for t in scored if is_fully_scored(t)), key=lambda t: xs[str(t.trial_id)])
    if done:
        best_of = max if search.direction == "max" else min
        best, line = None, []
        for t in done:
            best = _score(t) if best is None else best_of(best, _score(t))
            line.append(best)
        fig.add_trace(go.Scatter(x=[xs[str(t.trial_id)] for t in done], y=line, mode="lines",
                                 line={"shape": "hv", "color": "#2ca02c"}, name="best so far (completed)"))
    fig.update_layout(title=f"Optimization history ({search.direction}imize {_objective_label(search)})",
                      xaxis_title="trial", yaxis_title=_objective_label(search), **_LAYOUT)
    return fig


def learning_curves(search: Search, curves: dict[str, dict[int, float]]) -> Any:
    """The objective by epoch of every trial, coloured by status; a pruned
    trial's line ends at the epoch where it was stopped, with a cross."""
    go = _go()
    if not curves:
        return None
    fig = go.Figure()
    shown: set[str] = set()
    by_id = {str(t.trial_id): t for t in search.trials}
    for trial_id, curve in curves.items():
        trial = by_id.get(trial_id)
        status = _status(trial) if trial is not None else "running"
        style = STYLE.get(status, STYLE["running"])
        epochs = [e + 1 for e in curve]
        fig.add_trace(go.Scatter(
            x=epochs, y=list(curve.values()), mode="lines+markers" if len(curve) == 1 else "lines",
            name=status, legendgroup=status, showlegend=status not in shown,
            line={"color": style["color"], "width": 1.5}, opacity=0.75,
            hovertemplate=f"trial {trial_id} ({status})<br>epoch %{{x}}<br>%{{y:.4g}}<extra></extra>"))
        shown.add(status)
        if status == _facts.PRUNED:
            fig.add_trace(go.Scatter(x=epochs[-1:], y=list(curve.values())[-1:], mode="markers",
                                     marker={"symbol": "x", "size": 11, "color": style["color"]},
                                     legendgroup=status, showlegend=False, hoverinfo="skip"))
    label = search.curve_metric()[0]
    last = max((e for curve in curves.values() for e in curve), default=0) + 1
    fig.update_layout(title=f"Learning curves ({label} by epoch; pruned trials end where they were stopped)",
                      xaxis={"title": {"text": "epoch"}, **({"dtick": 1} if last <= 25 else {})},
                      yaxis_title=label, **_LAYOUT)
    return fig


def _tuned(search: Search, trials: list[Any]) -> list[Any]:
    """The space's tuned hyperparameters (not Fixed, not ``tuner/*``) that
    some of ``trials`` hold, in the space's order, one per name."""
    from ktplus.oracles._space import distribution

    if search.space is None:
        return []
    out: dict[str, Any] = {}
    for hp in search.space.space:
        if hp.name.startswith("tuner/") or hp.name in out:
            continue
        if distribution(hp).single():
            continue
        if any(hp.name in t.hyperparameters.values for t in trials):
            out[hp.name] = hp
    return list(out.values())


def _is_log(hp: Any) -> bool:
    return getattr(hp, "sampling", None) == "log" and getattr(hp, "min_value", 0) > 0


def _numeric(hp: Any) -> bool:
    from keras_tuner.engine import hyperparameters as kt_hp

    return isinstance(hp, (kt_hp.Int, kt_hp.Float))


def _float_type() -> type:
    from keras_tuner.engine import hyperparameters as kt_hp

    return kt_hp.Float  # type: ignore[no-any-return]


def _categories(hp: Any, values: list[Any]) -> list[str]:
    from keras_tuner.engine import hyperparameters as kt_hp

    declared = [str(v) for v in (hp.values if isinstance(hp, kt_hp.Choice) else
                                 [False, True] if isinstance(hp, kt_hp.Boolean) else [])]
    return list(dict.fromkeys(declared + [str(v) for v in values]))


def parallel_coordinates(search: Search) -> Any:
    """One line per scored trial across every tuned hyperparameter and the
    score; a conditional hyperparameter's axis has an "(inactive)" tick
    where a trial did not use it."""
    go = _go()
    trials = [t for t in search.trials if _is_scored(t)]
    hps = _tuned(search, trials)
    if not trials or not hps:
        return None
    dims = []
    for hp in hps:
        values = [t.hyperparameters.values.get(hp.name) for t in trials]
        active = [v for v in values if v is not None]
        inactive = len(active) < len(values)
        if _numeric(hp) and all(isinstance(v, (int, float)) for v in active):
            log = _is_log(hp)
            lo, hi = float(hp.min_value), float(hp.max_value)
            tf = (lambda v: math.log10(v)) if log else (lambda v: float(v))
            tlo, thi = tf(lo), tf(hi)
            span = (thi - tlo) or 1.0
            sentinel = tlo - 0.15 * span
            ticks = [tlo + span * k / 4 for k in range(5)]
            as_int = not isinstance(hp, _float_type())
            texts = [(f"{round(10 ** v if log else v)}" if as_int else f"{(10 ** v if log else v):.3g}")
                     for v in ticks]
            if inactive:
                ticks, texts = [sentinel, *ticks], [INACTIVE, *texts]
            dims.append({"label": hp.name + (" (log)" if log else ""),
                         "values": [tf(v) if v is not None else sentinel for v in values],
                         "range": [sentinel if inactive else tlo, thi], "tickvals": ticks, "ticktext": texts})
        else:
            cats = _categories(hp, active)
            if inactive:
                cats = [INACTIVE, *cats]
            index = {c: i for i, c in enumerate(cats)}
            dims.append({"label": hp.name, "values": [index[INACTIVE if v is None else str(v)] for v in values],
                         "range": [0, max(1, len(cats) - 1)], "tickvals": list(range(len(cats))),
                         "ticktext": cats})
    scores = [_score(t) for t in trials]
    label = _objective_label(search)
    dims.append({"label": label, "values": scores})
    fig = go.Figure(go.Parcoords(
        dimensions=dims,
        line={"color": scores, "colorscale": "Viridis", "reversescale": search.direction == "min",
              "showscale": True, "colorbar": {"title": {"text": "score"}}}))
    fig.update_layout(title=f"Parallel coordinates ({len(trials)} scored trials; the line's colour is the score)",
                      **{**_LAYOUT, "margin": {"l": 80, "r": 80, "t": 110, "b": 40}})
    return fig


def importance_bars(frame: Any) -> Any:
    """The importance table as horizontal bars, most important on top."""
    go = _go()
    if frame is None or frame.empty:
        return None
    frame = frame.iloc[::-1]
    fig = go.Figure(go.Bar(x=frame["importance"], y=frame["hyperparameter"], orientation="h",
                           marker={"color": "#1f77b4"},
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    method = frame.attrs.get("method", "")
    fig.update_layout(title=f"Hyperparameter importance ({method}, optuna.importance, "
                            f"{frame.attrs.get('trials', '?')} completed trials)",
                      xaxis_title="importance (sums to 1)", xaxis_range=[0, 1],
                      **{**_LAYOUT, "height": max(260, 60 + 32 * len(frame)), "margin": {
                          "l": 160, "r": 20, "t": 50, "b": 50}})
    return fig


def slices(search: Search) -> Any:
    """The score against each tuned hyperparameter's value (where active),
    one panel per hyperparameter, coloured by trial number."""
    from plotly.subplots import make_subplots

    go = _go()
    trials = [t for t in search.trials if _is_scored(t)]
    hps = _tuned(search, trials)
    if not trials or not hps:
        return None
    cols = min(3, len(hps))
    rows = math.ceil(len(hps) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[hp.name for hp in hps],
                        horizontal_spacing=0.08, vertical_spacing=min(0.2, 0.5 / rows))
    xs = _x_of(search.trials)
    for i, hp in enumerate(hps):
        row, col = i // cols + 1, i % cols + 1
        group = [t for t in trials if t.hyperparameters.values.get(hp.name) is not None]
        values = [t.hyperparameters.values[hp.name] for t in group]
        numeric = _numeric(hp) and all(isinstance(v, (int, float)) for v in values)
        fig.add_trace(go.Scatter(
            x=values if numeric else [str(v) for v in values], y=[_score(t) for t in group], mode="markers",
            name=hp.name, showlegend=False,
            text=[f"trial {t.trial_id} ({_status(t)})" for t in group],
            hovertemplate=f"%{{text}}<br>{hp.name} %{{x}}<br>score %{{y:.4g}}<extra></extra>",
            marker={"color": [xs[str(t.trial_id)] for t in group], "colorscale": "Blues", "size": 9,
                    "showscale": i == 0, "colorbar": {"title": {"text": "trial"}},
                    "symbol": [STYLE[_status(t)]["symbol"] for t in group],
                    "line": {"width": 1, "color": "#444"}}), row=row, col=col)
        if numeric and _is_log(hp):
            fig.update_xaxes(type="log", row=row, col=col)
        elif not numeric:
            fig.update_xaxes(type="category", categoryorder="array",
                             categoryarray=_categories(hp, values), row=row, col=col)
        if col == 1:
            fig.update_yaxes(title_text=_objective_label(search) if len(search.objectives) == 1 else "score",
                             row=row, col=col)
    fig.update_layout(title="Slices: the score against each tuned hyperparameter (crosses: pruned trials)",
                      **{**_LAYOUT, "height": 320 * rows + 80})
    return fig


def pareto(search: Search) -> Any:
    """The completed trials in objective space, the Pareto front marked
    (two objectives: a scatter with the front joined; more: a scatter
    matrix). None for a single objective."""
    import numpy as np

    from ktplus._pareto import objective_values, pareto_mask

    go = _go()
    if len(search.objectives) < 2:
        return None
    objective = search.kt_objective()
    done = [t for t in search.trials if _status(t) == _facts.COMPLETED]
    values = np.array([objective_values(t, objective) for t in done], dtype=float).reshape(
        len(done), len(search.objectives))
    ok = np.isfinite(values).all(axis=1)
    done, values = [t for t, k in zip(done, ok) if k], values[ok]
    if not done:
        return None
    names = [n for n, _ in search.objectives]
    mask = pareto_mask(values, [d for _, d in search.objectives])
    text = [f"trial {t.trial_id}" for t in done]
    if len(names) == 2:
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=values[~mask, 0], y=values[~mask, 1], mode="markers", name="dominated",
                                 text=[s for s, m in zip(text, mask) if not m], marker={"color": "#aaaaaa"},
                                 hovertemplate="%{text}<br>%{x:.4g}, %{y:.4g}<extra></extra>"))
        order = np.argsort(values[mask, 0], kind="stable")
        fig.add_trace(go.Scatter(x=values[mask, 0][order], y=values[mask, 1][order], mode="lines+markers",
                                 name=f"Pareto front ({int(mask.sum())})",
                                 text=[text[i] for i in np.flatnonzero(mask)[order]],
                                 line={"shape": "hv", "color": "#d62728"}, marker={"size": 10},
                                 hovertemplate="%{text}<br>%{x:.4g}, %{y:.4g}<extra></extra>"))
        fig.update_layout(xaxis_title=f"{names[0]} ({search.objectives[0][1]})",
                          yaxis_title=f"{names[1]} ({search.objectives[1][1]})")
    else:
        fig = go.Figure(go.Splom(
            dimensions=[{"label": n, "values": values[:, i]} for i, n in enumerate(names)], text=text,
            marker={"color": ["#d62728" if m else "#aaaaaa" for m in mask], "size": 8},
            diagonal_visible=False))
    fig.update_layout(title=f"Pareto front: {int(mask.sum())} of {len(done)} completed trials not dominated in "
                            + ", ".join(f"{n} ({d})" for n, d in search.objectives), **_LAYOUT)
    return fig


def fold_spread(search: Search, folds: dict[str, list[float]]) -> Any:
    """Each cross-validated trial's per-fold scores (a box per trial, best
    trial first), or its mean and standard deviation where the folds'
    curves are missing. None for a search without cross-validation."""
    go = _go()
    trials = [t for t in search.trials if _is_scored(t) and (
        str(t.trial_id) in folds or t.metrics.exists(_facts.SCORE_STD))]
    if not trials:
        return None
    label, direction, _ = search.curve_metric()
    if folds:
        trials.sort(key=lambda t: float(sum(folds.get(str(t.trial_id), [math.nan])) / max(
            1, len(folds.get(str(t.trial_id), [])))), reverse=direction == "max")
    else:
        trials.sort(key=_score, reverse=search.direction == "max")
    trials = tiered(trials)  # ktplus's ranking: pruned trials (fewer folds) after fully scored ones
    fig = go.Figure()
    for t in trials:
        name = f"trial {t.trial_id}"
        if str(t.trial_id) in folds:
            fig.add_trace(go.Box(y=folds[str(t.trial_id)], name=name, boxpoints="all", jitter=0.3,
                                 marker={"color": STYLE[_status(t)]["color"]}, showlegend=False))
        else:
            std = t.metrics.get_last_value(_facts.SCORE_STD)
            fig.add_trace(go.Scatter(x=[name], y=[_score(t)], mode="markers", showlegend=False,
                                     error_y={"type": "data", "array": [std or 0.0]},
                                     marker={"color": STYLE[_status(t)]["color"], "size": 10}))
    fig.update_layout(title="Cross-validation: the spread of each trial's score across folds (best first)",
                      yaxis={"title": {"text": f"{label} (best epoch of each fold)"}},
                      xaxis={"type": "category"}, **_LAYOUT)
    return fig


def confusion_matrix(model: dict[str, Any], names: list[str]) -> Any:
    """A held-out confusion matrix (rows: true class, columns: predicted)."""
    go = _go()
    matrix = model.get("confusion_matrix")
    if not matrix:
        return None
    fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", texttemplate="%{z}",
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{z}<extra></extra>"))
    fig.update_layout(title=f"Confusion matrix on the held-out data (trial {model.get('trial_id')})",
                      xaxis={"title": {"text": "predicted"}, "type": "category"},
                      yaxis={"title": {"text": "true"}, "type": "category", "autorange": "reversed"}, **{**_LAYOUT, "height": max(360, 120 + 36 * len(names)),
                                                     "width": max(420, 160 + 40 * len(names))})
    return fig
