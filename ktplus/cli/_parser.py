"""The ``ktplus`` argument parser: commands, options and their value checks.

Parsing imports nothing but the standard library, so bad arguments are
reported before TensorFlow loads.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from ktplus.cli._errors import CLIError

FAMILY_CHOICES = ("dense", "conv", "residual", "auto")
#: keras-tuner's search algorithms, each run by the ktplus tuner of the same name.
KERAS_TUNER_CHOICES = ("random", "bayesian", "hyperband", "grid")
#: Optuna's samplers, each run by ``ktplus.OptunaSearch(sampler=<name>)``.
SAMPLER_CHOICES = ("tpe", "cmaes", "gp", "qmc", "nsga2")
TUNER_CHOICES = (*KERAS_TUNER_CHOICES, *SAMPLER_CHOICES)
#: Samplers that optimize exactly one objective / two or more.
ONE_OBJECTIVE_SAMPLERS = ("cmaes",)
SEVERAL_OBJECTIVE_SAMPLERS = ("nsga2",)
TASK_CHOICES = ("classification", "regression")
LR_DECAY_CHOICES = ("none", "exponential", "step", "cosine", "polynomial", "plateau", "tune")
#: --lr-decay values that watch the objective (``_schedules.needs_single_metric``).
WATCHING_DECAYS = ("plateau", "tune")
#: --early-stopping and --pruning when not given: on for one objective; off for several, which
#: the options that watch one metric refuse.
DEFAULT_PATIENCE = 5
DEFAULT_PRUNING = "median"
REGULARIZER_CHOICES = ("none", "l1", "l2", "l1_l2", "tune")
#: --normalize, --augment and --class-weight (their defaults and checks need the data:
#: `ktplus.cli._data.prep_options`).
NORMALIZE_CHOICES = ("none", "standardize", "minmax", "tune")
AUGMENT_CHOICES = ("none", "tune")
CLASS_WEIGHT_CHOICES = ("none", "balanced", "tune")
#: The embedded storage of ``ktplus search --workers N`` with an Optuna sampler: a journal file
#: (`optuna.storages.JournalStorage`) in the project directory.
JOURNAL_FILE = "optuna-journal.log"


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
#: --pack: how many trials to train fused, or auto.
_pack = _number(int, lambda v: v >= 1, "auto or a number of trials >= 1 (1: off)", {"auto": "auto"})
#: --early-stopping: a patience, or on/off words (on: patience 5).
_patience = _number(int, lambda v: v >= 0, "a patience in epochs (>= 0) or on/off",
                    {"true": DEFAULT_PATIENCE, "on": DEFAULT_PATIENCE, "yes": DEFAULT_PATIENCE,
                     "false": 0, "off": 0, "no": 0, "none": 0})


def _export_path(text: str) -> str:
    """``--export`` and ``ktplus export``'s PATH: not empty (the rest is checked in `check_export_path`)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path: NAME.keras, NAME.onnx, NAME.tflite or a directory")
    return text


EXPORT_FORMATS = ("keras", "saved_model", "onnx", "litert")
_FORMAT_HELP = ("the export's format: keras, saved_model (a directory), onnx or litert (default: from PATH: "
                ".keras, .onnx, .tflite, or a directory path for a SavedModel)")


