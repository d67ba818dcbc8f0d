"""The ``ktplus`` command line.

``ktplus search`` with no arguments runs a short real search on
scikit-learn's digits, writes TensorBoard logs, and prints a leaderboard and
the ``tensorboard --logdir`` command that shows the runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

FAMILY_CHOICES = ("dense", "conv", "residual", "auto")
TUNER_CHOICES = ("random", "bayesian", "hyperband", "grid")


class CLIError(Exception):
    """An error reported as one line, with a non-zero exit."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, no usage dump
        raise CLIError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ktplus", description="Hyperparameter search for Keras models.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    s = sub.add_parser("search", help="run a search and print its leaderboard")
    s.add_argument("--data", default="digits",
                   help="built-in dataset: digits, breast_cancer, wine or iris (default: digits)")
    s.add_argument("--family", default="dense", choices=FAMILY_CHOICES,
                   help="model family (default: dense)")
    s.add_argument("--tuner", default="random", choices=TUNER_CHOICES, help="search algorithm (default: random)")
    s.add_argument("--trials", type=_positive_int, default=10,
                   help="number of trials (default: 10; Hyperband sizes its own brackets)")
    s.add_argument("--epochs", type=_positive_int, default=10, help="epochs per trial (default: 10)")
    s.add_argument("--lr-decay", default="none",
                   choices=("none", "exponential", "step", "cosine", "polynomial", "plateau", "tune"),
                   help="learning-rate schedule (default: none)")
    s.add_argument("--early-stopping", type=int, default=5, metavar="PATIENCE",
                   help="early-stopping patience in epochs, 0 to disable (default: 5)")
    s.add_argument("--pruning", default="median", choices=("median", "percentile", "none"),
                   help="pruning rule for hopeless trials (default: median)")
    s.add_argument("--directory", default="runs", help="search directory (default: runs)")
    s.add_argument("--project", default=None, help="project name (default: the dataset's name)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--validation-split", type=_fraction, default=0.2,
                   help="fraction of the data held out for validation (default: 0.2)")
    s.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    s.add_argument("-v", "--verbose", action="store_true", help="keras-tuner's per-trial output")
    return parser


def _hypermodel(family: str, data: Any) -> tuple[Any, Any]:
    import ktplus

    x = data.x
    if family in ("conv", "residual") or (family == "auto" and data.image_shape):
        if data.image_shape is None:
            raise CLIError(
                f"ktplus: --family {family} needs image data; {data.name!r} is tabular "
                "(use --family dense or auto)"
            )
        x = x.reshape((-1, *data.image_shape))
    classes = {
        "dense": ktplus.DenseHyperModel,
        "conv": ktplus.ConvHyperModel,
        "residual": ktplus.ResidualHyperModel,
        "auto": ktplus.AutoHyperModel,
    }
    return classes[family](input_shape=x.shape[1:], num_classes=data.num_classes), x


def run_search(args: argparse.Namespace) -> int:
    from ktplus._quiet import import_quietly

    import_quietly()
    import keras

    import ktplus
    from ktplus import datasets
    from ktplus.results import format_table, trial_rows

    try:
        data = datasets.load(args.data)
    except ValueError as e:
        raise CLIError(f"ktplus: --data: {e}") from None
    hypermodel, x = _hypermodel(args.family, data)
    (x_train, y_train), (x_val, y_val) = datasets.split(
        x, data.y, fractions=(args.validation_split,), seed=args.seed
    )
    if data.image_shape is None:
        x_train, x_val = datasets.standardize(x_train, x_val)
    project = args.project or data.name
    project_dir = os.path.join(args.directory, project)
    log_dir = os.path.join(project_dir, "tensorboard")
    keras.utils.set_random_seed(args.seed)
    if args.early_stopping < 0:
        raise CLIError(f"ktplus: --early-stopping: expected a patience >= 0, got {args.early_stopping}")
    tuner_cls: Any = {"random": ktplus.RandomSearch, "bayesian": ktplus.BayesianOptimization,
                 "hyperband": ktplus.Hyperband, "grid": ktplus.GridSearch}[args.tuner]
    budget = ({"max_epochs": args.epochs} if args.tuner == "hyperband" else {"max_trials": args.trials})
    tuner = tuner_cls(
        hypermodel,
        objective="val_accuracy",
        seed=args.seed,
        directory=args.directory,
        project_name=project,
        overwrite=args.overwrite,
        lr_decay=None if args.lr_decay == "none" else args.lr_decay,
        early_stopping=args.early_stopping or None,
        pruning=None if args.pruning == "none" else args.pruning,
        **budget,
    )
    start = time.time()
    print(f"ktplus: {args.tuner} search, {args.trials} trials of {args.family} models on {data.name} "
          f"({len(x_train)} train / {len(x_val)} validation samples)", flush=True)
    search_kwargs = {} if args.tuner == "hyperband" else {"epochs": args.epochs}
    tuner.search(
        x_train, y_train,
        validation_data=(x_val, y_val),
        **search_kwargs,
        callbacks=[keras.callbacks.TensorBoard(log_dir=log_dir)],
        verbose=1 if args.verbose else 0,
    )
    rows = trial_rows(tuner.oracle)
    print(f"\nLeaderboard ({len(rows)} trials, objective val_accuracy, "
          f"{time.time() - start:.0f} s):")
    print(format_table(rows, top=10))
    print(f"\nInspect the runs:\n  tensorboard --logdir {log_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ktplus`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command == "search":
            return run_search(args)
        parser.print_help()
        return 0
    except CLIError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ktplus: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
