"""The training data's statistics that data preparation needs, computed
once per training set.

A hypermodel's normalization layer takes the mean and variance (or the
minimum and maximum) of the training inputs, per channel (the last axis,
as ``keras.layers.Normalization(axis=-1)``); ``class_weight="balanced"``
takes the training labels (scikit-learn's ``compute_class_weight``); the
TensorBoard augmentation preview takes a few training samples. They are
computed in one pass over the data, in chunks (arrays, pandas objects, a
finite ``tf.data.Dataset`` of ``(x, y)`` batches or a
``keras.utils.PyDataset``), and kept per training set: a search hands the
same arrays (the same fold arrays with ``cv``) to every trial, so the
statistics are computed once per search (per fold), not per trial.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ktplus._compat import keras_training_split

#: Samples kept for the augmentation preview.
PREVIEW_SAMPLES = 4
#: Rows processed at a time (bounds the float64 temporaries).
CHUNK_ROWS = 16384
#: Training sets whose statistics are kept (a search uses one, or one per fold).
CACHE_SIZE = 16


@dataclass
class DataStatistics:
    """Per-channel moments and range of the training inputs, the training
    labels and a few samples.

    ``variance`` and ``value_range`` follow scikit-learn's scalers: a
    constant channel gets 1 (it is then only shifted, never divided by 0).
    """

    count: int
    mean: np.ndarray
    variance: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    labels: np.ndarray | None = None
    sample: np.ndarray | None = field(default=None, repr=False)

    @property
    def value_range(self) -> np.ndarray:
        span = self.maximum - self.minimum
        return np.where(span > 0, span, 1.0)

    def normalization(self, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, variance)`` for a ``keras.layers.Normalization`` that
        standardizes ("standardize") or scales to [0, 1] ("minmax")."""
        if mode == "minmax":
            return self.minimum, np.square(self.value_range)
        return self.mean, np.where(self.variance > 0, self.variance, 1.0)

    def class_weights(self, num_classes: int) -> dict[int, float]:
        """scikit-learn's balanced weights of the training labels, for every
        class index (1.0 for a class absent from the labels).

        Raises:
            ValueError: when the training data had no labels.
        """
        from sklearn.utils.class_weight import compute_class_weight

        if self.labels is None or not len(self.labels):
            raise ValueError("class_weight='balanced' needs the training labels: pass search(x, y, ...) or a "
                             "dataset of (x, y) batches")
        present = np.unique(self.labels)
        weights = compute_class_weight("balanced", classes=present, y=self.labels)
        out = {c: 1.0 for c in range(int(num_classes))}
        out.update({int(c): float(w) for c, w in zip(present, weights)})
        return out


