"""ktplus.Hyperband: keras-tuner's Hyperband with ktplus's options."""

from __future__ import annotations

import keras_tuner

from ktplus.tuners._mixin import TunerOptionsMixin


class Hyperband(TunerOptionsMixin, keras_tuner.Hyperband):
    """`keras_tuner.Hyperband` plus learning-rate decay, early stopping, pruning
    and a fast training path. Takes every argument of `keras_tuner.Hyperband`.

    Args:
        *args: Positional arguments of `keras_tuner.Hyperband` (hypermodel, ...).
        lr_decay: None, "exponential", "step", "cosine", "polynomial",
            "plateau" (on the objective), a dict such as
            `{"schedule": "step", "factor": 0.5, "step_size": 5}`, a
            `ktplus.training.LRDecay`, or "tune" to make the schedule and its
            parameters hyperparameters. Scales the learning rate of whatever
            optimizer the model was compiled with; logged as `learning_rate`.
        lr_warmup: Epochs of linear warmup before the schedule.
        early_stopping: None, True (patience 5), an int patience, a dict of
            `keras.callbacks.EarlyStopping` options or an EarlyStopping. It
            monitors the objective in its direction and restores the best
            weights.
        pruning: None, "median" (median stopping rule), "percentile" (keep the
            best quarter) or a `ktplus.training.Pruner`.
        fast_path: True (default): numpy data becomes one cached, prefetched
            tf.data pipeline per search and `steps_per_execution` is raised
            when no callback needs batch-level hooks; "data" or
            "steps_per_execution" for one part; False for neither.
        **kwargs: Keyword arguments of `keras_tuner.Hyperband`.

    Each trial records `epochs_run`, `best_epoch` and `pruned` (and
    `pruned_epoch`) with its metrics; a NaN or infinite loss fails the trial.

    Example:

    >>> import ktplus
    >>> hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
    >>> tuner = ktplus.Hyperband(hm, objective="val_accuracy", lr_decay="cosine",
    ...     early_stopping=3, pruning="median", overwrite=True,
    ...     directory=__import__("tempfile").mkdtemp(), max_epochs=4)
    >>> tuner.early_stopping
    {'patience': 3}
    """
