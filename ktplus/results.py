"""Trials as rows: the leaderboard of a search."""

from __future__ import annotations

import math
from typing import Any

import keras_tuner


def trial_rows(oracle: keras_tuner.Oracle) -> list[dict[str, Any]]:
    """One dict per trial: id, status, score and active hyperparameters,
    best score first (in the objective's direction), unscored trials last."""
    direction = oracle.objective.direction if hasattr(oracle.objective, "direction") else "min"
    names: list[str] = []
    for hp in oracle.get_space().space:
        if hp.name not in names and not hp.name.startswith("tuner/"):
            names.append(hp.name)
    rows = []
    for trial in oracle.trials.values():
        values = trial.hyperparameters.values
        metrics = trial.metrics
        status = str(trial.status).lower()
        if status == "completed" and metrics.exists("pruned") and metrics.get_last_value("pruned"):
            status = "pruned"
        rows.append({
            "trial_id": trial.trial_id,
            "status": status,
            "score": trial.score,
            "epochs": int(metrics.get_last_value("epochs_run")) if metrics.exists("epochs_run") else None,
            **{name: values.get(name) for name in names},
        })

    def key(row: dict[str, Any]) -> tuple[int, float]:
        s = row["score"]
        if s is None or (isinstance(s, float) and math.isnan(s)):
            return (1, 0.0)
        return (0, -s if direction == "max" else s)

    return sorted(rows, key=key)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def format_table(rows: list[dict[str, Any]], top: int | None = None) -> str:
    """A plain-text table with one row per trial and a column per key."""
    rows = rows[:top] if top else rows
    if not rows:
        return "(no trials)"
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
