"""Your own build function, tuned with ktplus's tuner features: the learning
rate schedule is itself tuned, early stopping and pruning apply, and every
trial is logged to TensorBoard.

    python examples/03_own_build_function.py
    KTPLUS_QUICK=1 python examples/03_own_build_function.py
"""

from __future__ import annotations

import keras
from _common import budget, directory

import ktplus
from ktplus import datasets


def build(hp):
    model = keras.Sequential([keras.Input((13,))])
    for i in range(hp.Int("layers", 1, 2)):
        model.add(keras.layers.Dense(hp.Choice(f"units_{i}", [16, 32, 64]), activation="relu"))
    model.add(keras.layers.Dense(3, activation="softmax"))
    optimizer = keras.optimizers.SGD(hp.Float("lr", 1e-3, 1e-1, sampling="log"), momentum=0.9)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> float:
    data = datasets.load("wine")
    (x, y), (xv, yv) = datasets.split(data.x, data.y, fractions=(0.3,), seed=0)
    x, xv = datasets.standardize(x, xv)
    tuner = ktplus.BayesianOptimization(
        build,
        objective="val_accuracy",
        max_trials=budget(15, 1),
        lr_decay="tune",
        early_stopping=True,
        pruning=ktplus.MedianPruner(n_startup_trials=3, n_warmup_epochs=3),
        seed=0,
        directory=directory(),
        project_name="wine",
    )
    tuner.search(x, y, validation_data=(xv, yv), epochs=budget(40, 2), verbose=0)
    best = tuner.oracle.get_best_trials(1)[0]
    print(f"best val_accuracy {best.score:.4f} with lr_decay={best.hyperparameters.get('lr_decay')}")
    return float(best.score)


if __name__ == "__main__":
    main()
