"""The search report: what mattered, and what to search next.

`report` writes one self-contained HTML page (plotly figures, plotly.js
inlined: it opens offline) from a search's directory; `importance` ranks
the tuned hyperparameters with Optuna's evaluators; `load_pareto_front`
reads a saved search's Pareto front.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

from ktplus._errors import invalid, invalid_type
from ktplus.reporting._importance import METHODS, check_method, importance, importance_frame
from ktplus.reporting._project import Search, load_pareto_front, load_search

_P = TypeVar("_P", str, os.PathLike)

__all__ = ["METHODS", "Search", "importance", "importance_frame", "load_pareto_front", "load_search",
           "report"]


def check_html_path(path: Any, arg: str = "path") -> str:
    """Validates the report's output path: a ``.html``/``.htm`` file in an
    existing directory."""
    if not isinstance(path, (str, os.PathLike)):
        raise invalid_type(arg, path, "a file path (str or os.PathLike) ending in .html")
    text = os.fspath(path)
    if not isinstance(text, str) or not text.lower().endswith((".html", ".htm")):
        raise invalid(arg, path, "a file path ending in .html or .htm")
    parent = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(parent):
        raise invalid(arg, path, f"a file in an existing directory ({parent} does not exist)")
    if os.path.isdir(text):
        raise invalid(arg, path, "a file path, not a directory")
    return text


def report(directory: str | os.PathLike, path: _P, *, importance_method: str = "fanova") -> _P:
    """Writes the HTML report of the search in ``directory`` to ``path``.

    One self-contained page (every script and style inlined, nothing loaded
    from the network) with: a summary (dataset and objective, tuner, trials
    by status, total trial time, best configuration); the optimization
    history (pruned, failed and infeasible trials marked); every trial's
    learning curve; parallel coordinates; hyperparameter importance (the
    method named); a slice plot per tuned hyperparameter; the Pareto front
    of a search with several objectives; the spread across folds of a
    cross-validated search; held-out test metrics and the confusion matrix
    when the search was evaluated; and the leaderboard. Only what the
    directory holds is shown: a running, resumed, distributed or plain
    keras-tuner search works too.

    Args:
        directory: The project directory (``<directory>/<project_name>``),
            or a directory holding exactly one project.
        path: The HTML file to write (``.html`` or ``.htm``), replaced
            atomically if it exists.
        importance_method: "fanova" (Optuna's default) or "ped_anova".

    Returns:
        ``path``, as given (a ``str`` or a ``pathlib.Path``).

    Raises:
        ValueError: naming the argument, for a directory that holds no
            search or a bad path or method (checked before anything is read).

    Example:

    >>> import ktplus
    >>> ktplus.report("runs/digits", "report.html")  # doctest: +SKIP
    'report.html'
    """
    from ktplus._atomic import atomic_write_text
    from ktplus.reporting._html import render

    text = check_html_path(path)
    method = check_method(importance_method, "importance_method")
    search = load_search(directory)
    atomic_write_text(text, render(search, method))
    return path
