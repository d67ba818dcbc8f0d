"""``ktplus report DIR``: a search's leaderboard as a table, CSV or JSON,
and optionally a PNG of the objective per trial and per hyperparameter.

As a table, the leaderboard is followed by the Pareto front of a search
the CLI ran with several objectives (``--objective val_accuracy,num_params``)
and by the recorded test evaluation (``ktplus search --test-split``,
``tuner.evaluate``) when there is one; CSV and JSON stay the leaderboard
alone, for other programs to read."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from ktplus.cli._errors import CLIError


def run_report(args: argparse.Namespace) -> int:
    """Prints the leaderboard of the search in ``args.dir``.

    Raises:
        CLIError: for a directory that holds no search, or a plot that
            cannot be written.
    """
    from ktplus.results import format_table, leaderboard, load_results, plot

    try:
        frame = load_results(args.dir)
    except ValueError as e:
        raise CLIError(f"ktplus report: {e}") from None
    if args.format == "table":
        objectives = _objectives(args.dir)
        if len(objectives) > 1:
            print(f"{len(frame)} trials in {args.dir}, objectives {', '.join(objectives)} (score: "
                  f"{frame.attrs.get('objective')}, {frame.attrs.get('direction')})")
        else:
            print(f"{len(frame)} trials in {args.dir}, objective {frame.attrs.get('objective')} "
                  f"({frame.attrs.get('direction')})")
        print(format_table(frame, args.top))
        if len(objectives) > 1:
            print("\n" + pareto_text(results_pareto_front(frame, objectives), objectives, len(frame)))
        evaluation = _evaluation(args.dir)
        if evaluation:
            print("\n" + evaluation)
    elif args.format == "csv":
        sys.stdout.write(leaderboard(frame, args.top).to_csv(index=False))
    else:
        sys.stdout.write(leaderboard(frame, args.top).to_json(orient="records", indent=1) + "\n")
    if args.plot:
        if not args.plot.lower().endswith(".png"):
            raise CLIError(f"ktplus report: --plot expects a .png path, got {args.plot!r}")
        try:
            plot(frame, args.plot)
        except OSError as e:
            raise CLIError(f"ktplus report: cannot write {args.plot}: {e.strerror}") from None
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0


def results_pareto_front(frame: Any, objectives: list[str]) -> Any:
    """The Pareto front of a search read back with `ktplus.load_results`
    (what `ktplus.Tuner.pareto_front` gives for a live tuner): the completed
    trials no other completed trial beats in every objective, with
    ``trial_id``, one column per objective, then the hyperparameters; best
    first by the first objective (ties in trial order).

    Args:
        frame: The results table.
        objectives: The objective names (`ktplus.cli._data.OBJECTIVES` and
            `BUILTIN_OBJECTIVES`), as ``ktplus search --objective`` recorded them.
    """
    import pandas as pd

    from ktplus._pareto import pareto_mask
    from ktplus.cli._data import maximized
    from ktplus.results import INFO_COLUMNS

    hps = [c for c in frame.columns if c not in INFO_COLUMNS and not c.startswith("best/")]
    done = frame[frame["status"] == "completed"]
    done = done.iloc[pd.to_numeric(done["trial_id"], errors="coerce").argsort(kind="stable")]
    columns = {n: n if n in INFO_COLUMNS else f"best/{n}" for n in objectives}  # num_params: its own column
    values = pd.DataFrame({n: done[c] if c in done else math.nan for n, c in columns.items()}, index=done.index)
    mask = pareto_mask(values.astype(float).to_numpy(), ["max" if maximized(n) else "min" for n in objectives])
    front = pd.concat([done[["trial_id"]], values, done[hps]], axis=1)[mask]
    return front.sort_values(objectives[0], ascending=not maximized(objectives[0]), kind="stable")


def _objectives(directory: str) -> list[str]:
    """The objectives ``ktplus search`` recorded for the project, or [] (a
    search run by other code, or by an older ktplus)."""
    from ktplus.cli._splits import read_data_file
    from ktplus.results import _find_project

    names = read_data_file(_find_project(directory)).get("objective")
    return [str(n) for n in names] if isinstance(names, list) else []


def pareto_text(front: Any, objectives: list[str], trials: int) -> str:
    """The Pareto front of a multi-objective search (a DataFrame such as
    `ktplus.Tuner.pareto_front` returns) under a heading."""
    from ktplus.cli._data import maximized
    from ktplus.results import format_table

    goals = ", ".join(f"{n} ({'max' if maximized(n) else 'min'})" for n in objectives)
    front = front.copy()
    for n in objectives:  # a count (num_params) as an integer, not 1.792e+04
        if n in front and front[n].notna().all() and (front[n].astype(float) % 1 == 0).all():
            front[n] = front[n].astype("Int64")
    return (f"Pareto front ({len(front)} of {trials} trials, not dominated in {goals}; best "
            f"{objectives[0]} first):\n{format_table(front)}")


def evaluation_report(project: str) -> str | None:
    """The printable test evaluation recorded in the project directory, with
    the class names the CLI recorded, or None when there is none."""
    from ktplus.cli._splits import read_data_file
    from ktplus.evaluation._heldout import load_evaluation

    record = load_evaluation(project)
    if not record:
        return None
    return format_with_names(record, read_data_file(project).get("class_names"))


def format_with_names(record: dict[str, Any], class_names: list[Any] | None) -> str:
    """`format_evaluation` with the original class names, or the labels
    themselves when the names do not fit the record (an evaluation recorded
    by other code)."""
    from ktplus.evaluation._heldout import format_evaluation

    try:
        return format_evaluation(record, class_names=class_names).rstrip()
    except ValueError:
        return format_evaluation(record).rstrip()


def _evaluation(directory: str) -> str | None:
    from ktplus.results import _find_project

    return evaluation_report(_find_project(directory))