def _objectives(text: str) -> list[str]:
    """``--objective``: one metric name, or a comma list of distinct names (which names the data
    allows is checked with the data, `ktplus.cli._data.objectives_for`)."""
    names = [p.strip() for p in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected a metric name or a comma list such as "
                                         f"val_accuracy,num_params; got {text!r}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{', '.join(twice)} listed more than once in {text!r}; "
                                         "give each objective once")
    return names


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
    s.add_argument("--tuner", default="random", choices=TUNER_CHOICES,
                   help="search algorithm: keras-tuner's random, bayesian, hyperband or grid, or one of "
                        "Optuna's samplers (ktplus.OptunaSearch): tpe (multivariate TPE), cmaes (one "
                        "objective), gp, qmc, nsga2 (several objectives) (default: random)")
    s.add_argument("--objective", type=_objectives, default=None, metavar="METRIC[,METRIC...]",
                   help="what to optimize: val_accuracy, accuracy (classification), val_mae, mae "
                        "(regression), val_loss, loss, num_params or trial_seconds (minimized), or a comma "
                        "list of them (val_accuracy,num_params) for a multi-objective search that ends "
                        "with its Pareto front (default: val_accuracy for classification, val_loss for "
                        "regression)")
    s.add_argument("--trials", type=_positive_int, default=10,
                   help="number of trials (default: 10; Hyperband sizes its brackets from --epochs)")
    s.add_argument("--epochs", type=_positive_int, default=10, help="epochs per trial (default: 10)")
    s.add_argument("--lr-decay", default="none", choices=LR_DECAY_CHOICES,
                   help="learning-rate schedule (default: none; plateau and tune watch the objective, so "
                        "need one)")
    s.add_argument("--early-stopping", type=_patience, default=None, metavar="PATIENCE",
                   help=f"early-stopping patience in epochs, 0 or off to disable (default: {DEFAULT_PATIENCE}; "
                        "off with several objectives)")
    s.add_argument("--pruning", default=None, choices=("median", "percentile", "none"),
                   help=f"pruning rule for hopeless trials (default: {DEFAULT_PRUNING}; none with several "
                        "objectives)")
    s.add_argument("--regularizer", type=_regularizer, default=["none"],
                   help="none, l1, l2, l1_l2, a comma list to tune (l2,none), or tune (default: none)")
    s.add_argument("--normalize", default=None, choices=NORMALIZE_CHOICES,
                   help="scale the inputs inside the model with a Normalization layer whose statistics come "
                        "from the training data only (each fold's training part with --cv): standardize (mean "
                        "0, variance 1 per feature or channel), minmax (to [0, 1]), none, or tune (all three) "
                        "(default: standardize for tabular data, none for images and sequences)")
    s.add_argument("--augment", default="none", choices=AUGMENT_CHOICES,
                   help="image augmentation in training, for 2D images (digits or an .npz of images) with "
                        "--family conv, residual or auto: tune searches random flips, rotation, zoom, "
                        "translation and crop over ranges suited to the image size (default: none)")
    s.add_argument("--class-weight", default="none", choices=CLASS_WEIGHT_CHOICES,
                   help="weight the classes in the loss: balanced (inversely to their frequency in the "
                        "training data), none, or tune (both); classification only (default: none)")
    s.add_argument("--directory", default="runs", help="where searches live (default: runs)")
    s.add_argument("--project", default=None, help="project name (default: the dataset's name)")
    s.add_argument("--seed", type=int, default=0,
                   help="random seed: it draws the test and validation rows and the folds, so a resume must "
                        "repeat it (default: 0)")
    s.add_argument("--validation-split", type=_fraction, default=None,
                   help="fraction of the non-test data held out for validation (default: 0.2; not with --cv; "
                        "a resume must repeat it)")
    s.add_argument("--pack", type=_pack, default="auto", metavar="K",
                   help="ask for up to K trials at once and train those whose models share a structure as one "
                        "fused model, each trial recorded as if trained alone; auto (default) or 1 (off)")
    s.add_argument("--cv", type=_folds, default=None, metavar="K",
                   help="cross-validate every trial on K folds of the non-test data instead of one validation "
                        "split (stratified for classification); the score is the mean over the folds")
    s.add_argument("--test-split", type=_fraction, default=None, metavar="F",
                   help="hold out this fraction (stratified for classification, seeded by --seed) before the "
                        "search, which never sees it; the best model's test metrics, per-class table and "
                        "confusion matrix are printed at the end and kept for ktplus report")
    s.add_argument("--export", type=_export_path, default=None, metavar="PATH",
                   help="after the search, train the best configuration on all the non-test data and export it "
                        "to PATH, preprocessing included, verified against the Keras model: PATH.keras, a "
                        "SavedModel directory, PATH.onnx or PATH.tflite (predicts on raw features; ktplus "
                        "predict reads every format; a record of it is written to PATH.json)")
    s.add_argument("--format", dest="export_format", choices=EXPORT_FORMATS, default=None,
                   help=_FORMAT_HELP + "; needs --export")
    s.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    s.add_argument("--workers", type=_non_negative_int, default=0,
                   help="N local worker processes: with an Optuna --tuner (tpe, cmaes, gp, qmc, nsga2) they "
                        f"share one study with no chief, in --storage or the journal file {JOURNAL_FILE} in "
                        "the project directory; with keras-tuner's (random, bayesian, hyperband, grid) a local "
                        "chief serves them on 127.0.0.1 (default: 0, one process)")
    s.add_argument("--storage", default=None, metavar="URL",
                   help="keep the search's Optuna study in this storage and join it: a database URL "
                        "(postgresql://user:password@host/db, mysql://..., sqlite:///search.db) or a journal "
                        "file path; run the same command in as many terminals or cluster jobs as wanted "
                        "(sharing --directory), with an Optuna --tuner")
    s.add_argument("--study", default=None, metavar="NAME",
                   help="the study's name in --storage (default: the project name)")
    s.add_argument("--heartbeat", type=_positive_int, default=None, metavar="SECONDS",
                   help="with --storage or Optuna --workers: seconds between a running trial's heartbeats; a "
                        "trial silent for twice as long (its worker died or stalled) is failed and re-run "
                        "once by another worker (default: 60)")
    s.add_argument("--role", choices=("chief", "worker"),
                   help="this process's part in a multi-host search (with KERASTUNER_* variables)")
    s.add_argument("-v", "--verbose", action="store_true", help="keras-tuner's and Keras' own output")


