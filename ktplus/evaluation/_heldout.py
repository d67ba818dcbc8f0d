"""Held-out evaluation: the best models of a search scored on data they
never saw, with scikit-learn's metrics.

`evaluate_trials` (``tuner.evaluate(x, y)``) checks every input before it
predicts or writes anything, scores each model, records the results under
each trial in TensorBoard (``_tb.py``) and saves them to
``<project_dir>/ktplus_evaluation.json``, which `load_evaluation` reads back
and `format_evaluation` prints.

Module-level imports stay light (stdlib and numpy): ``ktplus.evaluation`` is
imported by the tuners' option parsing. scikit-learn, pandas, Keras and
TensorBoard are imported where they are used.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ktplus._errors import invalid

#: The evaluation record, in the tuner's project directory.
EVALUATION_FILE = "ktplus_evaluation.json"
CLASSIFICATION = "classification"
REGRESSION = "regression"
#: The metrics of each task, in the order of the DataFrame's columns.
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
                          "f1_weighted", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")
METRICS = {CLASSIFICATION: CLASSIFICATION_METRICS, REGRESSION: REGRESSION_METRICS}
#: A compiled loss whose name contains one of these makes the model a classifier.
_CLASSIFICATION_LOSSES = ("crossentropy", "hinge")
#: The rows of classification_report's dict that are not classes.
_SUMMARY_ROWS = ("accuracy", "micro avg", "macro avg", "weighted avg")


# -- the inputs -------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    """Checked held-out data: ``x`` as the model takes it, its arrays (with
    their dict keys, if any) and ``y`` as an array."""

    x: Any
    arrays: list[tuple[str | None, np.ndarray]]
    y: np.ndarray

    @property
    def n(self) -> int:
        return len(self.y)


def _describe_array(a: np.ndarray) -> str:
    return f"<array of shape {a.shape}>"


def _as_array(name: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError:  # a ragged list
        arr = np.asarray(None)
    if arr.ndim == 0:
        more = ", or a list or dict of arrays for a model with several inputs" if name == "x" else ""
        raise invalid(name, f"<{type(value).__name__}>",
                      f"an array-like of samples (a numpy array, a list or a pandas object{more})")
    return arr


def _check_data(x: Any, y: Any) -> _Data:
    """x and y: array-like, not empty, as many samples each."""
    if isinstance(x, dict):
        arrays: list[tuple[str | None, np.ndarray]] = [(str(k), _as_array("x", v)) for k, v in x.items()]
        model_x: Any = {k: a for k, a in arrays}
    elif isinstance(x, (list, tuple)) and x and all(hasattr(v, "shape") for v in x):
        arrays = [(None, _as_array("x", v)) for v in x]
        model_x = [a for _, a in arrays]
    else:
        arrays = [(None, _as_array("x", x))]
        model_x = arrays[0][1]
    if not arrays:
        raise invalid("x", x, "an array-like of samples, not an empty dict or list")
    y_arr = _as_array("y", y)
    n = len(arrays[0][1])
    if n == 0:
        raise invalid("x", _describe_array(arrays[0][1]), "at least one sample to evaluate on")
    for key, a in arrays[1:]:
        if len(a) != n:
            raise invalid("x", f"<arrays of {n} and {len(a)} samples>",
                          "the same number of samples in every input" + (f" (input {key!r})" if key else ""))
    if len(y_arr) != n:
        raise invalid("y", _describe_array(y_arr),
                      f"as many samples as x: {n} (x has {n} samples, y has {len(y_arr)})")
    return _Data(model_x, arrays, y_arr)


def _check_sample_shape(data: _Data, expected: list[tuple[str | None, tuple[Any, ...]]], source: str) -> None:
    """Each input's per-sample shape against ``expected`` (None: any size)."""
    if len(expected) != len(data.arrays):
        raise invalid("x", f"<{len(data.arrays)} input array(s)>",
                      f"{len(expected)} input array(s), as {source} takes")
    by_name = {name: shape for name, shape in expected if name is not None}
    for i, (key, arr) in enumerate(data.arrays):
        name, shape = expected[i]
        if key is not None and key in by_name:
            name, shape = key, by_name[key]
        got = tuple(arr.shape[1:])
        if len(got) != len(shape) or any(e is not None and e != g for e, g in zip(shape, got)):
            where = f" for input {name!r}" if len(expected) > 1 and name else ""
            wanted = ", ".join("n" if d is None else str(d) for d in (None, *shape))
            raise invalid("x", _describe_array(arr),
                          f"samples of shape {tuple(shape)}{where} ({source}'s input shape without the "
                          f"batch dimension), i.e. an array of shape ({wanted})")


