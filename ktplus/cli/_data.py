"""The data of ``ktplus search``: ``--data``/``--target``/``--task`` into a
`ktplus.datasets.Dataset`, shaped for ``--family``.

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


def objective_for(data: Any) -> str:
    """The search objective: ``val_accuracy`` for classification, ``val_loss`` for regression."""
    return "val_accuracy" if data.task == "classification" else "val_loss"


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