def _add_predict(sub: Any) -> None:
    p = sub.add_parser("predict", help="predict with a model exported by ktplus search --export or ktplus export")
    p.add_argument("model", metavar="MODEL",
                   help="the export (.keras, SavedModel directory, .onnx or .tflite) written by ktplus search "
                        "--export, ktplus export or ktplus.export, its record MODEL.json beside it")
    p.add_argument("data", metavar="FILE",
                   help="a .csv with the training file's feature columns (any order; the target column, if "
                        "present, is ignored) or an .npz with an array x, raw as in the training data")
    p.add_argument("-o", "--output", metavar="PREDS.csv",
                   help="write the predictions here (default: print them): a prediction column, and for "
                        "classification one proba_<class> column per class")


def _one_of(names: Iterable[str]) -> str:
    """``"a, b or c"``.

    >>> _one_of(["tpe", "gp", "qmc"])
    'tpe, gp or qmc'
    """
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _check_objectives(args: argparse.Namespace) -> None:
    """``--objective`` against ``--tuner`` and the options that watch one
    metric, then those options' defaults, which depend on the number of
    objectives (`DEFAULT_PATIENCE`, `DEFAULT_PRUNING`)."""
    several = args.objective is not None and len(args.objective) > 1
    if args.tuner in SEVERAL_OBJECTIVE_SAMPLERS and not several:
        given = f"--objective {args.objective[0]}" if args.objective else "the default single objective"
        raise CLIError(f"ktplus search: --tuner {args.tuner} optimizes several objectives, not {given}; give "
                       "--objective a comma list such as val_accuracy,num_params, or use --tuner tpe")
    if not several:
        args.early_stopping = DEFAULT_PATIENCE if args.early_stopping is None else args.early_stopping
        args.pruning = args.pruning or DEFAULT_PRUNING
        return
    listed = ",".join(args.objective)
    if args.tuner in ONE_OBJECTIVE_SAMPLERS:
        raise CLIError(f"ktplus search: --tuner {args.tuner} optimizes one objective, not --objective {listed}; "
                       f"use --tuner {_one_of(t for t in SAMPLER_CHOICES if t not in ONE_OBJECTIVE_SAMPLERS)}")
    watching = [flag for flag, on in (
        (f"--early-stopping {args.early_stopping}", bool(args.early_stopping)),
        (f"--pruning {args.pruning}", args.pruning not in (None, "none")),
        (f"--lr-decay {args.lr_decay}", args.lr_decay in WATCHING_DECAYS)) if on]
    if watching:
        raise CLIError(f"ktplus search: {' and '.join(watching)} watch{'es' if len(watching) == 1 else ''} one "
                       f"metric, but --objective {listed} lists {len(args.objective)}; drop "
                       f"{'it' if len(watching) == 1 else 'them'} or give one objective")
    one_model = [flag for flag, value in (("--test-split", args.test_split), ("--export", args.export))
                 if value is not None]
    if one_model:  # the tuners' "best" trial would be keras-tuner's sum of the objectives
        raise CLIError(f"ktplus search: {' and '.join(one_model)} need{'s' if len(one_model) == 1 else ''} one "
                       f"best model, but --objective {listed} ranks trials by a Pareto front; give one objective")
    args.early_stopping, args.pruning = 0, "none"