def model_input_shapes(model: Any) -> list[tuple[str | None, tuple[Any, ...]]] | None:
    """The model's inputs as (name, per-sample shape), or None if unknown."""
    try:
        inputs = list(model.inputs or [])
    except (AttributeError, ValueError):  # a subclassed model has no symbolic inputs
        return None
    if not inputs:
        return None
    return [(getattr(t, "name", None), tuple(t.shape[1:])) for t in inputs]


# -- the model's task -------------------------------------------------------


@dataclass(frozen=True)
class _Head:
    """What the model's output is: its task, its width (None: unknown
    before predicting), and whether it gives logits or hinge scores rather
    than probabilities."""

    task: str
    width: int | None
    from_logits: bool = False
    hinge: bool = False

    @property
    def num_classes(self) -> int | None:
        if self.width is None:
            return None
        return 2 if self.width == 1 else self.width


def _loss_of(model: Any) -> Any:
    loss = getattr(model, "loss", None)
    if isinstance(loss, dict) and len(loss) == 1:
        loss = next(iter(loss.values()))
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    return loss


def _head_of(model: Any) -> _Head:
    """Classification when the compiled loss is a crossentropy or hinge
    loss (by its name or class), regression otherwise."""
    try:
        outputs = list(model.outputs or [])
    except (AttributeError, ValueError):  # a subclassed model: the width is known after predicting
        outputs = []
    if len(outputs) > 1:
        raise ValueError(f"evaluate(): the model has {len(outputs)} outputs; held-out evaluation scores "
                         "single-output models only")
    shape = tuple(outputs[0].shape) if outputs else ()
    width = (shape[-1] if len(shape) > 1 else 1) if shape else None
    loss = _loss_of(model)
    if isinstance(loss, str):
        name = loss.lower()
    else:
        name = " ".join(str(n) for n in (getattr(loss, "name", None), getattr(loss, "__name__", None),
                                         type(loss).__name__) if n).lower()
    if not any(k in name for k in _CLASSIFICATION_LOSSES):
        return _Head(REGRESSION, width)
    from_logits = bool(getattr(loss, "from_logits", False))
    if not from_logits and callable(getattr(loss, "get_config", None)):
        try:
            from_logits = bool(loss.get_config().get("from_logits", False))
        except Exception:  # a custom loss without a usable config
            from_logits = False
    return _Head(CLASSIFICATION, width, from_logits=from_logits, hinge="hinge" in name)


def _class_targets(y: np.ndarray, head: _Head, num_classes: int) -> np.ndarray:
    """Integer labels in ``range(num_classes)`` from labels of shape (n,) or
    (n, 1), or from one-hot rows."""
    n = len(y)
    expected = (f"integer class labels in 0..{num_classes - 1} (shape (n,) or (n, 1)) or one-hot rows of "
                f"width {num_classes}, the model's number of classes")
    if y.ndim == 2 and y.shape[1] > 1:
        if y.shape[1] != num_classes or y.dtype.kind not in "biuf":
            raise invalid("y", _describe_array(y), expected)
        return np.asarray(np.argmax(y, axis=1))
    if y.size != n or y.dtype.kind not in "biuf":
        raise invalid("y", _describe_array(y), expected)
    labels = y.reshape(n)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise invalid("y", _describe_array(y), expected)
    labels = labels.astype(np.int64)
    if head.hinge and num_classes == 2:
        labels = np.where(labels == -1, 0, labels)  # hinge losses take labels -1 and 1
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if len(bad):
        raise invalid("y", f"<labels including {int(bad[0])}>", expected)
    return labels


def _regression_targets(y: np.ndarray, width: int) -> np.ndarray:
    n = len(y)
    if y.dtype.kind not in "biuf" or y.size != n * width:
        raise invalid("y", _describe_array(y),
                      f"numeric targets, {width} per sample (the model's outputs): shape (n,) or (n, {width})"
                      if width > 1 else "numeric targets, one per sample: shape (n,) or (n, 1)")
    return y.reshape(n, width).astype(np.float64)


def _check_targets(y: np.ndarray, head: _Head) -> None:
    """What can be checked of ``y`` before predicting (the output width may
    be known only after)."""
    if head.width is None:
        return
    if head.task == CLASSIFICATION:
        _class_targets(y, head, head.num_classes or 2)
    else:
        _regression_targets(y, head.width)


