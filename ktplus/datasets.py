"""Demo datasets bundled with scikit-learn (no download needed).

>>> from ktplus import datasets
>>> data = datasets.load("digits")
>>> data.x.shape, data.num_classes, data.image_shape
((1797, 64), 10, (8, 8, 1))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ktplus._errors import invalid

BUILTIN = ("digits", "breast_cancer", "wine", "iris")


@dataclass
class Dataset:
    """Features ``x`` (float32), targets ``y`` and their description.

    ``image_shape`` is set for image data (digits: ``(8, 8, 1)``) so conv and
    residual models can view each row of ``x`` as an image. For
    classification ``y`` holds integer labels ``0..num_classes-1`` (the
    original labels in ``class_names``); for regression ``num_classes`` is
    None and ``y`` is float32.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    num_classes: int | None
    image_shape: tuple[int, ...] | None = None
    class_names: list[Any] | None = None

    @property
    def task(self) -> str:
        return "regression" if self.num_classes is None else "classification"


class DataError(ValueError):
    """Data that cannot be used, with a one-line explanation."""


def non_finite(a: np.ndarray) -> tuple[int, int] | None:
    """``(count, first row)`` of NaN/inf values in a numeric array, or None."""
    if a.dtype.kind not in "fc":
        return None
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    return int(bad.sum()), int(np.argwhere(bad.reshape(len(a), -1).any(axis=1))[0][0])


def _check_finite(name: str, a: np.ndarray, path: str) -> None:
    found = non_finite(a)
    if found:
        raise DataError(f"{path}: {name} contains NaN or inf ({found[0]} values, first in row {found[1]}); "
                        "clean or impute the data first")


TASKS = ("classification", "regression")


def _check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise invalid("task", task, "'classification', 'regression' or None (infer it from the targets)")


def _targets(y: np.ndarray, path: str, task: str | None = None
             ) -> tuple[np.ndarray, int | None, list[Any] | None]:
    """Targets for ``task``: integer labels ``0..n-1`` (and the original
    labels) for classification, float32 values for regression.

    With ``task=None`` the task is inferred: text, boolean and integer
    targets with few distinct values are classes, other numbers are
    regression targets.
    """
    y = np.asarray(y).reshape(len(y), -1)
    if y.shape[1] != 1:
        raise DataError(f"{path}: y must have one value per row, got shape {y.shape}")
    y = y[:, 0]
    if task == "regression":
        if y.dtype.kind not in "iuf":
            raise DataError(f"{path}: --task regression needs numeric targets, but y holds "
                            f"{'booleans' if y.dtype.kind == 'b' else 'text or objects'} (dtype {y.dtype}); "
                            "use --task classification")
        _check_finite("y", y.astype("float64"), path)
        return y.astype("float32"), None, None
    if y.dtype.kind in "fc":
        _check_finite("y", y.astype("float64"), path)
        fractional = ~np.equal(np.mod(y, 1), 0)
        if task == "classification" and fractional.any():
            shown = ", ".join(f"{v:g}" for v in np.unique(y[fractional])[:5])
            raise DataError(f"{path}: --task classification needs class labels, but y has "
                            f"{int(fractional.sum())} non-integer values (e.g. {shown}); use --task "
                            "regression, or round the targets to labels")
        if task is None and (fractional.any() or len(np.unique(y)) > max(20, len(y) // 10)):
            return y.astype("float32"), None, None
    if y.dtype.kind == "O":
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in y):
            raise DataError(f"{path}: y contains missing values")
        y = y.astype(str)
    classes, labels = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{path}: y has a single class ({classes[0]!r}); nothing to classify")
    return labels.astype("int64"), len(classes), [c.item() if hasattr(c, "item") else c for c in classes]


def read_npz(path: str, names: tuple[str, ...]) -> list[np.ndarray]:
    """The arrays ``names`` of an ``.npz`` file; ``x`` must be numeric with
    one row per sample.

    Raises:
        DataError: for a missing array, an unreadable file or a bad ``x``.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in names if k not in f.files]
            if missing:
                raise DataError(f"{path}: no array {' or '.join(map(repr, missing))} "
                                f"(found: {', '.join(f.files) or 'none'})")
            arrays = [f[k] for k in names]
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: cannot read as .npz ({type(e).__name__}: {e})") from None
    x = arrays[0]
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: x must be numeric, got dtype {x.dtype}")
    if x.ndim < 2:
        raise DataError(f"{path}: x must have one row per sample (2 or more dimensions), got shape {x.shape}")
    return arrays


def read_csv(path: str) -> Any:
    """A CSV file as a pandas DataFrame (column names as strings).

    Raises:
        DataError: when pandas cannot read it.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except Exception as e:
        raise DataError(f"{path}: cannot read as CSV ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def numeric_features(features: Any, path: str) -> np.ndarray:
    """The feature columns of a DataFrame as a float64 array.

    Raises:
        DataError: naming the non-numeric columns.
    """
    import pandas as pd

    bad = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])
           or pd.api.types.is_bool_dtype(features[c])]
    if bad:
        raise DataError(f"{path}: non-numeric feature columns: {', '.join(bad[:10])} "
                        "(encode them as numbers, or drop them)")
    return np.asarray(features.to_numpy(dtype="float64"))


