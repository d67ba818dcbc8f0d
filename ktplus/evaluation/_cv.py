"""Cross-validation for ktplus tuners: ``cv=`` and the folds of a search.

``cv`` is None, an int ``k >= 2`` (stratified k-fold for a classifier,
k-fold otherwise, as scikit-learn's ``check_cv(k, y, classifier=...)``
decides, shuffled with the tuner's seed) or any
scikit-learn splitter (an object with ``split(X, y, groups)`` and
``get_n_splits``). The folds are computed once per ``search()`` call, so
every trial trains on the same arrays (and the fast path's data cache builds
each fold's pipeline once).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ktplus._errors import invalid
from ktplus._seed import generator_seed

_EXPECTED = ("None, an integer k >= 2 (k-fold, stratified for classification), or a scikit-learn "
             "splitter such as KFold(5), StratifiedKFold(5), GroupKFold(5) or "
             "RepeatedStratifiedKFold() (an object with split(X, y, groups) and get_n_splits)")


def parse_cv(value: Any) -> Any:
    """Validates ``cv=``: None, an int >= 2 or a scikit-learn splitter.

    >>> parse_cv(3), parse_cv(None)
    (3, None)
    >>> parse_cv(1)
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for argument `cv`: expected None, an integer k >= 2 ...
    """
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 2:
            raise invalid("cv", value, _EXPECTED)
        return int(value)
    if not isinstance(value, type) and callable(getattr(value, "split", None)) and callable(
            getattr(value, "get_n_splits", None)):
        return value
    raise invalid("cv", value, _EXPECTED)


def _is_class_labels(y: np.ndarray) -> bool:
    labels = y.reshape(len(y), -1)
    if labels.shape[1] != 1:
        return False
    if labels.dtype.kind in "biu" or labels.dtype.kind in "OUS":
        return True
    return False


def _single_column(y: np.ndarray | None) -> np.ndarray | None:
    """``y`` as one column of targets, flattened (None if it has several)."""
    if y is None:
        return None
    y = y.reshape(len(y), -1)
    return y[:, 0] if y.shape[1] == 1 else None


def is_classifier(hypermodel: Any) -> bool | None:
    """Whether ``hypermodel`` classifies: a ktplus hypermodel's ``task``;
    None for any other hypermodel (its task is unknown before it is built).

    >>> import ktplus
    >>> is_classifier(ktplus.DenseHyperModel((3,), task="regression"))
    False
    """
    from ktplus.hypermodels._base import BaseHyperModel

    if isinstance(hypermodel, BaseHyperModel):
        return bool(hypermodel.task == "classification")
    return None


def _length(a: Any) -> int | None:
    try:
        return len(a)
    except TypeError:
        return None


@dataclass
class Fold:
    """One fold: its index and the sample indices of its two parts."""

    index: int
    train: np.ndarray
    test: np.ndarray


def make_splitter(cv: Any, y: np.ndarray | None, seed: int | None, groups: Any = None,
                  classifier: bool | None = None) -> Any:
    """The scikit-learn splitter for a parsed ``cv``: with an int, k-fold,
    stratified as ``sklearn.model_selection.check_cv(cv, y, classifier=...)``
    decides (for a classifier with binary or multiclass targets), shuffled
    with ``seed``, and grouped when ``groups`` are given (a group never on
    both sides of a fold).

    Args:
        classifier: Whether the hypermodel classifies (its task); None when
            unknown, then integer or string targets are taken for class
            labels and anything else for numbers.
    """
    if not isinstance(cv, int):
        return cv
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold, check_cv

    if classifier is None:
        classifier = y is not None and _is_class_labels(np.asarray(y))
    column = None if y is None else _single_column(np.asarray(y))
    labels = column is not None and isinstance(check_cv(cv, column, classifier=classifier), StratifiedKFold)
    if groups is not None:
        return (StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=seed) if labels
                else GroupKFold(n_splits=cv))
    if labels:
        return StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    return KFold(n_splits=cv, shuffle=True, random_state=seed)


def make_folds(cv: Any, x: Any, y: Any, groups: Any, seed: int | None,
               classifier: bool | None = None) -> list[Fold]:
    """Splits the samples of ``x``/``y`` into folds.

    Args:
        classifier: Whether the hypermodel classifies (see `make_splitter`).

    Raises:
        ValueError: naming what was wrong (too few samples of a class for
            ``k`` stratified folds, ``groups`` of the wrong length, a
            splitter that fails).
    """
    n = sample_count(x)
    if isinstance(y, dict) or (isinstance(y, (list, tuple)) and y and hasattr(y[0], "shape")):
        y = next(iter(y.values())) if isinstance(y, dict) else y[0]  # several outputs: split on the first
    y_arr = None if y is None else np.asarray(y)
    if groups is not None:
        g = np.asarray(groups)
        if len(g) != n:
            raise invalid("groups", f"<{len(g)} values>",
                          f"one group label per sample: {n} values, as many as x has samples")
    splitter = make_splitter(cv, y_arr, generator_seed(seed), groups, classifier)
    k = cv if isinstance(cv, int) else getattr(splitter, "n_splits", None)
    k = k if isinstance(k, int) else (getattr(splitter, "cvargs", None) or {}).get("n_splits")
    if isinstance(cv, int) and cv > n:
        raise invalid("cv", cv, f"at most the number of samples ({n})")
    stratified = "Stratified" in type(splitter).__name__
    column = _single_column(y_arr)
    if isinstance(k, int) and stratified and column is not None and _stratifiable(column):
        _, counts = np.unique(column, return_counts=True)
        if counts.min() < k:
            raise invalid("cv", cv, f"at most {int(counts.min())} folds, the number of samples of the "
                          "rarest class (stratified k-fold needs every class in every fold); use fewer "
                          "folds or a KFold splitter")
    placeholder = np.zeros((n, 1))
    try:
        parts = list(splitter.split(placeholder, None if y_arr is None else y_arr.reshape(n, -1)[:, 0]
                                    if y_arr.ndim > 1 and y_arr.shape[1] == 1 else y_arr, groups))
    except (ValueError, TypeError) as e:
        raise ValueError(f"search(): the cv splitter {cv!r} could not split the data: "
                         f"{str(e).splitlines()[0]}") from None
    if not parts:
        raise ValueError(f"search(): the cv splitter {cv!r} gave no folds")
    return [Fold(i, np.asarray(train), np.asarray(test)) for i, (train, test) in enumerate(parts)]


def _stratifiable(y: np.ndarray) -> bool:
    """Whether stratified folds take ``y`` for class labels (scikit-learn's
    ``type_of_target`` says binary or multiclass)."""
    from sklearn.utils.multiclass import type_of_target

    try:
        return type_of_target(y) in ("binary", "multiclass")
    except ValueError:
        return False


def sample_count(x: Any) -> int:
    """The number of samples of ``x`` (an array, a list of arrays or a dict
    of arrays)."""
    if isinstance(x, dict):
        x = next(iter(x.values()))
    elif isinstance(x, (list, tuple)) and x and _length(x[0]) is not None and hasattr(x[0], "shape"):
        x = x[0]
    n = _length(x)
    if n is None:
        raise ValueError("search(): with `cv`, x must be array-like (a numpy array, a list or dict of "
                         f"arrays, or a pandas DataFrame), got {type(x).__name__}")
    return n


def take(a: Any, index: np.ndarray) -> Any:
    """The rows ``index`` of ``a`` (an array, DataFrame, list or dict of them)."""
    if a is None:
        return None
    if isinstance(a, dict):
        return {k: take(v, index) for k, v in a.items()}
    if isinstance(a, (list, tuple)) and a and hasattr(a[0], "shape"):
        return type(a)(take(v, index) for v in a)
    if hasattr(a, "iloc"):
        return a.iloc[index]
    return np.asarray(a)[index]


_DATA_KWARGS = ("x", "y", "sample_weight", "validation_data", "validation_split")


class CrossValidation:
    """The folds of one ``search()`` call, their arrays taken once.

    Args:
        cv: The parsed ``cv`` (an int or a scikit-learn splitter).
        args: ``search()``'s positional arguments (``x``, ``y``).
        kwargs: ``search()``'s keyword arguments (``groups`` removed).
        groups: Group labels for the splitter, or None.
        seed: The tuner's seed (shuffles the int form's folds).
        classifier: Whether the hypermodel classifies (``is_classifier``):
            the int form is stratified only for a classifier; None (a
            hypermodel of unknown task) takes integer or string targets for
            class labels.

    Raises:
        ValueError: for validation data given with ``cv``, data that
            cannot be split, or folds the data cannot fill.
    """

    def __init__(self, cv: Any, args: tuple, kwargs: dict, groups: Any, seed: int | None,
                 classifier: bool | None = None) -> None:
        for name in ("validation_data", "validation_split"):
            if kwargs.get(name) is not None and kwargs.get(name) != 0:
                raise ValueError(f"search(): `{name}` cannot be used together with `cv`: with cross-"
                                 "validation each fold's held-out part is its validation data; drop "
                                 f"`{name}` or set cv=None.")
        x = args[0] if args else kwargs.get("x")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        if x is None or y is None or hasattr(x, "element_spec") or hasattr(y, "element_spec"):
            raise ValueError("search(): `cv` needs the data as arrays: pass search(x, y, ...) with numpy "
                             "arrays (or pandas objects), not a tf.data.Dataset or a generator, so the "
                             "samples can be split into folds.")
        n = sample_count(x)
        if sample_count(y) != n:
            raise ValueError(f"search(): `x` has {n} samples but `y` has {sample_count(y)}; they must have "
                             "one entry per sample.")
        self.folds = make_folds(cv, x, y, groups, seed, classifier)
        sw = kwargs.get("sample_weight")
        self.parts: list[tuple[tuple, dict]] = []
        for fold in self.folds:
            tr, te = fold.train, fold.test
            val = (take(x, te), take(y, te)) if sw is None else (take(x, te), take(y, te), take(sw, te))
            fold_kwargs: dict[str, Any] = {"validation_data": val}
            if sw is not None:
                fold_kwargs["sample_weight"] = take(sw, tr)
            self.parts.append(((take(x, tr), take(y, tr)), fold_kwargs))

    def fold_inputs(self, index: int, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """``fit``'s arguments for fold ``index``: the fold's data in place
        of the search's, every other argument as given."""
        fold_args, fold_kwargs = self.parts[index]
        rest = {k: v for k, v in kwargs.items() if k not in _DATA_KWARGS}
        return fold_args + tuple(args[2:]), {**rest, **fold_kwargs}
