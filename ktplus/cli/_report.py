"""``ktplus report DIR``: a search's leaderboard as a table, CSV or JSON,
and optionally a PNG of the objective per trial and per hyperparameter."""

from __future__ import annotations

import argparse
import sys

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
