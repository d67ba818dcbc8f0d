"""``ktplus search``: one process that builds the hypermodel and the tuner,
runs the search with a progress display and prints the leaderboard, then
(``--test-split``) the best model's test evaluation and (``--export``) the
exported model's path.

Every check that needs no TensorFlow (arguments, data, shapes, data
preparation, split) runs before TensorFlow is imported. Keras',
TensorFlow's and keras-tuner's routine chatter is silenced only while the
search runs (`quiet_search`), so calling `ktplus.cli.main` from a notebook
or a test leaves the process's warning filters and logging levels as they
were.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from typing import Any

from ktplus.cli._data import (
    load_data,
    objective_for,
    objectives_for,
    prep_options,
    prep_text,
    project_dir,
    scoring_text,
    shape_for,
    task_summary,
    tuner_objective,
)
from ktplus.cli._errors import CLIError
from ktplus.cli._parser import SAMPLER_CHOICES
from ktplus.cli._progress import Progress, hyperband_total, with_progress
from ktplus.cli._splits import DATA_FILE, Splits, check_same_split, class_names, data_record, make_splits

#: Loggers whose INFO/WARNING lines are routine during a search.
QUIET_LOGGERS = ("tensorflow", "absl")
#: The libraries whose own deprecation notices are not the user's concern.
_LIBRARIES = r"(keras|keras_tuner|tensorflow|tf_keras|absl|google\.protobuf|optree)(\.|$)"
#: Known routine UserWarnings (message prefixes, as regular expressions)
#: that Keras and keras-tuner raise during an ordinary search.
NOISY_MESSAGES = (
    r"Skipping variable loading for optimizer",  # Hyperband reloading a parent checkpoint
    r"Your input ran out of data",
    r"Do not pass an `input_shape`",
    r"The structure of `inputs` doesn't match the expected structure",
    r"`build\(\)` was called on layer",
    r"Compiled the loaded model, but the compiled metrics have yet to be built",
    r"Early stopping conditioned on metric",
    r"Learning rate reduction is conditioned on metric",
)


@contextlib.contextmanager
def quiet_search(verbose: bool = False) -> Iterator[None]:
    """Silences the libraries' known routine warnings and INFO logging for
    the duration of the block, then restores the warning filters and the
    logging levels it changed. With ``verbose`` it changes nothing.

    >>> import warnings
    >>> before = list(warnings.filters)
    >>> with quiet_search():
    ...     warnings.warn("Your input ran out of data; interrupting training.")
    >>> warnings.filters == before
    True
    """
    if verbose:
        yield
        return
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    with warnings.catch_warnings():
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category, module=_LIBRARIES)
        for message in NOISY_MESSAGES:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        try:
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def _hypermodel(family: str, x: Any, data: Any, regularizer: list[str], prep: dict[str, Any]) -> Any:
    """The hypermodel of ``--family``, with ``--regularizer`` and the data
    preparation of `ktplus.cli._data.prep_options`."""
    import ktplus

    classes = {"dense": ktplus.DenseHyperModel, "conv": ktplus.ConvHyperModel,
               "residual": ktplus.ResidualHyperModel, "auto": ktplus.AutoHyperModel}
    reg: Any = ["l1", "l2", "l1_l2", None] if regularizer == ["tune"] else [
        None if r == "none" else r for r in regularizer]
    reg = reg[0] if len(reg) == 1 else reg
    kwargs: dict[str, Any] = {"regularizer": reg, **prep}
    if data.task == "regression":
        kwargs["task"] = "regression"
    else:
        kwargs["num_classes"] = data.num_classes
    return classes[family](input_shape=x.shape[1:], **kwargs)


def _tuner_class(name: str) -> tuple[Any, dict[str, Any]]:
    """The ktplus tuner class of ``--tuner name`` and its own arguments: one
    of keras-tuner's algorithms, or ``OptunaSearch`` with the sampler ``name``."""
    import ktplus

    if name in SAMPLER_CHOICES:
        return ktplus.OptunaSearch, {"sampler": name}
    return {"random": ktplus.RandomSearch, "bayesian": ktplus.BayesianOptimization,
            "hyperband": ktplus.Hyperband, "grid": ktplus.GridSearch}[name], {}


