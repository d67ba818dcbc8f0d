"""``ktplus report DIR``: a search's leaderboard as a table, CSV or JSON,
optionally a PNG of the objective per trial and per hyperparameter
(``--plot``) and the interactive HTML report (``--html``, `ktplus.report`).

As a table, the leaderboard is followed by the Pareto front of a search
the CLI ran with several objectives (``--objective val_accuracy,num_params``)
and by the recorded test evaluation (``ktplus search --test-split``,
``tuner.evaluate``) when there is one; CSV and JSON stay the leaderboard
alone, for other programs to read."""

from __future__ import annotations

import argparse
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

    if args.html is not None:
        from ktplus.reporting import check_html_path

        try:
            check_html_path(args.html, "--html")
        except ValueError as e:
            raise CLIError(f"ktplus report: {e}") from None
    try:
        frame = load_results(args.dir)
    except ValueError as e:
        raise CLIError(f"ktplus report: {e}") from None
    if args.format == "table":
        from ktplus.reporting import load_pareto_front

        front = load_pareto_front(args.dir)
        objectives = list(front.attrs.get("directions", {}))
        if len(objectives) > 1:
            print(f"{len(frame)} trials in {args.dir}, objectives {', '.join(objectives)} (score: "
                  f"{frame.attrs.get('objective')}, {frame.attrs.get('direction')})")
        else:
            print(f"{len(frame)} trials in {args.dir}, objective {frame.attrs.get('objective')} "
                  f"({frame.attrs.get('direction')})")
        print(format_table(frame, args.top))
        if len(objectives) > 1:
            print("\n" + pareto_text(front, len(frame)))
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
    if args.html:
        from ktplus.reporting import report

        try:
            report(args.dir, args.html, importance_method=args.importance)
        except OSError as e:
            raise CLIError(f"ktplus report: cannot write {args.html}: {e.strerror or e}") from None
        print(f"report written to {args.html}", file=sys.stderr)
    return 0


def pareto_text(front: Any, trials: int) -> str:
    """The Pareto front of a multi-objective search (a DataFrame such as
    `ktplus.Tuner.pareto_front` or `ktplus.load_pareto_front` returns, its
    ``attrs["directions"]`` naming each objective's direction) under a heading."""
    from ktplus.results import format_table

    directions = dict(front.attrs.get("directions", {}))
    objectives = list(directions)
    goals = ", ".join(f"{n} ({d})" for n, d in directions.items())
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
