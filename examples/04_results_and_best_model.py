"""Load a search's results as a DataFrame, then train its best model further.

    python examples/04_results_and_best_model.py
    KTPLUS_QUICK=1 python examples/04_results_and_best_model.py
"""

from __future__ import annotations

import os

import keras_tuner
from _common import budget, directory

import ktplus
from ktplus import datasets


def main() -> float:
    data = datasets.load("iris")
    (x, y), (xv, yv), (xt, yt) = datasets.split(data.x, data.y, fractions=(0.2, 0.2), seed=0)
    x, xv, xt = datasets.standardize(x, xv, xt)
    root = directory()
    hypermodel = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
    tuner = ktplus.RandomSearch(hypermodel, objective="val_accuracy", max_trials=budget(8, 1),
                                early_stopping=5, seed=0, directory=root, project_name="iris")
    tuner.search(x, y, validation_data=(xv, yv), epochs=budget(40, 2), verbose=0)

    # Any time later, even while the search runs, from another process:
    results = ktplus.load_results(os.path.join(root, "iris"))
    print(results[["trial_id", "status", "score", "epochs", "layers", "learning_rate"]])

    # The best model, rebuilt from its hyperparameters and trained further on
    # train + validation data.
    best_hp = tuner.get_best_hyperparameters(1)[0]
    model = hypermodel.build(best_hp)
    assert isinstance(best_hp, keras_tuner.HyperParameters)
    import numpy as np

    model.fit(np.concatenate([x, xv]), np.concatenate([y, yv]), epochs=budget(60, 2), verbose=0)
    test_accuracy = model.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    print(f"best trial {results.loc[0, 'trial_id']}: val_accuracy {results.loc[0, 'score']:.4f}; "
          f"retrained test accuracy {test_accuracy:.4f}")
    return float(test_accuracy)


if __name__ == "__main__":
    main()