# -- the scores ---------------------------------------------------------------


@dataclass
class Scored:
    """One model's evaluation: its record (metrics, per-class table,
    confusion matrix) and what TensorBoard's PR curves are drawn from."""

    record: dict[str, Any]
    y_true: np.ndarray
    probabilities: np.ndarray | None = None


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values (for JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _probabilities(out: np.ndarray, head: _Head) -> np.ndarray:
    """Class probabilities (n, k) from the model's output: a softmax as it
    is, logits (or hinge scores) through softmax, one sigmoid unit as
    ``[1 - p, p]``."""
    from scipy.special import expit, softmax

    out = out.reshape(len(out), -1).astype(np.float64)
    scores = head.from_logits or head.hinge
    if out.shape[1] == 1:
        p = expit(out[:, 0]) if scores else out[:, 0]
        probs = np.column_stack([1.0 - p, p])
    else:
        probs = softmax(out, axis=1) if scores else out
    # float32 outputs (or independent sigmoids) need not sum to exactly one,
    # which scikit-learn's log_loss and one-vs-rest ROC AUC require.
    return np.asarray(probs / probs.sum(axis=1, keepdims=True))


def _classification_scores(out: np.ndarray, y: np.ndarray, head: _Head) -> Scored:
    from sklearn import metrics as skm

    width = int(np.prod(out.shape[1:])) if out.ndim > 1 else 1
    num_classes = 2 if width == 1 else width
    y_true = _class_targets(y, head, num_classes)
    probs = _probabilities(out, head)
    y_pred = np.argmax(probs, axis=1)
    labels = list(range(num_classes))
    with warnings.catch_warnings():  # classes absent from y: scikit-learn warns, the values are defined
        warnings.simplefilter("ignore")
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average="macro", zero_division=0)
        values = {
            "accuracy": skm.accuracy_score(y_true, y_pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
            "precision_macro": precision,
            "recall_macro": recall,
            "f1_macro": f1,
            "f1_weighted": skm.f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0),
            "roc_auc": _roc_auc(y_true, probs, labels),
            # hinge scores are no probabilities: their log loss means nothing
            "log_loss": math.nan if head.hinge else skm.log_loss(y_true, probs, labels=labels),
        }
        report = skm.classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
        matrix = skm.confusion_matrix(y_true, y_pred, labels=labels)
    record = {
        "task": CLASSIFICATION,
        "metrics": {k: float(values[k]) for k in CLASSIFICATION_METRICS},
        "per_class": _plain(report),
        "labels": labels,
        "confusion_matrix": _plain(matrix),
    }
    return Scored(record, y_true, probs)


def _roc_auc(y_true: np.ndarray, probs: np.ndarray, labels: list[int]) -> float:
    """ROC AUC (one-vs-rest when multi-class), NaN where it is undefined
    (a class missing from ``y``)."""
    from sklearn.metrics import roc_auc_score

    try:
        if len(labels) == 2:
            return float(roc_auc_score(y_true, probs[:, 1]))
        return float(roc_auc_score(y_true, probs, multi_class="ovr", labels=labels))
    except ValueError:
        return math.nan


def _regression_scores(out: np.ndarray, y: np.ndarray) -> Scored:
    from sklearn import metrics as skm

    n = len(out)
    pred = out.reshape(n, -1).astype(np.float64)
    y_true = _regression_targets(y, pred.shape[1])
    if pred.shape[1] == 1:
        pred, y_true = pred[:, 0], y_true[:, 0]
    with warnings.catch_warnings():  # r2 of one sample: NaN with a warning
        warnings.simplefilter("ignore")
        values = {
            "mae": skm.mean_absolute_error(y_true, pred),
            "rmse": skm.root_mean_squared_error(y_true, pred),
            "r2": skm.r2_score(y_true, pred),
        }
    return Scored({"task": REGRESSION, "metrics": {k: float(values[k]) for k in REGRESSION_METRICS}}, y_true)


def _score(model: Any, data: _Data, head: _Head) -> Scored:
    out = np.asarray(model.predict(data.x, verbose=0))
    if out.shape[:1] != (data.n,):
        raise ValueError(f"evaluate(): the model returned {out.shape[0] if out.ndim else 0} predictions "
                         f"for {data.n} samples")
    if head.task == CLASSIFICATION:
        return _classification_scores(out, data.y, head)
    return _regression_scores(out, data.y)


