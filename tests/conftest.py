"""Shared fixtures: seeds and tiny slices of scikit-learn's digits."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One TensorFlow thread per pool: the tests' models are tiny, and on CI's two
# cores two pytest workers (and the subprocesses the tests start, which
# inherit this) only contend when each also runs its own thread pools.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import ktplus  # noqa: E402, F401  (quiet TensorFlow import first)
from ktplus import datasets  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session(free_memory=False)  # gc.collect with TensorFlow loaded costs ~1 s


@pytest.fixture(scope="session")
def digits():
    """Digits split into train / validation: ((x, y), (x, y)), x flat in [0, 1]."""
    data = datasets.load("digits")
    return datasets.split(data.x, data.y, fractions=(0.25,), seed=0)


@pytest.fixture(scope="session")
def digits_images(digits):
    """The same split with x shaped as 8x8x1 images."""
    (xt, yt), (xv, yv) = digits
    return (xt.reshape(-1, 8, 8, 1), yt), (xv.reshape(-1, 8, 8, 1), yv)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
