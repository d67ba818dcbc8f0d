"""Conv and residual models on digits as 8x8 images, with Hyperband, cosine
learning-rate decay and early stopping.

    python examples/02_images_hyperband.py
    KTPLUS_QUICK=1 python examples/02_images_hyperband.py
"""

from __future__ import annotations

from _common import budget, directory, rows

import ktplus
from ktplus import datasets


def main() -> dict[str, float]:
    data = datasets.load("digits")
    images = data.x.reshape(-1, *data.image_shape)
    (x, y), (xv, yv) = datasets.split(images, data.y, fractions=(0.2,), seed=0)
    x, y = rows(x, y)
    scores = {}
    for name, hypermodel in {
        "conv": ktplus.ConvHyperModel(input_shape=(8, 8, 1), num_classes=10, filters=(16, 64)),
        "residual": ktplus.ResidualHyperModel(input_shape=(8, 8, 1), num_classes=10, stages=(1, 2),
                                              block_type=["basic", "bottleneck"]),
    }.items():
        tuner = ktplus.Hyperband(
            hypermodel,
            objective="val_accuracy",
            max_epochs=budget(27, 1),
            factor=3,
            lr_decay="cosine",
            early_stopping=4,
            seed=0,
            directory=directory(),
            project_name=f"digits_{name}",
        )
        tuner.search(x, y, validation_data=(xv, yv), verbose=0)
        scores[name] = float(tuner.oracle.get_best_trials(1)[0].score)
        print(f"best {name}: val_accuracy {scores[name]:.4f}; "
              f"tensorboard --logdir {tuner.tensorboard_dir}")
    return scores


if __name__ == "__main__":
    main()