def _check_storage(args: argparse.Namespace) -> None:
    """``--storage``, ``--study`` and ``--heartbeat``: an Optuna ``--tuner``
    (keras-tuner's algorithms keep their state in ``oracle.json``), never
    ``--overwrite`` (the other workers' study and records), nor
    ``--role chief``."""
    given = [flag for flag, value in (("--storage", args.storage), ("--study", args.study),
                                      ("--heartbeat", args.heartbeat)) if value is not None]
    if not given:
        return
    if args.tuner not in SAMPLER_CHOICES:
        raise CLIError(f"ktplus search: {' and '.join(given)} share{'s' if len(given) == 1 else ''} an Optuna "
                       f"study between workers, which --tuner {args.tuner} has not; use --tuner "
                       f"{_one_of(SAMPLER_CHOICES)}")
    if args.storage is not None and not args.storage.strip():
        raise CLIError("ktplus search: --storage: expected a database URL or a journal file path, got ''")
    if args.storage is None and not args.workers and args.role is None:
        raise CLIError(f"ktplus search: {' and '.join(given)} need{'s' if len(given) == 1 else ''} --storage "
                       "URL (or --workers N, which shares the project directory's journal file)")
    if args.study is not None and not args.study.strip():
        raise CLIError("ktplus search: --study: expected a study name, got ''")
    if args.role == "chief":
        raise CLIError("ktplus search: --role chief is keras-tuner's chief/worker mode; with --storage every "
                       "process is a worker: drop --role")
    if args.overwrite and args.storage is not None:
        raise CLIError("ktplus search: --overwrite would delete the records of every other worker of the study "
                       "in --storage; to start anew, use another --study and --project")


def check_search(args: argparse.Namespace) -> None:
    """The checks of ``ktplus search`` that span several options or look at
    the file system (still only the standard library); also sets the
    defaults of ``--early-stopping`` and ``--pruning``, which depend on
    ``--objective``.

    Raises:
        CLIError: for ``--cv`` with ``--validation-split``, an ``--export``
            path whose directory does not exist or is a directory, a
            ``--tuner`` for another number of objectives, or several
            objectives with an option that watches one metric or needs one
            best model (``--test-split``, ``--export``).
    """
    _check_objectives(args)
    _check_storage(args)
    if args.cv is not None and args.tuner == "hyperband":
        raise CLIError(f"ktplus search: --cv {args.cv} cannot be used with --tuner hyperband (its continuations "
                       "resume one checkpoint per trial); use another --tuner")
    if args.cv is not None and args.validation_split is not None:
        raise CLIError(f"ktplus search: --cv {args.cv} validates each trial on its folds; drop "
                       f"--validation-split {args.validation_split} (or --cv to use one validation split)")
    if args.export_format is not None and args.export is None:
        raise CLIError(f"ktplus search: --format {args.export_format} is the --export format; give --export PATH")
    if args.export is not None:
        from ktplus.cli._export import check_path

        args.export_format = check_path(args.export, args.export_format, "ktplus search: --export")


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
    r = sub.add_parser("report", help="the leaderboard of a finished or running search, its recorded test "
                                      "evaluation (as a table), and an interactive HTML report (--html)")
    r.add_argument("dir", help="the search's project directory, e.g. runs/digits")
    r.add_argument("--format", default="table", choices=("table", "csv", "json"))
    r.add_argument("--top", type=_positive_int, default=None, help="only the N best trials")
    r.add_argument("--plot", metavar="FILE.png", help="also draw the objective per trial and per hyperparameter")
    r.add_argument("--html", metavar="FILE.html",
                   help="also write the interactive report (history, learning curves, parallel coordinates, "
                        "importance, slices, ...): one self-contained file that opens offline")
    r.add_argument("--importance", default="fanova", choices=("fanova", "ped_anova"),
                   help="the report's importance method (Optuna's fANOVA or PED-ANOVA; default fanova)")
    t = sub.add_parser("tensorboard", help="serve a search's TensorBoard logs on 127.0.0.1")
    t.add_argument("dir", help="the search's project directory, e.g. runs/digits")
    t.add_argument("--port", type=_non_negative_int, default=0, help="port (default: a free one)")
    _add_predict(sub)
    e = sub.add_parser("export", help="export the best model of a finished search (SavedModel, ONNX, LiteRT or "
                                      ".keras), verified against the Keras model")
    e.add_argument("dir", help="the search's project directory, e.g. runs/digits")
    e.add_argument("path", type=_export_path, metavar="PATH",
                   help="PATH.keras, a SavedModel directory, PATH.onnx or PATH.tflite (its record: PATH.json)")
    e.add_argument("--format", dest="export_format", choices=EXPORT_FORMATS, default=None, help=_FORMAT_HELP)
    return parser
