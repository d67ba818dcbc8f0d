"""``tuner.refit(x, y)``: the best configuration, trained on all the data."""

from __future__ import annotations

import math
from typing import Any

from ktplus import _facts
from ktplus._seed import generator_seed


def _shape(a: Any) -> tuple[int, ...] | None:
    shape = getattr(a, "shape", None)
    return tuple(shape) if shape is not None else None


def refit_epochs(trial: Any, settings: dict[str, Any]) -> int:
    """The best trial's best number of epochs (its mean best epoch over folds
    or executions, rounded), else the search's ``epochs``."""
    metrics = trial.metrics
    if metrics.exists(_facts.BEST_EPOCH):
        value = metrics.get_last_value(_facts.BEST_EPOCH)
        if value is not None and math.isfinite(value):
            return max(1, int(round(value)))
    return int(settings.get("epochs") or 1)


def refit_best(tuner: Any, x: Any, y: Any, **fit_kwargs: Any) -> Any:
    """Trains the best trial's configuration on all of ``x``, ``y``.

    Built with the best trial's hyperparameters (Hyperband's bookkeeping
    values left out), seeded with the tuner's seed, and trained through the
    hypermodel's own ``fit`` for the best trial's best number of epochs
    (``epochs=`` overrides), with the search's batch size and the same
    learning-rate schedule over the same epoch budget. A "plateau" schedule
    has no validation data here and watches the objective's training
    counterpart (``accuracy`` for ``val_accuracy``).

    Args:
        tuner: A `ktplus.Tuner` with at least one completed trial.
        x: All the training features.
        y: Their targets.
        **fit_kwargs: More arguments for `HyperModel.fit` / ``model.fit``.

    Returns:
        The trained `keras.Model`.

    Raises:
        ValueError: before any training, when no trial completed, or when
            ``x`` and ``y`` differ in length or ``x`` does not have the
            shape the models were searched with.

    Example:

    >>> import tempfile
    >>> import numpy as np
    >>> import ktplus
    >>> hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2)
    >>> tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1,
    ...                             directory=tempfile.mkdtemp())
    >>> tuner.refit(np.zeros((8, 4)), np.zeros(8))  # before any search
    Traceback (most recent call last):
    ...
    ValueError: refit(): no trial has completed with a score yet, ...
    >>> # after tuner.search(...):
    >>> model = tuner.refit(x_train_and_val, y_train_and_val)  # doctest: +SKIP
    >>> model.save("best.keras")  # doctest: +SKIP
    """
    import keras

    from ktplus._compat import build_model
    from ktplus.evaluation._cv import sample_count
    from ktplus.evaluation._heldout import best_trials, model_input_shapes
    from ktplus.hypermodels._base import BaseHyperModel
    from ktplus.results import read_meta
    from ktplus.training import _schedules
    from ktplus.tuners._fast_path import tuned_batch_size

    trial = best_trials(tuner, 1, "refit")[0]
    for name in ("validation_data", "validation_split"):
        if fit_kwargs.get(name):
            raise ValueError(f"refit(): `{name}` is not used: refit trains on all the data it is given for "
                             "the best trial's number of epochs; evaluate afterwards with tuner.evaluate().")
    n_x, n_y = sample_count(x), sample_count(y)
    if n_x != n_y:
        raise ValueError(f"refit(): `x` has {n_x} samples but `y` has {n_y}; they must have one entry per sample.")
    if n_x == 0:
        raise ValueError("refit(): `x` holds no samples.")
    hm = tuner.hypermodel
    x_shape = _shape(x)
    if isinstance(hm, BaseHyperModel) and x_shape is not None and x_shape[1:] != tuple(hm.input_shape):
        raise ValueError(f"refit(): the samples of `x` have shape {x_shape[1:]} but the search's models take "
                         f"{tuple(hm.input_shape)}; pass data shaped like the data the search trained on.")
    settings = read_meta(tuner.project_dir).get("fit", {})
    hp = trial.hyperparameters
    seed = generator_seed(tuner.search_seed)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = build_model(tuner, hp)
    inputs = model_input_shapes(model)
    expected = inputs[0][1] if inputs and len(inputs) == 1 else None
    if x_shape is not None and expected is not None and len(expected) == len(x_shape) - 1 and any(
            e is not None and e != s for e, s in zip(expected, x_shape[1:])):
        raise ValueError(f"refit(): the samples of `x` have shape {x_shape[1:]} but the best model takes "
                         f"{expected}; pass data shaped like the data the search trained on.")
    epochs = int(fit_kwargs.pop("epochs", None) or refit_epochs(trial, settings))
    objective = tuner.oracle.objective
    monitor = objective.name[len("val_"):] if objective.name.startswith("val_") else objective.name
    callbacks = list(fit_kwargs.pop("callbacks", None) or [])
    # The search's budget where it had one (search(epochs=), Hyperband's max_epochs); otherwise, as in
    # the search, the epochs the fit trains (Keras' params["epochs"]: a HyperModel.fit may set its own).
    known = settings.get("epochs") or tuner._max_epochs
    span = max(epochs, tuner._total_epochs(settings)) if known else None
    decay = _schedules.decay_callback(tuner.options.lr_decay, hp, span, monitor, objective.direction)
    if decay is not None:
        callbacks.insert(0, decay)
    if "batch_size" not in fit_kwargs:
        batch_size = tuned_batch_size(hm, hp, settings)
        if batch_size:
            fit_kwargs["batch_size"] = batch_size
    fit_kwargs.setdefault("verbose", 0)
    hm.fit(hp, model, x, y, epochs=epochs, callbacks=callbacks, **fit_kwargs)
    return model
