"""Invariant 5: with ``fast_path=False`` and ``tensorboard=False``, a seeded
ktplus search gives keras-tuner's own trial scores for the same hypermodel
(every tuner, validation data or split, a custom fit, a list objective; with
dropout and Keras' shuffling over two epochs, so anything ktplus did with a
random state between epochs would show), and leaves Python's and NumPy's
global random states where keras-tuner's search leaves them."""

from __future__ import annotations

import random

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus
from tests.combinations import common

#: Each tuner (random twice); the other three factors as an orthogonal
#: array in the first four rows: every pair of their levels appears, each
#: level with several tuners.
ROWS = [
    {"tuner": "random", "validation": "data", "custom_fit": False, "objective": "single"},
    {"tuner": "bayesian", "validation": "data", "custom_fit": True, "objective": "list"},
    {"tuner": "hyperband", "validation": "split", "custom_fit": False, "objective": "list"},
    {"tuner": "grid", "validation": "split", "custom_fit": True, "objective": "single"},
    {"tuner": "oracle", "validation": "split", "custom_fit": True, "objective": "list"},
    {"tuner": "random", "validation": "split", "custom_fit": False, "objective": "single"},
]


def _search(module, row, data, directory):
    hm = common.hypermodel(None, custom_fit=row["custom_fit"])
    objective = common.objective(row["objective"])
    keras.utils.set_random_seed(1)
    tuner = common.tuner(row["tuner"], hm, objective, directory, seed=5, module=module, trials=2,
                         max_epochs=2)
    x, y = common.fit_xy(row["validation"], data)
    tuner.search(x, y, epochs=2, verbose=0, **common.fit_kwargs(row["validation"], data))
    scores = {t.trial_id: (t.hyperparameters.values, t.score) for t in tuner.oracle.trials.values()}
    return scores, random.getstate(), np.random.get_state()


class _Options:
    """ktplus's tuners with the fast path and TensorBoard off, as a module."""

    def __getattr__(self, name):
        cls = getattr(ktplus, name)

        def make(*args, **kwargs):
            return cls(*args, fast_path=False, tensorboard=False, **kwargs)

        return make


@pytest.mark.parametrize("row", ROWS, ids=["-".join(f"{k}={v}" for k, v in r.items()) for r in ROWS])
def test_keras_tuner_trial_scores(row, tmp_path):
    data = common.dataset()
    theirs, their_random, their_np = _search(keras_tuner, row, data, tmp_path / "kt")
    ours, our_random, our_np = _search(_Options(), row, data, tmp_path / "ktplus")
    assert theirs.keys() == ours.keys()
    for trial_id, (values, score) in theirs.items():
        assert ours[trial_id][0] == values, trial_id
        assert ours[trial_id][1] == pytest.approx(score, rel=1e-6, abs=1e-7), (trial_id, ours[trial_id], score)
    assert our_random == their_random, "Python's global random state differs from keras-tuner's"
    assert all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
               for a, b in zip(our_np, their_np)), "NumPy's global random state differs"
