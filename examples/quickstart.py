"""Tune a ktplus hypermodel with keras-tuner on scikit-learn's breast cancer data.

    python examples/quickstart.py            # full run
    KTPLUS_QUICK=1 python examples/quickstart.py   # seconds (used by the tests)
"""

from __future__ import annotations

import os
import tempfile

import keras_tuner

import ktplus
from ktplus import datasets

QUICK = os.environ.get("KTPLUS_QUICK") == "1"


def main() -> float:
    data = datasets.load("breast_cancer")
    (x, y), (xv, yv) = datasets.split(data.x, data.y, fractions=(0.25,), seed=0)
    x, xv = datasets.standardize(x, xv)
    hypermodel = ktplus.DenseHyperModel(
        input_shape=x.shape[1:],
        num_classes=2,
        regularizer=["l1", "l2", None],
        dropout=(0.0, 0.5),
        metrics=["accuracy", "auc"],
    )
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective=keras_tuner.Objective("val_auc", direction="max"),
        max_trials=2 if QUICK else 10,
        seed=0,
        directory=os.environ.get("KTPLUS_EXAMPLE_DIR", tempfile.mkdtemp()),
        project_name="quickstart",
    )
    tuner.search(x, y, validation_data=(xv, yv), epochs=3 if QUICK else 20, verbose=0)
    best = tuner.oracle.get_best_trials(1)[0]
    print(f"best val_auc {best.score:.4f} with {best.hyperparameters.values}")
    return float(best.score)


if __name__ == "__main__":
    main()