def _tuner_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ktplus options of the tuner, from the command's flags, as keyword
    arguments of ``ktplus.RandomSearch`` and its siblings.

    The one place the flags become tuner options: the same
    ``ktplus.TunerOptions`` the tuners validate their arguments with. Flags
    the command does not offer keep the tuners' defaults (``fast_path``,
    ``tensorboard``, ``lr_warmup``, ``worker_timeout``).
    """
    from ktplus.tuners import TunerOptions

    return TunerOptions.parse(
        lr_decay=None if args.lr_decay == "none" else args.lr_decay,
        early_stopping=args.early_stopping or None,
        pruning=None if args.pruning == "none" else args.pruning,
        cv=args.cv,
        pack=getattr(args, "pack", "auto"),
    ).as_kwargs()


def _space_signature(hps: Any) -> dict[str, Any]:
    return {hp.name: {k: v for k, v in hp.get_config().items() if k not in ("default", "conditions")}
            for hp in hps.space if not hp.name.startswith("tuner/")}


#: The flags behind hyperparameters whose space a command sets (names without an ``auto`` family
#: scope such as ``conv/``), to name in a refused resume.
SPACE_FLAGS = {"regularizer": "--regularizer", "regularizer_strength": "--regularizer",
               "normalization": "--normalize", "class_weight": "--class-weight",
               **{f"augment_{n}": "--augment" for n in ("flip", "rotation", "zoom", "translation", "crop")}}


def _space_flags(names: list[str]) -> list[str]:
    """The flags that set the hyperparameters ``names`` (`SPACE_FLAGS`), once each.

    >>> _space_flags(["conv/augment_zoom", "normalization", "dense/normalization", "units_0"])
    ['--augment', '--normalize']
    """
    flags = [SPACE_FLAGS.get(n.rsplit("/", 1)[-1]) for n in names]
    return sorted({f for f in flags if f})


def _search_record(args: argparse.Namespace, objectives: list[str]) -> dict[str, Any]:
    """What the CLI records about a search's algorithm in its `DATA_FILE`:
    ``--tuner`` (several name ``OptunaSearch`` with another sampler) and the
    objectives, which a resume must repeat."""
    return {"tuner": args.tuner, "objective": objectives}


def _check_same_search(project_dir: str, hypermodel: Any, args: argparse.Namespace, tuner_name: str,
                       objectives: list[str], data: Any) -> None:
    """A directory that holds another search is an error, not a silent mix:
    another tuner class, another ``--tuner`` (the samplers share the class
    ``OptunaSearch``), other objectives or another search space. A search
    the CLI recorded without ``--tuner`` and ``--objective`` (an older
    ktplus) is compared by tuner class and its data's default objective."""
    import keras_tuner

    from ktplus.cli._splits import read_data_file
    from ktplus.results import read_meta
    from ktplus.training import _schedules

    oracle_file = os.path.join(project_dir, "oracle.json")
    if not os.path.isfile(oracle_file):
        return
    try:
        with open(oracle_file) as f:
            saved = keras_tuner.HyperParameters.from_config(json.load(f)["hyperparameters"])
    except (OSError, ValueError, KeyError) as e:
        raise CLIError(f"ktplus: {project_dir} holds an unreadable search ({e}); use --overwrite or "
                       "another --project") from None
    hint = "to resume it, --overwrite to replace it, or another --project"
    record = read_data_file(project_dir)
    saved_class, saved_flag = read_meta(project_dir).get("tuner"), record.get("tuner")
    if (saved_class and saved_class != tuner_name) or (saved_flag and saved_flag != args.tuner):
        was = (f"{'an' if saved_class[0] in 'AEIOU' else 'a'} {saved_class} search" if saved_class
               else "a search")
        raise CLIError(f"ktplus: {project_dir} holds {was}" + (f" (--tuner {saved_flag})" if saved_flag else "")
                       + f", not {tuner_name} (--tuner {args.tuner}); use the same --tuner {hint}")
    saved_objectives = record.get("objective") or [objective_for(data)]
    if record and saved_objectives != objectives:
        raise CLIError(f"ktplus: {project_dir} holds a search for --objective {','.join(saved_objectives)}, not "
                       f"{','.join(objectives)}; use the same --objective {hint}")
    fresh = keras_tuner.HyperParameters()
    hypermodel.build(fresh)
    if args.lr_decay == "tune":
        _schedules.declare_tuned_decay(fresh)
    ours, theirs = _space_signature(fresh), _space_signature(saved)
    if ours != theirs:
        changed = sorted(set(ours) ^ set(theirs)) or sorted(k for k in ours if ours[k] != theirs[k])
        flags = _space_flags(changed)
        same = f"the same {' and '.join(flags)} as before to resume it, " if flags else ""
        raise CLIError(f"ktplus: {project_dir} holds a search with a different search space (differs in: "
                       f"{', '.join(changed[:6])}); use {same}--overwrite to replace it or another --project")


