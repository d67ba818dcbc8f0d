"""What ktplus does around the trials leaves the process's global state as
it found it: with ``fast_path=False`` and ``tensorboard=False`` a seeded
search gives keras-tuner's own trial scores, and the pre-flight checks
consume no random number."""

from __future__ import annotations

import random
import warnings

import keras
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
    validate_search_inputs(tuner, (x, y), {"validation_data": val}, runs_model_fit=True)
    assert random_state() == before


class ShownOnce(UserWarning):
    pass


def warn_once():
    warnings.warn("shown once", ShownOnce, stacklevel=1)


@pytest.mark.parametrize("tuner_class", [ktplus.RandomSearch, ktplus.OptunaSearch])
def test_search_leaves_warnings_filters_and_registry(tuner_class, data, tmp_path):
    """A warning Python showed once is not shown again after a search (with
    TensorBoard on: the hyperparameter importance is ranked after it)."""
    (x, y), val = data
    shown = []
    with warnings.catch_warnings():
        warnings.simplefilter("default", ShownOnce)
        warnings.showwarning = lambda message, category, *args, **kwargs: shown.append(category)
        warn_once()
        warn_once()
        assert shown.count(ShownOnce) == 1
        filters = list(warnings.filters)
        tuner = tuner_class(build, objective="val_mae", max_trials=3, directory=tmp_path)
        tuner.search(x, y, validation_data=val, epochs=1, batch_size=8, verbose=0)
        assert sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values()) == 3
        assert warnings.filters == filters
        warn_once()
        assert shown.count(ShownOnce) == 1
    assert len(tuner.importance()) == 2  # what the search ranked in TensorBoard


def test_optuna_experimental_warnings_hidden_without_touching_filters():
    """ktplus's own use of Optuna's experimental features (the grouped TPE,
    QMC) warns nothing, and leaves the user's own use of them warning."""
    import optuna

    from ktplus.oracles._samplers import make_sampler

    shown = []
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = lambda message, category, *args, **kwargs: shown.append(category)
        filters = list(warnings.filters)
        make_sampler("tpe", 0)
        make_sampler("qmc", 0)
        assert optuna.exceptions.ExperimentalWarning not in shown
        assert warnings.filters == filters
        optuna.samplers.TPESampler(seed=0, multivariate=True, group=True)
        assert optuna.exceptions.ExperimentalWarning in shown


def test_optuna_search_under_an_error_filter_for_every_warning(tmp_path):
    """`-W error` (or pytest's filterwarnings = error): Optuna's experimental
    warnings raised inside ktplus (the default TPE sampler) stay ktplus's
    business, and the user's filters are as they were after."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        before = list(warnings.filters)
        tuner = ktplus.OptunaSearch(build, objective="val_mae", max_trials=1, directory=tmp_path,
                                    tensorboard=False)
        assert tuner.oracle.sampler is not None
        assert warnings.filters == before
