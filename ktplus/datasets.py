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

from ktplus.hypermodels._knobs import invalid

BUILTIN = ("digits", "breast_cancer", "wine", "iris")


@dataclass
class Dataset:
    """Features ``x`` (float32), integer labels ``y`` and their description.

    ``image_shape`` is set for image data (digits: ``(8, 8, 1)``) so conv and
    residual models can view each row of ``x`` as an image.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    num_classes: int
    image_shape: tuple[int, ...] | None = None


def load(name: str) -> Dataset:
    """Loads a bundled scikit-learn dataset by name.

    Args:
        name: One of "digits", "breast_cancer", "wine", "iris".

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
    bunch = loaders[name]()
    x = np.asarray(bunch.data, dtype="float32")
    y = np.asarray(bunch.target, dtype="int64")
    image_shape = None
    if name == "digits":
        x = x / 16.0
        image_shape = (8, 8, 1)
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


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scales features to zero mean and unit variance using ``train``'s stats."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0] = 1.0
    return [((a - mean) / std).astype("float32") for a in (train, *others)]