def _storage_kwargs(args: argparse.Namespace, project: str) -> dict[str, Any]:
    """``OptunaSearch``'s ``storage``, ``study_name`` and ``heartbeat_interval``
    from ``--storage``, ``--study`` and ``--heartbeat`` (none without ``--storage``)."""
    if getattr(args, "storage", None) is None:
        return {}
    kwargs: dict[str, Any] = {"storage": args.storage, "study_name": args.study or project}
    if args.heartbeat is not None:
        kwargs["heartbeat_interval"] = args.heartbeat
    return kwargs


def _storage_error(e: ValueError) -> str:
    """OptunaSearch's message for a bad storage or study, as the command's flags.

    >>> _storage_error(ValueError("Invalid value for argument `storage`: expected a URL; connecting failed "
    ...                           "(OperationalError: refused). Received: storage='x://***@h/db'"))
    '--storage: expected a URL; connecting failed (OperationalError: refused); got x://***@h/db'
    """
    text = str(e).strip().splitlines()[0]
    for arg, flag in (("storage", "--storage"), ("study_name", "--study"), ("heartbeat_interval", "--heartbeat")):
        prefix = f"Invalid value for argument `{arg}`: "
        if text.startswith(prefix):
            body, _, received = text[len(prefix):].rpartition(f". Received: {arg}=")
            got = received.strip("'\"") if received else ""
            return f"{flag}: {body or text[len(prefix):]}" + (f"; got {got}" if got else "")
    return text


def run_search(args: argparse.Namespace) -> int:
    """Runs (or resumes) ``ktplus search`` in this process: the search, then
    with ``--test-split`` the best model's test evaluation and with
    ``--export`` the refit model's file.

    In a distributed search (``--role``) workers only search; the chief,
    which holds the oracle and shares the project directory with them,
    evaluates and exports once every trial is done.

    Raises:
        CLIError: for bad data, a directory holding another search, or a
            search stopped by too many failed trials.
    """
    # Everything that can be checked without TensorFlow is checked first.
    data = load_data(args)
    objectives = objectives_for(args, data)
    x, family = shape_for(args.family, data)
    prep = prep_options(args, data, x, family)
    splits = make_splits(args, data, x)
    if args.role != "worker":
        check_same_split(args, project_dir(args, data)[1])
    columns = None
    if args.export and args.role != "worker" and args.data.lower().endswith(".csv"):
        from ktplus.cli._export import csv_feature_columns

        columns = csv_feature_columns(args.data, args.target)  # the header the model was trained on

    from ktplus._quiet import import_quietly

    # Imported outside the scoped filters: numpy, scipy, urllib3... install their own filters on
    # first import, and those must outlive the search like any other import's.
    import_quietly()
    with quiet_search(args.verbose):
        return _search(args, data, objectives, family, x, splits, prep, columns)


def _search(args: argparse.Namespace, data: Any, objectives: list[str], family: str, x: Any, splits: Splits,
            prep: dict[str, Any], columns: list[str] | None = None) -> int:
    import keras

    from ktplus._atomic import atomic_write_json
    from ktplus.results import format_table

    hypermodel = _hypermodel(family, x, data, args.regularizer, prep)
    project, where = project_dir(args, data)
    tuner_cls, tuner_kwargs = _tuner_class(args.tuner)
    if not args.overwrite and args.role != "worker":
        _check_same_search(where, hypermodel, args, tuner_cls.__name__, objectives, data)
    objective = ",".join(objectives)
    budget = {"max_epochs": args.epochs} if args.tuner == "hyperband" else {"max_trials": args.trials}

    def progress_factory(tuner: Any) -> Progress:
        total = hyperband_total(tuner.oracle) if args.tuner == "hyperband" else args.trials
        return Progress(total, objective)

    cls = tuner_cls if args.verbose or args.role else with_progress(tuner_cls, progress_factory)
    keras.utils.set_random_seed(args.seed)
    shared = _storage_kwargs(args, project)
    try:
        tuner = cls(
            hypermodel,
            objective=tuner_objective(objectives),
            seed=args.seed,
            directory=args.directory,
            project_name=project,
            overwrite=args.overwrite,
            **tuner_kwargs,
            **_tuner_options(args),
            **budget,
            **shared,
        )
    except ValueError as e:
        if not shared:
            raise
        raise CLIError(f"ktplus search: {_storage_error(e)}") from None
    if args.role != "worker":
        atomic_write_json(os.path.join(where, DATA_FILE),
                          {**data_record(args, data), **_search_record(args, objectives)})
    scoring = scoring_text(args, objectives)
    if not args.role:
        preparation = prep_text(prep)
        print(f"ktplus: {args.tuner} search of {family} models on {data.name} ({splits.describe()}), "
              f"{task_summary(args, data)}, {scoring}{', ' + preparation if preparation else ''}; logs in "
              f"{where}", flush=True)
    start = time.time()
    search_kwargs: dict[str, Any] = {} if args.tuner == "hyperband" else {"epochs": args.epochs}
    if splits.val is not None:
        search_kwargs["validation_data"] = splits.val
    try:
        tuner.search(*splits.fit, verbose=1 if args.verbose else 0, **search_kwargs)
    except KeyboardInterrupt:
        print("", flush=True)
        raise
    except RuntimeError as e:  # keras-tuner's "too many consecutive failures"
        raise CLIError(f"ktplus: search stopped: {str(e).splitlines()[0]}") from None
    except ValueError as e:  # the study in --storage is another search's (checked before any trial)
        if not shared or "argument `study_name`" not in str(e):
            raise
        raise CLIError(f"ktplus search: {_storage_error(e)}") from None
    if args.role == "worker":
        return 0
    if not args.role:
        frame = tuner.results()
        print(f"\nLeaderboard ({len(frame)} trials, {scoring}, {time.time() - start:.0f} s):")
        print(format_table(frame, top=10))
        if len(objectives) > 1:
            from ktplus.cli._report import pareto_text

            print("\n" + pareto_text(tuner.pareto_front(), len(frame)))
    if splits.test is not None:
        print("\n" + _evaluate(tuner, splits.test, where, data), flush=True)
    if args.export:
        print("\n" + _export(args, tuner, data, x, splits, columns), flush=True)
    if not args.role:
        print(f"\nInspect the runs:\n  tensorboard --logdir {tuner.tensorboard_dir}\n"
              f"  ktplus report {where} --html report.html")
    return 0


