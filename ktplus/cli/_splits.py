"""How ``ktplus search`` divides the data: ``--test-split``, then the
validation split or ``--cv``.

1. ``--test-split F`` holds out a fraction of the rows first (stratified for
   classification, seeded by ``--seed``); the search never sees them.
2. Without ``--cv`` the rest is split into train and validation
   (``--validation-split``, default 0.2) as before; with ``--cv K`` all of
   the rest goes to the search, which makes its own folds.

The rows stay raw: scaling is the model's own (``--normalize``, a
Normalization layer whose statistics come from the data each fit trains
on, so with ``--cv`` from each fold's training part only), so the test rows,
the refit data and an exported model all take the features as the data
source holds them.

The split settings are recorded in the project directory (`DATA_FILE`) so a
resumed search cannot silently change which rows are held out. Nothing here
imports TensorFlow.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ktplus.cli._errors import CLIError

#: The CLI's record of a search's data, in its project directory.
DATA_FILE = "ktplus_data.json"
#: The validation fraction when ``--validation-split`` is not given.
DEFAULT_VALIDATION_SPLIT = 0.2


@dataclass
class Splits:
    """The arrays of one search, shaped as the models take them (raw values).

    ``fit`` is what ``tuner.search`` trains on (the train part, or all the
    non-test rows with ``--cv``), ``val`` the validation part (None with
    ``--cv``), ``test`` the held-out rows (None without ``--test-split``),
    ``rest`` every non-test row (for ``--export``'s refit).
    """

    fit: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray] | None
    test: tuple[np.ndarray, np.ndarray] | None
    rest: tuple[np.ndarray, np.ndarray]

    def describe(self) -> str:
        """The sizes: ``"96 train / 24 validation / 30 test samples"``, or
        ``"120 samples in cross-validation, 30 held out for test"``."""
        if self.val is None:
            return f"{len(self.fit[0])} samples in cross-validation" + (
                f", {len(self.test[0])} held out for test" if self.test is not None else "")
        text = f"{len(self.fit[0])} train / {len(self.val[0])} validation"
        return text + (f" / {len(self.test[0])} test" if self.test is not None else "") + " samples"


def _check_folds(cv: int, y: np.ndarray, classification: bool) -> None:
    if len(y) < cv:
        raise CLIError(f"ktplus: --cv {cv} needs at least {cv} non-test samples, got {len(y)}")
    if classification:
        counts = np.bincount(y.astype("int64"))
        counts = counts[counts > 0]
        if counts.min() < cv:
            raise CLIError(f"ktplus: --cv {cv}: the rarest class has {int(counts.min())} non-test samples; "
                           f"stratified folds need at least {cv} of every class: use fewer folds")


def make_splits(args: argparse.Namespace, data: Any, x: np.ndarray) -> Splits:
    """Divides ``(x, data.y)`` as ``--test-split``, ``--validation-split`` and
    ``--cv`` ask (see the module docstring).

    Raises:
        CLIError: when a part would be empty or a class too small to stratify.
    """
    from ktplus import datasets

    y = data.y
    classification = data.task == "classification"
    test = None
    if args.test_split is not None:
        from sklearn.model_selection import train_test_split

        try:
            rest_idx, test_idx = train_test_split(np.arange(len(x)), test_size=args.test_split,
                                                  random_state=args.seed, stratify=y if classification else None)
        except ValueError as e:
            raise CLIError(f"ktplus: --test-split {args.test_split}: {str(e).splitlines()[0]} ({len(x)} rows"
                           + (f", {data.num_classes} classes)" if classification else ")")) from None
        rest = (x[rest_idx], y[rest_idx])
        test = (x[test_idx], y[test_idx])
    else:
        rest = (x, y)
    val: tuple[np.ndarray, np.ndarray] | None
    if args.cv is not None:
        _check_folds(args.cv, rest[1], classification)
        fit, val = rest, None
    else:
        fraction = args.validation_split or DEFAULT_VALIDATION_SPLIT
        fit, val = datasets.split(*rest, fractions=(fraction,), seed=args.seed)
        if len(val[0]) < 1 or len(fit[0]) < 2:
            raise CLIError(f"ktplus: --validation-split {fraction} leaves no data to train or validate on "
                           f"({len(rest[0])} rows" + (" after --test-split)" if test is not None else ")"))
    return Splits(fit, val, test, rest)


def split_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What decides which rows a search trains, validates and is tested on."""
    return {"test_split": args.test_split, "cv": args.cv, "seed": args.seed,
            "validation_split": None if args.cv is not None else
            (args.validation_split or DEFAULT_VALIDATION_SPLIT)}


def read_data_file(project_dir: str) -> dict[str, Any]:
    """The CLI's record of a search's data (`DATA_FILE`), or ``{}``."""
    from ktplus._atomic import read_json_dict

    return read_json_dict(os.path.join(project_dir, DATA_FILE))


def _flags(settings: dict[str, Any], keys: list[str]) -> str:
    """The flags of ``settings`` named by ``keys``, as a command line gives them."""
    flag = {"test_split": "--test-split", "cv": "--cv", "seed": "--seed", "validation_split": "--validation-split"}
    parts = []
    for key in keys:
        value = settings.get(key)
        if value is not None:
            parts.append(f"{flag[key]} {value}")
        elif key in ("test_split", "cv"):
            parts.append(f"no {flag[key]}")
    return ", ".join(parts)


def check_same_split(args: argparse.Namespace, project_dir: str) -> None:
    """Refuses to resume a search with a different ``--test-split``, ``--cv``,
    ``--seed`` (it draws the test rows, the validation rows and the folds) or
    ``--validation-split``: its trials would have trained or been validated
    on other rows, or been scored another way, and one leaderboard would mix
    them.

    A search without the record (written by an older ktplus or the Python
    API) is resumed only without ``--test-split`` and ``--cv``.
    """
    if args.overwrite or not os.path.isfile(os.path.join(project_dir, "oracle.json")):
        return
    ours = split_settings(args)
    theirs = read_data_file(project_dir).get("split")
    if not isinstance(theirs, dict):
        if ours["test_split"] is None and ours["cv"] is None:
            return
        theirs = {"test_split": None, "cv": None}
    differ = [k for k in ("test_split", "cv", "seed", "validation_split") if k in theirs and ours.get(k) != theirs[k]]
    if differ:
        raise CLIError(f"ktplus: {project_dir} was searched with {_flags(theirs, differ)}; resuming it with "
                       f"{_flags(ours, differ)} would mix trials that saw other rows or were scored another way: "
                       "use the same flags, --overwrite, or another --project")


def data_record(args: argparse.Namespace, data: Any) -> dict[str, Any]:
    """What the CLI records about a search's data (`DATA_FILE`): enough for
    ``ktplus report`` to name the classes and for a resume to check the split."""
    return {"data": args.data, "name": data.name, "task": data.task, "target": args.target,
            "class_names": class_names(data), "split": split_settings(args)}


def class_names(data: Any) -> list[Any] | None:
    """The original class labels, index by index: a file's labels, or
    ``0..n-1`` for the built-in datasets (their labels as
    `ktplus.datasets.load` returns them); None for regression."""
    if data.task != "classification":
        return None
    if data.class_names is not None:
        return list(data.class_names)
    return list(range(int(data.num_classes)))
