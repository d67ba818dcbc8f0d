"""Dense models on a tabular dataset, tuning L1/L2 regularization and dropout.

    python examples/01_dense_tabular.py
    KTPLUS_QUICK=1 python examples/01_dense_tabular.py    # seconds
"""

from __future__ import annotations

import keras_tuner
from _common import budget, directory

import ktplus
from ktplus import datasets


def main() -> float:
    data = datasets.load("breast_cancer")
    (x, y), (xv, yv) = datasets.split(data.x, data.y, fractions=(0.25,), seed=0)
    x, xv = datasets.standardize(x, xv)
    hypermodel = ktplus.DenseHyperModel(
        input_shape=x.shape[1:],
        num_classes=2,
        regularizer=["l1", "l2", "l1_l2", None],
        regularizer_strength=(1e-5, 1e-2),
        dropout=(0.0, 0.5),
        metrics=["accuracy", "auc"],
    )
    tuner = ktplus.RandomSearch(
        hypermodel,
        objective=keras_tuner.Objective("val_auc", direction="max"),
        max_trials=budget(12, 1),
        early_stopping=5,
        pruning="median",
        seed=0,
        directory=directory(),
        project_name="breast_cancer",
    )
    tuner.search(x, y, validation_data=(xv, yv), epochs=budget(30, 2), verbose=0)
    print(tuner.results()[["trial_id", "status", "score", "regularizer", "dropout"]].head())
    best = tuner.oracle.get_best_trials(1)[0]
    print(f"best val_auc {best.score:.4f} with regularizer={best.hyperparameters.get('regularizer')}")
    return float(best.score)


if __name__ == "__main__":
    main()