def _best_trial(tuner: Any) -> Any:
    """The best scored trial in ktplus's one ranking: the one ``tuner.evaluate``
    scores and ``tuner.refit`` trains (never a pruned trial before a fully
    trained one)."""
    from ktplus._ranking import best_trials

    best = best_trials(tuner.oracle, 1)
    if not best:
        raise CLIError("ktplus: no trial completed, so there is no best model to evaluate or export")
    return best[0]


def _evaluate(tuner: Any, test: tuple[Any, Any], where: str, data: Any) -> str:
    """Scores the best model on the held-out rows (recorded in the project
    directory by ``tuner.evaluate``) and returns the printable report."""
    from ktplus.cli._report import format_with_names
    from ktplus.evaluation._heldout import load_evaluation

    trial = _best_trial(tuner)
    tuner.evaluate(*test, num_models=1)
    record = load_evaluation(where)
    if record is None:
        raise CLIError(f"ktplus: the test evaluation was not recorded in {where}")
    return (f"Test set: {len(test[0])} samples held out before the search; the best model, trial "
            f"{trial.trial_id}:\n" + format_with_names(record, class_names(data)))


def _export(args: argparse.Namespace, tuner: Any, data: Any, x: Any, splits: Splits,
            columns: list[str] | None) -> str:
    """Refits the best configuration on every non-test row and exports it to
    ``--export`` (in ``--format``) with its preprocessing and record,
    verified on up to 64 of those rows, raw (`ktplus.cli._export`)."""
    from ktplus._export import ExportError
    from ktplus.cli._export import export_metadata, model_normalization, save_export, wrap

    trial = _best_trial(tuner)
    model = tuner.refit(*splits.rest, verbose=1 if args.verbose else 0)
    meta = export_metadata(args, data, x.shape[1:], splits, trial, class_names(data), columns,
                           model_normalization(model))
    meta["objective"] = {"name": getattr(tuner.oracle.objective, "name", None),
                         "direction": getattr(tuner.oracle.objective, "direction", None), "value": trial.score}
    raw = splits.rest[0][:64].reshape((-1, *data.x.shape[1:]))
    try:
        record = save_export(wrap(model, data.x.shape[1:], x.shape[1:]), args.export, meta, raw,
                             getattr(args, "export_format", None),
                             reference=wrap(model, data.x.shape[1:], x.shape[1:], copy=False))
    except ExportError as e:
        raise CLIError(f"ktplus: --export: {str(e).removeprefix('export: ')}") from None
    except OSError as e:
        raise CLIError(f"ktplus: --export: cannot write {args.export}: {e.strerror or e}") from None
    example = "FILE.csv" if meta["source"] == "csv" else "FILE.npz"
    check = record["verification"]
    return (f"Exported the best configuration (trial {trial.trial_id}), trained on all {len(splits.rest[0])} "
            f"non-test samples, to {args.export} ({record['export_format']}; checked with {check['runtime']} on "
            f"{check['samples']} rows: max abs difference {check['max_abs_diff']:.2g}; record in "
            f"{args.export.rstrip('/')}.json)\n  predict with: ktplus predict {args.export} {example} "
            "--output predictions.csv")
