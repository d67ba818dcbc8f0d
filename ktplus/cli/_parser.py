"""The ``ktplus`` argument parser: commands, options and their value checks.

Parsing imports nothing but the standard library, so bad arguments are
reported before TensorFlow loads.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any, NoReturn

from ktplus.cli._errors import CLIError

FAMILY_CHOICES = ("dense", "conv", "residual", "auto")
TUNER_CHOICES = ("random", "bayesian", "hyperband", "grid")
TASK_CHOICES = ("classification", "regression")
LR_DECAY_CHOICES = ("none", "exponential", "step", "cosine", "polynomial", "plateau", "tune")
REGULARIZER_CHOICES = ("none", "l1", "l2", "l1_l2", "tune")


def _number(cast: Callable[[str], Any], ok: Callable[[Any], bool], expected: str,
            words: dict[str, Any] | None = None) -> Callable[[str], Any]:
    """An argparse type: ``cast(text)`` that must satisfy ``ok``, or one of ``words``."""

    def parse(text: str) -> Any:
        key = text.strip().lower()
        if words and key in words:
            return words[key]
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_fraction = _number(float, lambda v: 0 < v < 1, "a number in (0, 1)")
_folds = _number(int, lambda v: v >= 2, "a number of folds >= 2")
#: --early-stopping: a patience, or on/off words (on: patience 5).
_patience = _number(int, lambda v: v >= 0, "a patience in epochs (>= 0) or on/off",
                    {"true": 5, "on": 5, "yes": 5, "false": 0, "off": 0, "no": 0, "none": 0})


def _keras_path(text: str) -> str:
    """``--export``: a path ending in ``.keras`` (the only format ``keras.models.load_model`` reads
    whole, with the metadata ``ktplus predict`` needs inside)."""
    name = os.path.basename(text).lower()
    if not name.endswith(".keras") or name == ".keras":
        raise argparse.ArgumentTypeError(f"expected a path ending in .keras, got {text!r}")
    return text


def _regularizer(text: str) -> list[str]:
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not parts or any(p not in REGULARIZER_CHOICES for p in parts) or ("tune" in parts and len(parts) > 1):
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(REGULARIZER_CHOICES)} or a comma list such as l2,none; got {text!r}")
    return parts


class _Parser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors are one-line `CLIError`s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # --over must not pass for --overwrite
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
        raise CLIError(f"{self.prog}: {message}")


def _add_search(sub: Any) -> None:
    s = sub.add_parser("search", help="run (or resume) a search and print its leaderboard")
    s.add_argument("--data", default="digits",
                   help="digits, breast_cancer, wine, iris (bundled with scikit-learn), or a path to an "
                        ".npz (arrays x, y) or a .csv (with --target) (default: digits)")
    s.add_argument("--target", help="the column to predict, for a .csv")
    s.add_argument("--task", choices=TASK_CHOICES, default=None,
                   help="what to predict: classes, or a number (prices, counts); default: classification "
                        "for text or integer targets with few distinct values, regression otherwise")
    s.add_argument("--family", default="dense", choices=FAMILY_CHOICES,
                   help="model family; auto searches over the families the input allows (default: dense)")
    s.add_argument("--tuner", default="random", choices=TUNER_CHOICES, help="search algorithm (default: random)")
    s.add_argument("--trials", type=_positive_int, default=10,
                   help="number of trials (default: 10; Hyperband sizes its brackets from --epochs)")
    s.add_argument("--epochs", type=_positive_int, default=10, help="epochs per trial (default: 10)")
    s.add_argument("--lr-decay", default="none", choices=LR_DECAY_CHOICES,
                   help="learning-rate schedule (default: none)")
    s.add_argument("--early-stopping", type=_patience, default=5, metavar="PATIENCE",
                   help="early-stopping patience in epochs, 0 or off to disable (default: 5)")
    s.add_argument("--pruning", default="median", choices=("median", "percentile", "none"),
                   help="pruning rule for hopeless trials (default: median)")
    s.add_argument("--regularizer", type=_regularizer, default=["none"],
                   help="none, l1, l2, l1_l2, a comma list to tune (l2,none), or tune (default: none)")
    s.add_argument("--directory", default="runs", help="where searches live (default: runs)")
    s.add_argument("--project", default=None, help="project name (default: the dataset's name)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--validation-split", type=_fraction, default=None,
                   help="fraction of the non-test data held out for validation (default: 0.2; not with --cv)")
    s.add_argument("--cv", type=_folds, default=None, metavar="K",
                   help="cross-validate every trial on K folds of the non-test data instead of one validation "
                        "split (stratified for classification); the score is the mean over the folds. Tabular "
                        "features are then standardized with the statistics of all the non-test data")
    s.add_argument("--test-split", type=_fraction, default=None, metavar="F",
                   help="hold out this fraction (stratified for classification, seeded by --seed) before the "
                        "search, which never sees it; the best model's test metrics, per-class table and "
                        "confusion matrix are printed at the end and kept for ktplus report")
    s.add_argument("--export", type=_keras_path, default=None, metavar="PATH.keras",
                   help="after the search, train the best configuration on all the non-test data and save it "
                        "to PATH.keras, preprocessing included: keras.models.load_model(PATH) predicts on raw "
                        "features, and ktplus predict reads it")
    s.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    s.add_argument("--workers", type=_non_negative_int, default=0,
                   help="run keras-tuner's distributed search: a local chief and N worker processes on "
                        "127.0.0.1 (default: 0, one process)")
    s.add_argument("--role", choices=("chief", "worker"),
                   help="this process's part in a multi-host search (with KERASTUNER_* variables)")
    s.add_argument("-v", "--verbose", action="store_true", help="keras-tuner's and Keras' own output")


def _add_predict(sub: Any) -> None:
    p = sub.add_parser("predict", help="predict with a model saved by ktplus search --export")
    p.add_argument("model", metavar="MODEL.keras", help="the file written by ktplus search --export")
    p.add_argument("data", metavar="FILE",
                   help="a .csv with the training file's feature columns (any order; the target column, if "
                        "present, is ignored) or an .npz with an array x, raw as in the training data")
    p.add_argument("-o", "--output", metavar="PREDS.csv",
                   help="write the predictions here (default: print them): a prediction column, and for "
                        "classification one proba_<class> column per class")


def check_search(args: argparse.Namespace) -> None:
    """The checks of ``ktplus search`` that span several options or look at
    the file system (still only the standard library).

    Raises:
        CLIError: for ``--cv`` with ``--validation-split``, or an ``--export``
            path whose directory does not exist or is a directory.
    """
    if args.cv is not None and args.tuner == "hyperband":
        raise CLIError(f"ktplus search: --cv {args.cv} cannot be used with --tuner hyperband (its continuations "
                       "resume one checkpoint per trial); use --tuner random, bayesian or grid")
    if args.cv is not None and args.validation_split is not None:
        raise CLIError(f"ktplus search: --cv {args.cv} validates each trial on its folds; drop "
                       f"--validation-split {args.validation_split} (or --cv to use one validation split)")
    if args.export is not None:
        folder = os.path.dirname(args.export) or "."
        if os.path.isdir(args.export):
            raise CLIError(f"ktplus search: --export {args.export!r} is a directory; give a file path such as "
                           "model.keras")
        if not os.path.isdir(folder):
            raise CLIError(f"ktplus search: --export: no such directory {folder!r}")
        if not os.access(folder, os.W_OK):
            raise CLIError(f"ktplus search: --export: cannot write to the directory {folder!r}")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``ktplus search``, ``ktplus report``, ``ktplus tensorboard``
    and ``ktplus predict``.

    Example:

    >>> from ktplus.cli import build_parser
    >>> args = build_parser().parse_args(["search", "--data", "iris", "--task", "regression"])
    >>> args.command, args.data, args.task, args.trials
    ('search', 'iris', 'regression', 10)
    """
    parser = _Parser(prog="ktplus", description="Hyperparameter search for Keras models, with no code.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    _add_search(sub)
    r = sub.add_parser("report", help="the leaderboard of a finished or running search, and its recorded test "
                                      "evaluation (as a table)")
    r.add_argument("dir", help="the search's project directory, e.g. runs/digits")
    r.add_argument("--format", default="table", choices=("table", "csv", "json"))
    r.add_argument("--top", type=_positive_int, default=None, help="only the N best trials")
    r.add_argument("--plot", metavar="FILE.png", help="also draw the objective per trial and per hyperparameter")
    t = sub.add_parser("tensorboard", help="serve a search's TensorBoard logs on 127.0.0.1")
    t.add_argument("dir", help="the search's project directory, e.g. runs/digits")
    t.add_argument("--port", type=_non_negative_int, default=0, help="port (default: a free one)")
    _add_predict(sub)
    return parser
