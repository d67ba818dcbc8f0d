"""The data of ``ktplus search``: ``--data``/``--target``/``--task`` into a
`ktplus.datasets.Dataset`, shaped for ``--family``, the data preparation
(``--normalize``, ``--augment``, ``--class-weight``) the model can do on it,
and the objectives (``--objective``) a search of that data can optimize.

Shared by the in-process search and the worker supervisor, which checks the
data before it starts any process. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import argparse
import math
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


#: The families that take images as images (`ktplus.hypermodels._prep.IMAGE_FAMILIES`, not imported
#: here: it loads Keras); dense flattens them.
IMAGE_FAMILIES = ("conv", "residual", "auto")
#: ``--normalize tune`` and ``--class-weight tune``: the hypermodel's choices.
TUNED_NORMALIZATIONS = [None, "standardize", "minmax"]
TUNED_CLASS_WEIGHTS = [None, "balanced"]


def is_tabular(data: Any, x: Any) -> bool:
    """Whether the rows are tabular features (x with 2 dimensions, not images)."""
    return data.image_shape is None and x.ndim == 2


def augment_ranges(height: int, width: int) -> dict[str, Any]:
    """``--augment tune``'s ranges for images of ``height`` x ``width``: flips
    (none or horizontal), rotation up to 0.1 of a turn, zoom up to 20%, and
    translation and crop up to ``t`` of the side, t = min(0.25, max(0.1,
    2 / side)) for the shorter side (at least a 2-pixel shift on small
    images), rounded up to 3 decimals.

    >>> augment_ranges(8, 8)["augment_translation"], augment_ranges(28, 28)["augment_crop"]
    ((0.0, 0.25), (0.0, 0.1))
    """
    t = min(0.25, max(0.1, 2 / min(height, width)))
    t = math.ceil(round(t * 1000, 6)) / 1000
    return {"augment_flip": [None, "horizontal"], "augment_rotation": (0.0, 0.1), "augment_zoom": (0.0, 0.2),
            "augment_translation": (0.0, t), "augment_crop": (0.0, t)}


def _describe(data: Any, x: Any) -> str:
    if is_tabular(data, x):
        return "tabular"
    return f"sequences (rows of shape {tuple(int(d) for d in x.shape[1:])})"


def prep_options(args: argparse.Namespace, data: Any, x: Any, family: str) -> dict[str, Any]:
    """The hypermodel's data-preparation arguments (``normalization``,
    ``augment_*``, ``class_weight``) from ``--normalize``, ``--augment`` and
    ``--class-weight``, for the input ``x`` and the ``family`` of
    `shape_for`.

    ``--normalize`` defaults to standardize for tabular data and none for
    images and sequences (digits' pixels are already in [0, 1]); ``tune``
    searches ``[None, "standardize", "minmax"]``. ``--augment tune`` takes
    `augment_ranges` of the image size. ``--class-weight tune`` searches
    ``[None, "balanced"]``.

    Raises:
        CLIError: for ``--augment`` on data that is not 2D images or with a
            family that flattens them, or ``--class-weight`` in a
            regression search.
    """
    normalize = getattr(args, "normalize", None) or ("standardize" if is_tabular(data, x) else "none")
    augment = getattr(args, "augment", "none")
    class_weight = getattr(args, "class_weight", "none")
    kwargs: dict[str, Any] = {
        "normalization": TUNED_NORMALIZATIONS if normalize == "tune" else None if normalize == "none" else normalize,
    }
    if augment != "none":
        images = data.image_shape if data.image_shape is not None else x.shape[1:] if x.ndim == 4 else None
        if images is None or len(images) != 3:
            raise CLIError(f"ktplus: --augment {augment} is for 2D images (digits, or an .npz whose x is "
                           f"(samples, height, width, channels)); {data.name!r} is {_describe(data, x)}: use "
                           "--augment none")
        if family not in IMAGE_FAMILIES:
            raise CLIError(f"ktplus: --augment {augment} needs a model that sees images, but --family {family} "
                           "flattens them: use --family conv, residual or auto, or --augment none")
        kwargs.update(augment_ranges(int(images[0]), int(images[1])))
    if class_weight != "none":
        if data.task != "classification":
            raise CLIError(f"ktplus: --class-weight {class_weight} is for classification; {data.name!r} is a "
                           "regression search (a numeric target): use --class-weight none")
        kwargs["class_weight"] = TUNED_CLASS_WEIGHTS if class_weight == "tune" else class_weight
    return kwargs


def prep_text(prep: dict[str, Any]) -> str:
    """The data preparation of `prep_options`, for the search's heading
    (empty for none).

    >>> prep_text({"normalization": "standardize", "class_weight": [None, "balanced"]})
    'inputs standardized in the model, class weights tuned'
    """
    words = {"standardize": "inputs standardized in the model", "minmax": "inputs min-max scaled in the model"}
    norm, weight = prep.get("normalization"), prep.get("class_weight")
    parts = [words[norm] if isinstance(norm, str) else "normalization tuned" if norm else "",
             "image augmentation tuned" if "augment_flip" in prep else "",
             "balanced class weights" if weight == "balanced" else "class weights tuned" if weight else ""]
    return ", ".join(p for p in parts if p)


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