def load_file(path: str, target: str | None = None, *, task: str | None = None) -> Dataset:
    """Loads a user dataset: an ``.npz`` with arrays ``x`` and ``y``, or a
    ``.csv`` with numeric feature columns and a ``target`` column.

    Args:
        path: The ``.npz`` or ``.csv`` file.
        target: The column to predict, for a ``.csv``.
        task: "classification", "regression", or None to infer it: text,
            boolean and integer targets with few distinct values are
            classes, other numbers (prices, measurements) are regression
            targets. "regression" keeps integer targets such as counts or
            prices as numbers; "classification" refuses non-integer numbers.

    Raises:
        DataError: with a one-line message naming the problem.
        ValueError: for a ``task`` that is none of the above.
    """
    import os

    _check_task(task)

    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise DataError(f"{path}: not a readable file")
    name = os.path.splitext(os.path.basename(path))[0]
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        if target is not None:
            raise DataError(f"{path}: --target is for .csv files; an .npz holds arrays x and y")
        x, y = read_npz(path, ("x", "y"))
    elif ext == ".csv":
        if not target:
            raise DataError(f"{path}: a .csv needs --target COLUMN (the column to predict)")
        frame = read_csv(path)
        if target not in frame.columns:
            shown = ", ".join(map(str, list(frame.columns)[:20]))
            raise DataError(f"{path}: no column {target!r} for --target (columns: {shown})")
        features = frame.drop(columns=[target])
        if features.shape[1] == 0:
            raise DataError(f"{path}: no feature columns besides the target {target!r}")
        x = numeric_features(features, path)
        y = frame[target].to_numpy()
    else:
        raise DataError(f"{path}: unsupported file type {ext or '(none)'!r}: use .npz (arrays x, y) or .csv")
    if len(x) != len(y):
        raise DataError(f"{path}: x has {len(x)} rows but y has {len(y)}")
    if len(x) < 4:
        raise DataError(f"{path}: {len(x)} rows is too few to train and validate")
    _check_finite("x", x.astype("float64"), path)
    labels, num_classes, classes = _targets(y, path, task)
    return Dataset(name, x.astype("float32"), labels, num_classes, None, classes)


def load(name: str, *, task: str | None = None) -> Dataset:
    """Loads a bundled scikit-learn dataset by name.

    Args:
        name: One of "digits", "breast_cancer", "wine", "iris".
        task: None or "classification" (all four are classification
            datasets), or "regression" to predict the class numbers as
            float targets.

    Returns:
        A `Dataset`; digits pixels are scaled to [0, 1], the tabular sets are
        left unscaled (see `standardize`).
    """
    from sklearn import datasets as skd

    loaders: dict[str, Any] = {
        "digits": skd.load_digits,
        "breast_cancer": skd.load_breast_cancer,
        "wine": skd.load_wine,
        "iris": skd.load_iris,
    }
    if name not in loaders:
        raise invalid("data", name, f"one of {', '.join(map(repr, BUILTIN))}")
    _check_task(task)
    bunch = loaders[name]()
    x = np.asarray(bunch.data, dtype="float32")
    y = np.asarray(bunch.target, dtype="int64")
    image_shape = None
    if name == "digits":
        x = x / 16.0
        image_shape = (8, 8, 1)
    if task == "regression":
        return Dataset(name, x, y.astype("float32"), None, image_shape)
    return Dataset(name, x, y, int(y.max()) + 1, image_shape)


def split(
    x: np.ndarray, y: np.ndarray, *, fractions: tuple[float, ...] = (0.2,), seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffles and splits ``(x, y)``: the first part gets the rest.

    Args:
        x: Features.
        y: Targets.
        fractions: Fractions of the data for each later part, e.g. ``(0.2,)``
            for train/validation or ``(0.15, 0.15)`` for train/val/test.
        seed: Shuffle seed.

    Returns:
        A list of ``(x, y)`` pairs: the first part, then one per fraction.
    """
    n = len(x)
    order = np.random.default_rng(seed).permutation(n)
    sizes = [int(round(f * n)) for f in fractions]
    first = n - sum(sizes)
    bounds = np.cumsum([0, first, *sizes])
    return [(x[order[a:b]], y[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]


def feature_stats(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per feature (a constant feature's std is 1)."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0] = 1.0
    return mean, std


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scales features to zero mean and unit variance using ``train``'s stats."""
    mean, std = feature_stats(train)
    return [((a - mean) / std).astype("float32") for a in (train, *others)]
