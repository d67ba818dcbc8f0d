"""What ktplus does around the trials leaves the process's global state as
it found it: with ``fast_path=False`` and ``tensorboard=False`` a seeded
search gives keras-tuner's own trial scores, and the pre-flight checks
consume no random number."""

from __future__ import annotations

import random

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus
from ktplus.tuners._validate import validate_search_inputs


def build(hp):
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(hp.Int("units", 2, 16), activation="relu"),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")), loss="mse",
                  metrics=["mae"])
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [0.0]], "float32")
    return (x[:32], y[:32]), (x[32:], y[32:])


def scores(tuner, data):
    (x, y), val = data
    keras.utils.set_random_seed(1)
    tuner.search(x, y, validation_data=val, epochs=2, batch_size=8, verbose=0)
    trials = tuner.oracle.trials
    return [(trials[t].hyperparameters.values, trials[t].score) for t in sorted(trials, key=int)]


def test_seeded_search_gives_keras_tuners_own_scores(data, tmp_path):
    common = dict(objective="val_mae", max_trials=3, seed=3, directory=tmp_path)
    theirs = scores(keras_tuner.RandomSearch(build, project_name="kt", **common), data)
    ours = scores(ktplus.RandomSearch(build, project_name="ktplus", fast_path=False, tensorboard=False,
                                      **common), data)
    assert len(ours) == 3 and all(score is not None for _, score in ours)
    assert ours == theirs


def random_state():
    """Every random state a model build or evaluation may draw from."""
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils.rng_utils import get_random_seed

    generator = global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR)
    return (random.getstate(), repr(np.random.get_state()), get_random_seed(), generator,
            None if generator is None else keras.ops.convert_to_numpy(generator.state).tolist())


def test_preflight_check_leaves_every_random_state(data, tmp_path):
    (x, y), val = data
    tuner = ktplus.RandomSearch(build, objective="val_mae", max_trials=1, directory=tmp_path,
                                fast_path=False, tensorboard=False)
    keras.utils.set_random_seed(1)
    keras.random.uniform((1,))  # Keras' global seed generator exists and has drawn
    before = random_state()
    validate_search_inputs(tuner, (x, y), {"validation_data": val})
    assert random_state() == before