class _Moments:
    """Per-channel count, mean, M2, min and max, merged batch by batch
    (Chan et al.'s parallel update, in float64)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None
        self.lo: np.ndarray | None = None
        self.hi: np.ndarray | None = None

    def add(self, batch: np.ndarray) -> None:
        rows = batch.reshape(-1, batch.shape[-1]) if batch.ndim > 1 else batch.reshape(-1, 1)
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start:start + CHUNK_ROWS].astype("float64")
            n = len(chunk)
            if not n:
                continue
            mean = chunk.mean(axis=0)
            m2 = np.square(chunk - mean).sum(axis=0)
            lo, hi = chunk.min(axis=0), chunk.max(axis=0)
            if self.mean is None:
                self.n, self.mean, self.m2, self.lo, self.hi = n, mean, m2, lo, hi
                continue
            assert self.m2 is not None and self.lo is not None and self.hi is not None
            total = self.n + n
            delta = mean - self.mean
            self.mean = self.mean + delta * (n / total)
            self.m2 = self.m2 + m2 + np.square(delta) * (self.n * n / total)
            self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(self.hi, hi)
            self.n = total


def _labels(y: Any) -> np.ndarray:
    """Integer class labels: one-hot rows become their arg-max."""
    y = np.asarray(y)
    if y.ndim >= 2 and y.shape[-1] > 1:
        return np.argmax(y.reshape(-1, y.shape[-1]), axis=-1).astype("int64")
    return np.rint(y.reshape(-1).astype("float64")).astype("int64")


def _single_input(x: Any) -> Any:
    if isinstance(x, dict) and len(x) == 1:
        return next(iter(x.values()))
    if isinstance(x, (list, tuple)) and len(x) == 1 and hasattr(x[0], "shape"):
        return x[0]
    return x


def _batches(x: Any, y: Any) -> Any:
    """``(x_batch, y_batch or None)`` pairs of the training data.

    Raises:
        ValueError: for data that cannot be read twice (a generator) or
            never ends (a repeated ``tf.data.Dataset``).
    """
    import keras

    if hasattr(x, "element_spec"):  # tf.data.Dataset
        import tensorflow as tf

        if int(x.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
            raise ValueError("data preparation needs finite training data to compute its statistics, got an "
                             "infinite (repeated) tf.data.Dataset: pass arrays, or the dataset without .repeat()")
        for element in x.as_numpy_iterator():
            if isinstance(element, tuple):
                yield _single_input(element[0]), (element[1] if len(element) > 1 else None)
            else:
                yield _single_input(element), None
        return
    if isinstance(x, keras.utils.PyDataset):
        for i in range(len(x)):
            element = x[i]
            if isinstance(element, tuple):
                yield np.asarray(_single_input(element[0])), (element[1] if len(element) > 1 else None)
            else:
                yield np.asarray(_single_input(element)), None
        return
    x = _single_input(x)
    if not (hasattr(x, "shape") or isinstance(x, (list, tuple))) or hasattr(x, "__next__"):
        raise ValueError("data preparation needs the training data as arrays, a finite tf.data.Dataset or a "
                         f"keras.utils.PyDataset to compute its statistics, got {type(x).__name__}")
    yield np.asarray(x), (None if y is None else np.asarray(y))


def compute_statistics(x: Any, y: Any = None, *, validation_split: float | None = None) -> DataStatistics:
    """The statistics of the training data ``x`` (and labels ``y``).

    Args:
        x: Training inputs (see the module docstring for the types).
        y: Training targets, or None (inside ``x`` for a dataset).
        validation_split: As ``model.fit``'s: the last fraction of the
            arrays is validation data and left out (Keras' own split: the
            first ``floor(n * (1 - validation_split))`` samples are kept).

    Returns:
        A `DataStatistics`.
    """
    if validation_split:
        # Exactly the rows model.fit trains on: Keras' own split (which refuses data it cannot split).
        x, y = keras_training_split((x, y), validation_split)
    moments = _Moments()
    labels: list[np.ndarray] = []
    sample: np.ndarray | None = None
    for xb, yb in _batches(x, y):
        xb = np.asarray(xb)
        if xb.dtype.kind not in "biuf":
            raise ValueError(f"data preparation needs numeric inputs, got dtype {xb.dtype}")
        moments.add(xb)
        if yb is not None:
            labels.append(_labels(yb))
        if sample is None or len(sample) < PREVIEW_SAMPLES:
            head = xb[:PREVIEW_SAMPLES].astype("float32")
            sample = head if sample is None else np.concatenate([sample, head])[:PREVIEW_SAMPLES]
    if moments.mean is None:
        raise ValueError("data preparation got no training samples to compute its statistics from")
    assert moments.m2 is not None and moments.lo is not None and moments.hi is not None
    return DataStatistics(
        count=moments.n,
        mean=moments.mean,
        variance=moments.m2 / moments.n,
        minimum=moments.lo,
        maximum=moments.hi,
        labels=np.concatenate(labels) if labels else None,
        sample=sample,
    )


def _ref(obj: Any) -> Any:
    """A weak reference where the type allows one, else a strong one."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


class StatisticsCache:
    """Statistics per training set, by the identity of its ``x`` and ``y``
    objects (and the validation split): the arrays a search passes to every
    trial hit the cache, so the statistics are computed once."""

    def __init__(self) -> None:
        self._entries: list[tuple[Any, Any, Any, DataStatistics]] = []

    def get(self, x: Any, y: Any, validation_split: float | None = None) -> DataStatistics:
        for rx, ry, split, stats in self._entries:
            if rx() is x and ry() is y and split == validation_split:
                return stats
        stats = compute_statistics(x, y, validation_split=validation_split)
        self._entries = [*self._entries[-(CACHE_SIZE - 1):], (_ref(x), _ref(y), validation_split, stats)]
        return stats

    def __deepcopy__(self, memo: dict) -> StatisticsCache:
        return StatisticsCache()  # keras-tuner may deep-copy a hypermodel: the copy computes its own