def _check_model(model: Any, data: _Data, source: str = "the model") -> _Head:
    shapes = model_input_shapes(model)
    if shapes is not None:
        _check_sample_shape(data, shapes, source)
    head = _head_of(model)
    _check_targets(data.y, head)
    return head


def evaluate_model(model: Any, x: Any, y: Any) -> dict[str, Any]:
    """Scores one compiled Keras model on held-out data.

    The task is read from the compiled loss: a crossentropy or hinge loss
    makes it a classifier (its classes are ``range(n_outputs)``, or 0 and
    1 for one sigmoid unit), any other loss a regressor.

    Args:
        model: A compiled `keras.Model` with one output.
        x: Held-out features, as the model takes them.
        y: Held-out targets: integer class labels (shape ``(n,)`` or
            ``(n, 1)``), one-hot rows, or numbers for regression.

    Returns:
        A dict: ``task`` ("classification" or "regression"), ``metrics``
        (name -> value; NaN where undefined) and, for classification,
        ``per_class`` (scikit-learn's ``classification_report`` dict),
        ``labels`` and ``confusion_matrix`` (rows: true class).

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    >>> model.compile(loss="sparse_categorical_crossentropy")
    >>> x = np.random.default_rng(0).normal(size=(12, 2))
    >>> record = evaluate_model(model, x, np.arange(12) % 3)
    >>> record["task"], sorted(record["metrics"])[:2]
    ('classification', ['accuracy', 'balanced_accuracy'])
    """
    data = _check_data(x, y)
    head = _check_model(model, data)
    return _score(model, data, head).record


# -- the search's best models ------------------------------------------------


def best_trials(tuner: Any, num_models: int, what: str = "evaluate") -> list[Any]:
    """The best completed trials with a score, best first (at most
    ``num_models``, in ktplus's one ranking: `ktplus._ranking`); a clear
    error naming ``what()`` when there is none."""
    from ktplus._ranking import best_trials as ranked_trials

    trials = ranked_trials(tuner.oracle, num_models)
    if not trials:
        raise ValueError(f"{what}(): no trial has completed with a score yet, so there is no model to "
                         f"{what}. Run `tuner.search(...)` first (or reload a finished search with "
                         "overwrite=False).")
    return trials


# -- the saved record ---------------------------------------------------------


def _json_ready(value: Any) -> Any:
    """NaN and infinities as null: the file stays strict JSON."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def load_evaluation(project_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The last held-out evaluation saved in a tuner's project directory.

    Args:
        project_dir: The tuner's ``project_dir``
            (``<directory>/<project_name>``).

    Returns:
        None when the search was never evaluated, else a dict: ``task``,
        ``n_samples`` and ``models``, a list (best first) of dicts with
        ``trial_id``, ``metrics`` (an undefined value is NaN) and, for
        classification, ``per_class`` (scikit-learn's
        ``classification_report`` dict), ``labels`` and
        ``confusion_matrix`` (rows: true class, columns: predicted).

    Example:

    >>> import tempfile
    >>> load_evaluation(tempfile.mkdtemp()) is None
    True
    """
    path = os.path.join(os.fspath(project_dir), EVALUATION_FILE)
    try:
        with open(path) as f:
            record: dict[str, Any] = json.load(f)
    except FileNotFoundError:
        return None
    for model in record.get("models", []):
        model["metrics"] = {k: math.nan if v is None else v for k, v in model.get("metrics", {}).items()}
    return record


def evaluation_frame(record: dict[str, Any]) -> Any:
    """A saved evaluation's metrics as a DataFrame, one row per model.

    Args:
        record: What `evaluate_trials` saved (see `load_evaluation`).

    Returns:
        A pandas DataFrame with ``trial_id`` and the task's metrics.
    """
    import pandas as pd

    columns = ["trial_id", *METRICS.get(record.get("task", ""), ())]
    rows = [{"trial_id": m["trial_id"],
             **{k: math.nan if v is None else v for k, v in m.get("metrics", {}).items()}}
            for m in record.get("models", [])]
    frame = pd.DataFrame(rows)
    for name in columns:
        if name not in frame:
            frame[name] = math.nan
    return frame[columns + [c for c in frame.columns if c not in columns]]


# -- the printed report ---------------------------------------------------------


def class_names_of(model_record: dict[str, Any], class_names: Sequence[Any] | None = None) -> list[str]:
    """The display names of a classification record's classes."""
    labels = list(model_record.get("labels", []))
    if class_names is None:
        return [str(label) for label in labels]
    names = list(class_names)
    if len(names) != len(labels):
        raise invalid("class_names", class_names,
                      f"one name per class: {len(labels)} names for the labels {labels}")
    return [str(n) for n in names]


