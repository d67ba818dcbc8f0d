"""``ktplus search``: one process that builds the hypermodel and the tuner,
runs the search with a progress display and prints the leaderboard.

Every check that needs no TensorFlow (arguments, data, shapes, split) runs
before TensorFlow is imported. Keras', TensorFlow's and keras-tuner's
routine chatter is silenced only while the search runs (`quiet_search`), so
calling `ktplus.cli.main` from a notebook or a test leaves the process's
warning filters and logging levels as they were.
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

from ktplus.cli._data import load_data, objective_for, project_dir, shape_for, task_summary
from ktplus.cli._errors import CLIError
from ktplus.cli._progress import Progress, hyperband_total, with_progress

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


def _hypermodel(family: str, x: Any, data: Any, regularizer: list[str]) -> Any:
    import ktplus

    classes = {"dense": ktplus.DenseHyperModel, "conv": ktplus.ConvHyperModel,
               "residual": ktplus.ResidualHyperModel, "auto": ktplus.AutoHyperModel}
    reg: Any = ["l1", "l2", "l1_l2", None] if regularizer == ["tune"] else [
        None if r == "none" else r for r in regularizer]
    reg = reg[0] if len(reg) == 1 else reg
    kwargs: dict[str, Any] = {"regularizer": reg}
    if data.task == "regression":
        kwargs["task"] = "regression"
    else:
        kwargs["num_classes"] = data.num_classes
    return classes[family](input_shape=x.shape[1:], **kwargs)


def _tuner_class(name: str) -> Any:
    import ktplus

    return {"random": ktplus.RandomSearch, "bayesian": ktplus.BayesianOptimization,
            "hyperband": ktplus.Hyperband, "grid": ktplus.GridSearch}[name]


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
    ).as_kwargs()


def _space_signature(hps: Any) -> dict[str, Any]:
    return {hp.name: {k: v for k, v in hp.get_config().items() if k not in ("default", "conditions")}
            for hp in hps.space if not hp.name.startswith("tuner/")}


def _check_same_space(project_dir: str, hypermodel: Any, tuner_name: str, lr_decay: str) -> None:
    """A directory that holds another search is an error, not a silent mix."""
    import keras_tuner

    from ktplus.results import META_FILE
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
    try:
        with open(os.path.join(project_dir, META_FILE)) as f:
            saved_tuner = json.load(f).get("tuner")
    except (OSError, ValueError):
        saved_tuner = None
    if saved_tuner and saved_tuner != tuner_name:
        raise CLIError(f"ktplus: {project_dir} holds a {saved_tuner} search, not {tuner_name}; use the same "
                       "--tuner to resume it, --overwrite to replace it, or another --project")
    fresh = keras_tuner.HyperParameters()
    hypermodel.build(fresh)
    if lr_decay == "tune":
        _schedules.declare_tuned_decay(fresh)
    ours, theirs = _space_signature(fresh), _space_signature(saved)
    if ours != theirs:
        changed = sorted(set(ours) ^ set(theirs)) or sorted(k for k in ours if ours[k] != theirs[k])
        raise CLIError(f"ktplus: {project_dir} holds a search with a different search space (differs in: "
                       f"{', '.join(changed[:6])}); use --overwrite to replace it or another --project")


def run_search(args: argparse.Namespace) -> int:
    """Runs (or resumes) ``ktplus search`` in this process.

    Raises:
        CLIError: for bad data, a directory holding another search, or a
            search stopped by too many failed trials.
    """
    from ktplus import datasets

    # Everything that can be checked without TensorFlow is checked first.
    data = load_data(args)
    x, family = shape_for(args.family, data)
    (x_train, y_train), (x_val, y_val) = datasets.split(x, data.y, fractions=(args.validation_split,),
                                                         seed=args.seed)
    if len(x_val) < 1 or len(x_train) < 2:
        raise CLIError(f"ktplus: --validation-split {args.validation_split} leaves no data to train or "
                       f"validate on ({len(data.x)} rows)")
    if data.image_shape is None and x.ndim == 2:
        x_train, x_val = datasets.standardize(x_train, x_val)

    from ktplus._quiet import import_quietly

    # Imported outside the scoped filters: numpy, scipy, urllib3... install their own filters on
    # first import, and those must outlive the search like any other import's.
    import_quietly()
    with quiet_search(args.verbose):
        return _search(args, data, family, x, (x_train, y_train), (x_val, y_val))


def _search(args: argparse.Namespace, data: Any, family: str, x: Any, train: tuple[Any, Any],
            val: tuple[Any, Any]) -> int:
    import keras

    from ktplus.results import format_table

    hypermodel = _hypermodel(family, x, data, args.regularizer)
    project, where = project_dir(args, data)
    tuner_cls = _tuner_class(args.tuner)
    if not args.overwrite and args.role != "worker":
        _check_same_space(where, hypermodel, tuner_cls.__name__, args.lr_decay)
    objective = objective_for(data)
    budget = {"max_epochs": args.epochs} if args.tuner == "hyperband" else {"max_trials": args.trials}

    def progress_factory(tuner: Any) -> Progress:
        total = hyperband_total(tuner.oracle) if args.tuner == "hyperband" else args.trials
        return Progress(total, objective)

    cls = tuner_cls if args.verbose or args.role else with_progress(tuner_cls, progress_factory)
    keras.utils.set_random_seed(args.seed)
    tuner = cls(
        hypermodel,
        objective=objective,
        seed=args.seed,
        directory=args.directory,
        project_name=project,
        overwrite=args.overwrite,
        **_tuner_options(args),
        **budget,
    )
    if not args.role:
        print(f"ktplus: {args.tuner} search of {family} models on {data.name} ({len(train[0])} train / "
              f"{len(val[0])} validation samples), {task_summary(args, data)}, objective {objective}; "
              f"logs in {where}", flush=True)
    start = time.time()
    search_kwargs = {} if args.tuner == "hyperband" else {"epochs": args.epochs}
    try:
        tuner.search(*train, validation_data=val, verbose=1 if args.verbose else 0, **search_kwargs)
    except KeyboardInterrupt:
        print("", flush=True)
        raise
    except RuntimeError as e:  # keras-tuner's "too many consecutive failures"
        raise CLIError(f"ktplus: search stopped: {str(e).splitlines()[0]}") from None
    if args.role:
        return 0
    frame = tuner.results()
    print(f"\nLeaderboard ({len(frame)} trials, objective {objective}, {time.time() - start:.0f} s):")
    print(format_table(frame, top=10))
    print(f"\nInspect the runs:\n  tensorboard --logdir {tuner.tensorboard_dir}")
    return 0
