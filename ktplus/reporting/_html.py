"""The report page: one self-contained HTML file.

plotly.js is inlined once in the head, every figure is a ``<div>`` with its
own inline script, and the page's Content-Security-Policy forbids loading
anything (no network, no other file): it opens offline, from a file.
"""

from __future__ import annotations

import datetime
import html
import math
import os
from collections import Counter
from typing import Any

from ktplus import _facts
from ktplus.reporting import _figures
from ktplus.reporting._project import Search

#: The sections of the page, in order: (id, heading).
SECTIONS = [
    ("history", "Optimization history"),
    ("curves", "Learning curves"),
    ("parallel", "Parallel coordinates"),
    ("importance", "Hyperparameter importance"),
    ("slices", "Slices"),
    ("pareto", "Pareto front"),
    ("cv", "Cross-validation"),
    ("evaluation", "Held-out evaluation"),
    ("leaderboard", "Leaderboard"),
]
_CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:")
_STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
header { background: #263238; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 6px 0; font-size: 22px; }
header .sub { color: #cfd8dc; font-size: 13px; }
main { padding: 8px 28px 40px 28px; max-width: 1400px; }
section { background: #fff; border: 1px solid #e0e0e0; border-radius: 6px; margin: 16px 0; padding: 12px 18px; }
h2 { font-size: 17px; margin: 4px 0 10px 0; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border-bottom: 1px solid #eee; padding: 4px 10px; text-align: left; }
th { background: #f5f5f5; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 4px 18px; margin: 0; font-size: 14px; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
p.note { color: #666; font-style: italic; }
nav a { color: #90caf9; margin-right: 12px; font-size: 13px; text-decoration: none; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h {s % 3600 // 60:02d}m {s % 60:02d}s" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def _figure_html(fig: Any, name: str) -> str:
    import plotly.io as pio

    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"figure-{name}",
                       config={"displaylogo": False, "responsive": True})


def _table(frame: Any) -> str:
    return frame.to_html(index=False, na_rep="-", border=0, float_format=lambda v: f"{v:.4g}",
                         classes="table")


def _header(search: Search, frame: Any) -> str:
    counts = Counter(_facts.status_of(t) for t in search.trials)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"
    objectives = ", ".join(f"{n} ({d})" for n, d in search.objectives)
    seconds = [t.metrics.get_last_value(_facts.TRIAL_SECONDS) for t in search.trials
               if t.metrics.exists(_facts.TRIAL_SECONDS)]
    seconds = [s for s in seconds if s is not None and math.isfinite(s)]
    data = search.data
    dataset = data.get("name") or data.get("data")
    facts = []
    if dataset:
        task = f" ({data['task']})" if data.get("task") else ""
        facts.append(("Dataset", f"{dataset}{task}"))
    facts.append(("Objective" + ("s" if len(search.objectives) > 1 else ""), objectives))
    facts.append(("Tuner", search.tuner or "keras-tuner (tuner not recorded)"))
    facts.append(("Trials", f"{len(search.trials)}: {statuses}"))
    facts.append(("Total trial time", _duration(sum(seconds)) + ("" if len(seconds) == len(search.trials)
                                                                 else f" ({len(seconds)} trials timed)")
                  if seconds else "not recorded"))
    best = _best(search, frame)
    if best is not None:
        config = ", ".join(f"{k}={_fmt(v)}" for k, v in best["values"].items()) or "(no hyperparameters)"
        facts.append(("Best trial", f"trial {best['trial_id']}: score {_fmt(best['score'])}"))
        facts.append(("Best configuration", config))
    else:
        facts.append(("Best trial", "none yet (no completed trial has a score)"))
    rows = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in facts)
    return f'<section id="summary"><h2>Summary</h2><dl class="facts">{rows}</dl></section>'


def _best(search: Search, frame: Any) -> dict[str, Any] | None:
    """The best completed trial (fully trained first, as ktplus ranks)."""
    for status in (_facts.COMPLETED, _facts.PRUNED):
        rows = frame[(frame["status"] == status) & frame["score"].notna()]
        if not rows.empty:
            row = rows.iloc[0]
            trial = next(t for t in search.trials if str(t.trial_id) == str(row["trial_id"]))
            values = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
            return {"trial_id": row["trial_id"], "score": float(row["score"]), "values": values}
    return None


def _evaluation(search: Search) -> tuple[str | None, str]:
    """The held-out section's figure (a confusion matrix) and tables."""
    from ktplus.evaluation._heldout import class_names_of, evaluation_frame

    record = search.evaluation
    if not record or not record.get("models"):
        return None, ""
    parts = [f"<p>{_esc(record.get('task', ''))} on {_esc(record.get('n_samples', '?'))} held-out samples, "
             f"best trial first:</p>", _table(evaluation_frame(record))]
    first = record["models"][0]
    fig_html = None
    if first.get("confusion_matrix"):
        try:
            names = class_names_of(first, search.data.get("class_names"))
        except ValueError:
            names = class_names_of(first)
        fig = _figures.confusion_matrix(first, names)
        fig_html = _figure_html(fig, "confusion") if fig is not None else None
    return fig_html, "".join(parts)


def _importance(search: Search, method: str) -> tuple[Any, str]:
    from ktplus.reporting._importance import importance_frame

    if search.space is None:
        return None, "The directory holds no search space (oracle.json), so importance cannot be computed."
    try:
        frame = importance_frame(search.trials, search.space, search.direction, method)
    except ValueError as e:
        return None, str(e) + "."
    return frame, ""


def _inline_script(js: str) -> str:
    """plotly.js as the page inlines it: every ``://`` written ``:\\/\\/``
    (the same string in JavaScript, whether in a string, a template or a
    comment), so the page's text names no address that a scan for
    ``src="https://...`` could take for a load; the page's Content Security
    Policy already forbids every load from the network."""
    return js.replace("://", ":\\/\\/")


def render(search: Search, method: str = "fanova") -> str:
    """The whole page for ``search``."""
    from plotly.offline import get_plotlyjs

    from ktplus import __version__
    from ktplus.results import leaderboard

    frame = search.frame()
    curves = search.curves()
    imp, imp_note = _importance(search, method)
    folds = search.fold_scores()
    eval_fig, eval_tables = _evaluation(search)
    figures: dict[str, Any] = {
        "history": _figures.history(search),
        "curves": _figures.learning_curves(search, curves),
        "parallel": _figures.parallel_coordinates(search),
        "importance": _figures.importance_bars(imp),
        "slices": _figures.slices(search),
        "pareto": _figures.pareto(search),
        "cv": _figures.fold_spread(search, folds),
    }
    notes = {
        "history": "No trial yet.",
        "curves": "No trial recorded its objective by epoch yet.",
        "parallel": "Needs a scored trial and a tuned hyperparameter (a range or a list of choices).",
        "importance": imp_note,
        "slices": "Needs a scored trial and a tuned hyperparameter (a range or a list of choices).",
    }
    body = []
    for name, heading in SECTIONS:
        content = ""
        if name == "evaluation":
            if eval_fig is None and not eval_tables:
                continue  # the search was not evaluated on held-out data
            content = eval_tables + (f'<div class="figure" data-figure="confusion">{eval_fig}</div>'
                                     if eval_fig else "")
        elif name == "leaderboard":
            content = (_table(leaderboard(frame, 20)) if not frame.empty else '<p class="note">No trial yet.</p>')
            if len(frame) > 20:
                content += f'<p class="note">The best 20 of {len(frame)} trials.</p>'
        elif figures.get(name) is not None:
            content = f'<div class="figure" data-figure="{name}">{_figure_html(figures[name], name)}</div>'
        elif name in ("pareto", "cv"):
            continue  # the search has one objective / no cross-validation: nothing to show
        else:
            content = f'<p class="note">{_esc(notes.get(name, "Nothing to show."))}</p>'
        body.append(f'<section id="{name}"><h2>{_esc(heading)}</h2>{content}</section>')
    title = f"ktplus report: {os.path.basename(os.path.abspath(search.project))}"
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    nav = "".join(f'<a href="#{n}">{_esc(h)}</a>' for n, h in SECTIONS if f'id="{n}"' in "".join(body))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_STYLE}</style>"
        f'<script type="text/javascript">{_inline_script(get_plotlyjs())}</script></head><body>'
        f"<header><h1>{_esc(title)}</h1><div class=\"sub\">{_esc(search.project)} &middot; written {stamp} "
        f"by ktplus {__version__}</div><nav>{nav}</nav></header><main>"
        + _header(search, frame) + "".join(body) + "</main></body></html>\n"
    )
