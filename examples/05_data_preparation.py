"""Conv models on digits as 8x8 images, tuning data preparation: whether to
standardize the inputs, and how much random rotation, translation, zoom and
crop augmentation to train with. Then the best models on a held-out test set.

    python examples/05_data_preparation.py
    KTPLUS_QUICK=1 python examples/05_data_preparation.py
"""

from __future__ import annotations

from _common import budget, directory, rows

import ktplus
from ktplus import datasets


def main() -> float:
    data = datasets.load("digits")  # pixels already scaled to [0, 1] (/ 16)
    images = data.x.reshape(-1, *data.image_shape)  # (n, 8, 8, 1)
    (x, y), (xv, yv), (xt, yt) = datasets.split(images, data.y, fractions=(0.15, 0.15), seed=0)
    x, y = rows(x, y)
    hypermodel = ktplus.ConvHyperModel(
        input_shape=(8, 8, 1),
        num_classes=10,
        filters=(16, 64),
        # Statistics come from the training data, once per search, and live in
        # the model: the best model takes raw pixels.
        normalization=[None, "standardize"],
        # Ranges tune each factor; 0 (its lower end) means no layer. The layers
        # act only in training, never on validation or test data.
        augment_rotation=(0.0, 0.1),      # fraction of a full turn
        augment_translation=(0.0, 0.25),  # fraction of the side
        augment_zoom=(0.0, 0.2),
        augment_crop=[0.0, 0.125],        # cut one pixel of 8 away, resized back
    )
    tuner = ktplus.OptunaSearch(
        hypermodel,
        sampler="tpe",
        objective="val_accuracy",
        max_trials=budget(16, 2),
        early_stopping=5,
        seed=0,
        directory=directory(),
        project_name="digits_data_prep",
    )
    tuner.search(x, y, validation_data=(xv, yv), epochs=budget(30, 2), verbose=0)
    columns = ["trial_id", "status", "score", "normalization", "augment_rotation", "augment_translation",
               "augment_zoom", "augment_crop"]
    print(tuner.results()[columns].head().to_string(index=False, float_format="{:.3f}".format))

    # The two best models on the test set, never seen by the search.
    test = tuner.evaluate(xt, yt, num_models=2)
    print(test[["trial_id", "accuracy", "balanced_accuracy", "f1_macro"]].to_string(index=False))
    best = tuner.oracle.get_best_trials(1)[0]
    print(f"best val_accuracy {best.score:.4f}, test accuracy {test.loc[0, 'accuracy']:.4f} with "
          f"normalization={best.hyperparameters.get('normalization')}")
    # Each trial's run shows a few training images before and after its
    # augmentation (the Images tab, tag "augmentation"); the test metrics are
    # in the HParams tab.
    print(f"augmentation previews: tensorboard --logdir {tuner.tensorboard_dir}  (Images tab)")
    return float(test.loc[0, "accuracy"])


if __name__ == "__main__":
    main()
