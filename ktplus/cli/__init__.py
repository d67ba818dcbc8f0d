"""The ``ktplus`` command line.

``ktplus search`` tunes a model on a built-in or user dataset with no code
(optionally cross-validated, with a held-out test set and an exported
model); ``ktplus report DIR`` shows a search's leaderboard and test
evaluation; ``ktplus tensorboard DIR`` serves its logs; ``ktplus export
DIR PATH`` exports its best model (``.keras``, SavedModel, ONNX, LiteRT);
``ktplus predict`` predicts with an exported model. Errors are one line on stderr and a
non-zero exit.

One module per part: ``_parser`` (arguments), ``_data`` (``--data``,
``--target``, ``--task``, and the data preparation the model does itself:
``--normalize``, ``--augment``, ``--class-weight``), ``_splits``
(``--test-split``, the validation split or ``--cv``), ``_search`` (the
search in this process), ``_supervisor`` (``--workers``: workers sharing an
Optuna study, or a local chief and workers), ``_progress`` (the progress display), ``_export`` (``--export``
files and their metadata), ``_predict``, ``_report`` and ``_tensorboard``.
Importing this package does not import TensorFlow, so bad input is reported
before it loads.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ktplus.cli._errors import CLIError
from ktplus.cli._parser import build_parser, check_search

__all__ = ["CLIError", "build_parser", "main"]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ktplus`` command.

    Args:
        argv: The arguments after ``ktplus`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0, 2 for bad input, 130 after Ctrl-C, 1 for an
        unexpected error (re-raised with ``-v``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command == "search":
            check_search(args)
            if args.workers and not args.role:
                from ktplus.cli._parser import SAMPLER_CHOICES
                from ktplus.cli._supervisor import run_distributed, run_shared

                if args.tuner in SAMPLER_CHOICES:  # Optuna's samplers: workers share a study, no chief
                    return run_shared(args, argv)
                return run_distributed(args, argv)
            from ktplus.cli._search import run_search

            return run_search(args)
        if args.command == "report":
            from ktplus.cli._report import run_report

            return run_report(args)
        if args.command == "tensorboard":
            from ktplus.cli._tensorboard import run_tensorboard

            return run_tensorboard(args)
        if args.command == "export":
            from ktplus.cli._export_cmd import run_export

            return run_export(args)
        if args.command == "predict":
            from ktplus.cli._predict import run_predict

            return run_predict(args)
        parser.print_help()
        return 0
    except CLIError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ktplus: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as e:  # never a traceback for the user; -v shows one
        if "-v" in argv or "--verbose" in argv:
            raise
        print(f"ktplus: error: {type(e).__name__}: {_first_line(e)}", file=sys.stderr)
        return 1
