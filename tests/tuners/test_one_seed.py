"""One seed per search: ``seed=0`` is the seed 0 (keras-tuner's oracles turn
0, like None, into a random seed), for the sampler, the folds and refit."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import ktplus


def build(hp):
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(hp.Int("units", 2, 64), activation="relu"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.SGD(hp.Float("lr", 1e-4, 1e-1, sampling="log")), loss="mse")
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def sequence(tuner, data):
    x, y = data
    tuner.search(x, y, validation_data=(x, y), epochs=1, batch_size=8, verbose=0)
    trials = tuner.oracle.trials
    return [trials[t].hyperparameters.values for t in sorted(trials, key=int)]


@pytest.mark.parametrize("tuner_class", [ktplus.OptunaSearch, ktplus.RandomSearch])
def test_seed_zero_gives_the_same_search_twice(tuner_class, data, tmp_path):
    runs = []
    for name in ("a", "b"):
        tuner = tuner_class(build, objective="val_loss", max_trials=3, seed=0, directory=tmp_path,
                            project_name=name, tensorboard=False)
        assert tuner.search_seed == 0 and tuner.oracle.seed == 0
        runs.append(sequence(tuner, data))
    assert len(runs[0]) == 3 and runs[0] == runs[1]
    other = tuner_class(build, objective="val_loss", max_trials=3, seed=1, directory=tmp_path,
                        project_name="c", tensorboard=False)
    assert sequence(other, data) != runs[0]


def test_optuna_oracle_keeps_seed_zero(tmp_path):
    oracle = ktplus.OptunaOracle(objective="val_loss", max_trials=2, sampler="random", seed=0)
    assert oracle.seed == 0 and type(oracle.seed) is int
    tuner = ktplus.Tuner(oracle=oracle, hypermodel=build, directory=tmp_path, tensorboard=False)
    assert tuner.search_seed == 0
    # The sampler draws as Optuna's own sampler seeded with 0.
    assert oracle.sampler._rng.rng.random() == ktplus.OptunaOracle(
        objective="val_loss", sampler="random", seed=0).sampler._rng.rng.random()


def test_seed_zero_reaches_keras_tuner_oracles_and_is_saved(tmp_path):
    tuner = ktplus.BayesianOptimization(build, objective="val_loss", max_trials=2, seed=0,
                                        directory=tmp_path, tensorboard=False)
    assert tuner.oracle.seed == 0 and tuner.search_seed == 0
    assert tuner.oracle.get_state()["seed"] == 0


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "0"])
def test_bad_seed_is_refused_naming_the_argument(seed, tmp_path):
    with pytest.raises(ValueError, match=r"`seed`.*0 to 2\*\*32 - 1"):
        ktplus.RandomSearch(build, objective="val_loss", max_trials=2, seed=seed, directory=tmp_path)
    with pytest.raises(ValueError, match=r"`seed`"):
        ktplus.OptunaSearch(build, objective="val_loss", max_trials=2, seed=seed, directory=tmp_path)
    assert not any(tmp_path.iterdir())
