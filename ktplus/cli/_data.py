"""The data of ``ktplus search``: ``--data``/``--target``/``--task`` into a
`ktplus.datasets.Dataset`, shaped for ``--family``, and the objectives
(``--objective``) a search of that data can optimize.

Shared by the in-process search and the worker supervisor, which checks the
data before it starts any process. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ktplus.cli._errors import CLIError


def load_data(args: argparse.Namespace) -> Any:
    """The dataset named by ``--data`` (with ``--target`` and ``--task``).

    Raises:
        CLIError: for an unknown name or unusable data.
    """
    from ktplus import datasets

    task = getattr(args, "task", None)
    try:
        if args.data in datasets.BUILTIN:
            if args.target:
                raise CLIError(f"ktplus: --target is for .csv files, not the built-in dataset {args.data!r}")
            return datasets.load(args.data, task=task)
        if os.sep not in args.data and "." not in args.data:
            raise CLIError(f"ktplus: --data: unknown dataset {args.data!r}; expected one of "
                           f"{', '.join(datasets.BUILTIN)} or a path to an .npz or .csv file")
        return datasets.load_file(args.data, args.target, task=task)
    except datasets.DataError as e:
        raise CLIError(f"ktplus: --data: {e}") from None


def shape_for(family: str, data: Any) -> tuple[Any, str]:
    """The input array for the family, and the family to build.

    Raises:
        CLIError: when the family cannot take the data's shape.
    """
    x = data.x
    spatial = data.image_shape is not None or x.ndim >= 3
    if data.image_shape is not None and family != "dense":
        x = x.reshape((-1, *data.image_shape))
    if family in ("conv", "residual") and not spatial:
        raise CLIError(f"ktplus: --family {family} needs image or sequence data (x with 3+ dimensions, or "
                       f"digits); {data.name!r} is tabular: use --family dense or auto")
    if family == "residual" and x.ndim > 4:
        raise CLIError("ktplus: --family residual takes sequences or images (x with 3 or 4 dimensions)")
    if family == "auto" and not spatial:
        family = "dense"
    return x, family


#: What a search of each task can optimize: the loss and the metric the CLI's hypermodels compile
#: (accuracy, or mae for regression), on the training or the validation data, and ktplus's
#: built-in objectives, which need no compiled metric.
OBJECTIVES = {"classification": ("val_accuracy", "accuracy", "val_loss", "loss"),
              "regression": ("val_loss", "loss", "val_mae", "mae")}
BUILTIN_OBJECTIVES = ("num_params", "trial_seconds")


def objective_for(data: Any) -> str:
    """The default objective: ``val_accuracy`` for classification, ``val_loss`` for regression."""
    return OBJECTIVES[data.task][0]


def objectives_for(args: argparse.Namespace, data: Any) -> list[str]:
    """The search's objectives: ``--objective``'s names (checked against the
    data's task), or the default one (`objective_for`).

    Raises:
        CLIError: for a name the search cannot measure on this data.
    """
    names = getattr(args, "objective", None) or [objective_for(data)]
    allowed = (*OBJECTIVES[data.task], *BUILTIN_OBJECTIVES)
    bad = [n for n in names if n not in allowed]
    if bad:
        raise CLIError(f"ktplus: --objective {','.join(names)}: {', '.join(bad)} cannot be measured in a "
                       f"{data.task} search; expected {', '.join(allowed)}, or a comma list of them")
    return list(names)


def tuner_objective(names: list[str]) -> str | list[str]:
    """The ``objective=`` of a ktplus tuner: the name of one, the list of several."""
    return names[0] if len(names) == 1 else list(names)


def scoring_text(args: argparse.Namespace, objectives: list[str]) -> str:
    """How trials are scored, for the headings: ``"objective val_accuracy"``,
    ``"objectives val_accuracy, num_params"``, ``"5-fold cross-validated val_accuracy"``."""
    names = ", ".join(objectives)
    if args.cv:
        return f"{args.cv}-fold cross-validated {names}"
    return f"objective {names}" if len(objectives) == 1 else f"objectives {names}"


def maximized(name: str) -> bool:
    """Whether a larger value of the objective ``name`` (one of `OBJECTIVES`
    or `BUILTIN_OBJECTIVES`) is better."""
    return name.endswith("accuracy")


def project_dir(args: argparse.Namespace, data: Any) -> tuple[str, str]:
    """``(project name, project directory)``: ``--project`` or the dataset's name, under ``--directory``."""
    project = args.project or data.name
    return project, os.path.join(args.directory, project)


def task_summary(args: argparse.Namespace, data: Any) -> str:
    """``"regression"`` or ``"N-class classification"``, noting when a file's
    task was inferred (``--task`` decides it otherwise)."""
    from ktplus import datasets

    text = "regression" if data.task == "regression" else f"{data.num_classes}-class classification"
    if getattr(args, "task", None) is None and args.data not in datasets.BUILTIN:
        text += " (inferred from the target; --task to choose)"
    return text
