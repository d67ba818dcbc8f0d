"""Classification metrics that accept integer labels with any output head.

Keras' ``AUC``, ``Precision``, ``Recall`` and ``F1Score`` expect labels with
the prediction's shape. ktplus heads predict one probability per class while
users (and scikit-learn datasets) give integer labels, so the string names
``"auc"``, ``"precision"``, ``"recall"`` and ``"f1"`` resolve to these
adapters: with two classes they score the positive class, with more they
one-hot the labels (micro average for AUC, precision and recall; macro F1).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def _dense_labels(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    n = y_pred.shape[-1]
    if n is None or n == 1:
        return ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred)), y_pred
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == n:
        one_hot = ops.cast(y_true, y_pred.dtype)
    else:
        one_hot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), n)
        one_hot = ops.cast(one_hot, y_pred.dtype)
    if n == 2:
        return one_hot[:, 1:], y_pred[:, 1:]
    return one_hot, y_pred


@keras.saving.register_keras_serializable(package="ktplus")
class SparseAUC(keras.metrics.AUC):
    """``keras.metrics.AUC`` that accepts integer class labels."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true, y_pred = _dense_labels(y_true, y_pred)
        super().update_state(y_true, y_pred, sample_weight)


@keras.saving.register_keras_serializable(package="ktplus")
class SparsePrecision(keras.metrics.Precision):
    """``keras.metrics.Precision`` that accepts integer class labels."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true, y_pred = _dense_labels(y_true, y_pred)
        super().update_state(y_true, y_pred, sample_weight)


@keras.saving.register_keras_serializable(package="ktplus")
class SparseRecall(keras.metrics.Recall):
    """``keras.metrics.Recall`` that accepts integer class labels."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true, y_pred = _dense_labels(y_true, y_pred)
        super().update_state(y_true, y_pred, sample_weight)


@keras.saving.register_keras_serializable(package="ktplus")
class SparseF1Score(keras.metrics.F1Score):
    """``keras.metrics.F1Score`` (macro average) that accepts integer labels."""

    def __init__(self, average: str | None = "macro", threshold: float | None = 0.5,
                 name: str = "f1", dtype: Any = None) -> None:
        super().__init__(average=average, threshold=threshold, name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true, y_pred = _dense_labels(y_true, y_pred)
        if y_pred.shape[-1] not in (None, 1):
            # Multi-class: the predicted class is the arg-max.
            y_pred = ops.one_hot(ops.argmax(y_pred, axis=-1), y_pred.shape[-1])
        super().update_state(y_true, y_pred, sample_weight)


_BY_NAME = {
    "auc": lambda: SparseAUC(name="auc"),
    "precision": lambda: SparsePrecision(name="precision"),
    "recall": lambda: SparseRecall(name="recall"),
    "f1": lambda: SparseF1Score(name="f1"),
    "f1_score": lambda: SparseF1Score(name="f1_score"),
}

#: Strings Keras resolves itself at compile time.
_KERAS_SPECIAL = {"accuracy", "acc", "crossentropy", "ce"}


def check_metric(arg: str, spec: Any) -> None:
    """Raises ValueError if ``spec`` is not a usable metric."""
    from ktplus.hypermodels._knobs import invalid

    expected = (
        "a metric name (e.g. 'accuracy', 'auc', 'precision', 'recall', 'f1', "
        "'mae'), a keras.metrics.Metric instance or a metric function"
    )
    if isinstance(spec, str):
        if spec.lower() in _BY_NAME or spec in _KERAS_SPECIAL:
            return
        try:
            keras.metrics.get(spec)
        except (ValueError, TypeError):
            raise invalid(arg, spec, expected) from None
        return
    if isinstance(spec, keras.metrics.Metric) or callable(spec):
        return
    raise invalid(arg, spec, expected)


def make_metric(spec: Any, classification: bool) -> Any:
    """A fresh metric for one model (metric objects are never shared)."""
    if isinstance(spec, str):
        if classification and spec.lower() in _BY_NAME:
            return _BY_NAME[spec.lower()]()
        return spec
    if isinstance(spec, keras.metrics.Metric):
        return keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(spec)
        )
    return spec
