"""``ktplus report DIR``: a search's leaderboard as a table, CSV or JSON,
and optionally a PNG of the objective per trial and per hyperparameter.

As a table, the leaderboard is followed by the recorded test evaluation
(``ktplus search --test-split``, ``tuner.evaluate``) when there is one; CSV
and JSON stay the leaderboard alone, for other programs to read."""

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

    try:
        frame = load_results(args.dir)
    except ValueError as e:
        raise CLIError(f"ktplus report: {e}") from None
    if args.format == "table":
        print(f"{len(frame)} trials in {args.dir}, objective {frame.attrs.get('objective')} "
              f"({frame.attrs.get('direction')})")
        print(format_table(frame, args.top))
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
