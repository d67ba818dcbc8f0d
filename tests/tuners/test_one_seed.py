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


@pytest.mark.parametrize("seed", [1.5, True, "0"])
def test_bad_seed_is_refused_naming_the_argument(seed, tmp_path):
    with pytest.raises(TypeError, match=r"`seed`.*None or an integer"):
        ktplus.RandomSearch(build, objective="val_loss", max_trials=2, seed=seed, directory=tmp_path)
    with pytest.raises(TypeError, match=r"`seed`"):
        ktplus.OptunaSearch(build, objective="val_loss", max_trials=2, seed=seed, directory=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("seed", [-1, 2**40])
def test_any_integer_seed_is_taken_as_keras_tuner_takes_it(seed, tmp_path):
    """keras-tuner takes any integer seed; numpy, scikit-learn and Optuna's
    samplers get it modulo 2**32."""
    tuner = ktplus.OptunaSearch(build, objective="val_loss", max_trials=2, seed=seed, directory=tmp_path,
                                project_name="optuna", cv=2)
    assert tuner.search_seed == seed
    tuner = ktplus.RandomSearch(build, objective="val_loss", max_trials=2, seed=seed, directory=tmp_path,
                                project_name="random", cv=2)
    assert tuner.oracle.seed == seed and tuner.search_seed == seed
    from ktplus.evaluation._cv import make_folds

    x = np.arange(20, dtype="float32").reshape(10, 2)
    folds = make_folds(2, x, np.arange(10.0), None, seed, classifier=False)
    assert len(folds) == 2


def test_a_seed_and_max_epochs_given_by_position_are_the_ones_used(data, tmp_path):
    """keras-tuner's own positional order: RandomSearch(hypermodel, objective,
    max_trials, seed), OptunaSearch(hypermodel, objective, max_trials,
    sampler, seed), Hyperband(hypermodel, objective, max_epochs)."""
    runs = []
    for name in ("a", "b"):
        tuner = ktplus.RandomSearch(build, "val_loss", 3, 0, directory=tmp_path, project_name=name,
                                    tensorboard=False)
        assert tuner.search_seed == 0 and tuner.oracle.seed == 0
        runs.append(sequence(tuner, data))
    assert runs[0] == runs[1]
    optuna = ktplus.OptunaSearch(build, "val_loss", 3, "random", 0, directory=tmp_path, project_name="o",
                                 tensorboard=False)
    assert optuna.search_seed == 0
    hyperband = ktplus.Hyperband(build, "val_loss", 7, directory=tmp_path, project_name="h", tensorboard=False)
    assert hyperband._hyperband_budget() == 7 and hyperband._max_epochs == 7