def report_rows(model_record: dict[str, Any], class_names: Sequence[Any] | None = None
                ) -> list[tuple[str, float | None, float | None, float | None, int | None]]:
    """The rows of a per-class table: (name, precision, recall, f1-score,
    support) for each class, then accuracy and the averages, as
    scikit-learn's ``classification_report`` prints them."""
    report = model_record.get("per_class") or {}
    names = class_names_of(model_record, class_names)
    rows: list[tuple[str, float | None, float | None, float | None, int | None]] = []

    def row(name: str, entry: Any) -> None:
        if isinstance(entry, dict):
            support = entry.get("support")
            rows.append((name, entry.get("precision"), entry.get("recall"), entry.get("f1-score"),
                         None if support is None else int(support)))
        elif entry is not None:  # "accuracy" is a bare number
            total = sum(int(v.get("support", 0)) for k, v in report.items()
                        if isinstance(v, dict) and k not in _SUMMARY_ROWS)
            rows.append((name, None, None, float(entry), total))

    for label, name in zip(model_record.get("labels", []), names):
        row(name, report.get(str(label)))
    for key in _SUMMARY_ROWS:
        if key in report:
            row(key, report[key])
    return rows


def _num(v: float | None, width: int = 9) -> str:
    if v is None:
        return " " * width
    return f"{v:{width}.4f}" if math.isfinite(v) else f"{'nan':>{width}}"


def format_evaluation(record: dict[str, Any], class_names: Sequence[Any] | None = None) -> str:
    """A saved evaluation as printable text.

    Args:
        record: What `evaluate_trials` saved (see `load_evaluation`).
        class_names: Optional display names of the classes, in label order
            (classification only).

    Returns:
        The metrics of each model (one column per model, best first) and,
        for classification, each model's per-class precision, recall,
        F1-score and support and its confusion matrix.

    Example:

    >>> print(format_evaluation({"task": "regression", "n_samples": 3,
    ...     "models": [{"trial_id": "07", "metrics": {"mae": 0.5, "rmse": 0.7, "r2": 0.25}}]}))
    Held-out evaluation: regression, 3 samples, best model first
    <BLANKLINE>
    metric      trial 07
    mae           0.5000
    rmse          0.7000
    r2            0.2500
    """
    task = record.get("task", "")
    models = record.get("models", [])
    lines = [f"Held-out evaluation: {task}, {record.get('n_samples', '?')} samples, best model first", ""]
    names = list(METRICS.get(task, ()))
    for m in models:
        names += [k for k in m.get("metrics", {}) if k not in names]
    heads = [f"trial {m['trial_id']}" for m in models]
    widths = [max(9, len(h)) for h in heads]
    first = max([len("metric"), *map(len, names)]) + 2
    lines.append("metric".ljust(first) + "  ".join(h.rjust(w) for h, w in zip(heads, widths)))
    for name in names:
        cells = []
        for m, w in zip(models, widths):
            v = m.get("metrics", {}).get(name)
            cells.append("nan".rjust(w) if v is None else _num(float(v), w))
        lines.append(name.ljust(first) + "  ".join(cells))
    if task != CLASSIFICATION:
        return "\n".join(lines)
    for m in models:
        labels = class_names_of(m, class_names)
        rows = report_rows(m, class_names)
        first = max([12, *(len(r[0]) for r in rows)]) + 2
        lines += ["", f"Trial {m['trial_id']}: per class", "".ljust(first) + "precision     recall   f1-score    support"]
        for name, precision, recall, f1, support in rows:
            lines.append(name.rjust(first - 2).ljust(first) + _num(precision) + "  " + _num(recall) + "  "
                         + _num(f1) + "  " + ("" if support is None else f"{support:9d}"))
        matrix = m.get("confusion_matrix") or []
        cell = max([5, *(len(n) for n in labels), *(len(str(v)) for r in matrix for v in r)])
        left = max(len(n) for n in labels) + 2 if labels else 2
        lines += ["", f"Trial {m['trial_id']}: confusion matrix (rows: true class, columns: predicted)",
                  " " * left + " ".join(n.rjust(cell) for n in labels)]
        for name, counts in zip(labels, matrix):
            lines.append(name.rjust(left - 2).ljust(left) + " ".join(str(v).rjust(cell) for v in counts))
    return "\n".join(lines)
