"""A conformance check every hypermodel should pass (like scikit-learn's
``check_estimator``): ktplus runs it on each family, and users can run it on
their own hypermodels."""

from __future__ import annotations

import random
from typing import Any

import keras
import keras_tuner
import numpy as np

from ktplus.hypermodels import _prep
from ktplus.hypermodels._base import BaseHyperModel
from ktplus.hypermodels._knobs import NONE


def _fail(message: str) -> AssertionError:
    return AssertionError(f"check_hypermodel: {message}")


def sample_hyperparameters(
    space: keras_tuner.HyperParameters, rng: random.Random
) -> keras_tuner.HyperParameters:
    """A random, condition-respecting assignment of ``space`` (like
    keras-tuner's RandomSearch oracle does it)."""
    hps = keras_tuner.HyperParameters()
    for hp in space.space:
        hps.merge([hp])
        if hps.is_active(hp):
            hps.values[hp.name] = hp.random_sample(rng.randint(0, 2**31 - 1))
    return hps


def _synthetic_data(hypermodel: BaseHyperModel, n: int, rng: np.random.Generator) -> tuple[Any, Any]:
    x = rng.normal(size=(n, *hypermodel.input_shape)).astype("float32")
    if hypermodel.task == "regression":
        y = rng.normal(size=(n, hypermodel.num_outputs)).astype("float32")
    else:
        assert hypermodel.num_classes is not None
        y = rng.integers(0, hypermodel.num_classes, size=(n,))
    return x, y


def _check_options_reach_model(model: keras.Model, values: dict[str, Any]) -> None:
    layer_types = {type(layer).__name__ for layer in model.layers}
    if values.get("regularizer", NONE) != NONE and not model.losses:
        raise _fail(f"regularizer={values['regularizer']!r} gave no regularization loss")
    if values.get("regularizer", NONE) == NONE and model.losses:
        raise _fail("regularizer='none' but the model has regularization losses")
    if values.get("dropout", 0) > 0 and "Dropout" not in layer_types:
        raise _fail(f"dropout={values['dropout']} but the model has no Dropout layer")
    if values.get("dropout", 0) == 0 and "Dropout" in layer_types:
        raise _fail("dropout=0 but the model has a Dropout layer")
    if "batch_norm" in values and values["batch_norm"] != ("BatchNormalization" in layer_types):
        raise _fail(f"batch_norm={values['batch_norm']} not reflected in the model's layers")


def _check_prep_reaches_model(model: keras.Model, prep: dict[str, Any], x: Any) -> None:
    """Each data-preparation knob's layer is there when on and absent when
    off; inference is deterministic; training changes the input when an
    augmentation is on."""
    names = {layer.name for layer in model.layers}
    mode = prep.get("normalization", NONE)
    for norm in _prep.NORMALIZATIONS:
        if (norm == mode) != (norm in names):
            raise _fail(f"normalization={mode!r} but the model {'lacks' if norm == mode else 'has'} "
                        f"the {norm!r} layer")
    for knob in (*_prep.IMAGE_KNOBS, "augment_noise"):
        on = not _prep._is_off(prep.get(knob, 0))
        if on != (knob in names):
            raise _fail(f"{knob}={prep.get(knob)!r} but the model {'lacks' if on else 'has'} its layer")
    if x is None:
        return
    sample = np.asarray(x[:4], dtype="float32")
    if not np.array_equal(_prep.preview(model, sample, False), _prep.preview(model, sample, False)):
        raise _fail(f"data preparation is not deterministic at inference with {prep}")
    first = np.asarray(model(sample, training=False))
    if not np.array_equal(first, np.asarray(model(sample, training=False))):
        raise _fail(f"the model's predictions are not deterministic with {prep}")
    if any(n in names for n in _prep.AUGMENTATION_LAYERS):
        inference = _prep.preview(model, sample, False)
        if all(np.array_equal(_prep.preview(model, sample, True), inference) for _ in range(3)):
            raise _fail(f"augmentation is on ({prep}) but training leaves the input unchanged")


def expected_normalization(x: Any, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(mean, variance)`` a normalization layer must hold after
    training on ``x``, computed here with numpy from the rows themselves
    (not from the statistics the hypermodel computed): per channel (the
    last axis), the mean and variance ("standardize") or the minimum and the
    squared range ("minmax"), a constant channel's variance or range being 1
    (as scikit-learn's scalers do).

    Example:

    >>> import numpy as np
    >>> from ktplus.hypermodels._check import expected_normalization
    >>> expected_normalization(np.array([[0.0, 5.0], [2.0, 5.0]]), "minmax")
    (array([0., 5.]), array([4., 1.]))
    """
    rows = np.asarray(x, dtype="float64")
    rows = rows.reshape(-1, rows.shape[-1])
    if mode == "minmax":
        lo, span = rows.min(axis=0), np.ptp(rows, axis=0)
        return lo, np.square(np.where(span > 0, span, 1.0))
    variance = rows.var(axis=0)
    return rows.mean(axis=0), np.where(variance > 0, variance, 1.0)


def _check_statistics_loaded(model: keras.Model, x: Any) -> None:
    """The normalization layer holds the statistics of ``x``, the rows the
    model was just trained on, computed independently (`expected_normalization`)."""
    for layer in _prep.prep_layers(model):
        if not isinstance(layer, keras.layers.Normalization):
            continue
        for name, got, expected in zip(("mean", "variance"), (layer.adapt_mean, layer.adapt_variance),
                                       expected_normalization(x, layer.name)):
            got = np.asarray(keras.ops.convert_to_numpy(got), "float64").reshape(-1)
            if not np.allclose(got, expected.reshape(-1), rtol=1e-4, atol=1e-6):
                raise _fail(f"the {layer.name!r} layer does not hold the training data's statistics after fit: "
                            f"its {name} is {got.tolist()}, the {len(np.asarray(x))} training rows give "
                            f"{expected.reshape(-1).tolist()}")


def check_hypermodel(
    hypermodel: keras_tuner.HyperModel,
    *,
    n_samples: int = 5,
    seed: int = 0,
    train: bool = True,
    x: Any = None,
    y: Any = None,
) -> list[dict[str, Any]]:
    """Checks that a hypermodel builds, trains and round-trips its config.

    Builds with the default hyperparameters and then ``n_samples`` random
    assignments of the search space, and checks that: every build returns a
    compiled `keras.Model`; the same values give the same hyperparameter
    names (stable names); ``from_config(get_config())`` gives the same
    config; for ktplus hypermodels, the output shape fits the task and the
    regularizer, dropout and batch-norm values reach the model, each
    data-preparation knob's layer is there when on and absent when off,
    inference is deterministic and training changes the input when an
    augmentation is on, and the normalization layer holds the training
    data's statistics after ``fit`` (compared with numpy's mean and variance,
    or minimum and range, of the training rows); one training step gives a finite loss
    (on ``x``, ``y`` if given, else on synthetic data for ktplus
    hypermodels).

    Args:
        hypermodel: A `keras_tuner.HyperModel`.
        n_samples: Number of random hyperparameter assignments to build.
        seed: Seed of the sampling and of the synthetic data.
        train: Whether to run one training step per build.
        x: Optional training inputs (needed to train a non-ktplus hypermodel).
        y: Optional training targets.

    Returns:
        The hyperparameter values of every build, in order.

    Raises:
        AssertionError: naming the check that failed.

    Example:

    >>> import ktplus
    >>> hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
    >>> len(ktplus.check_hypermodel(hm, n_samples=1, train=False))
    2
    """
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    ours = isinstance(hypermodel, BaseHyperModel)
    if x is None and ours:
        x, y = _synthetic_data(hypermodel, 8, np_rng)

    if hasattr(hypermodel, "get_config"):
        try:
            config = hypermodel.get_config()
        except NotImplementedError:
            config = None
        if config is not None:
            clone = type(hypermodel).from_config(config)
            if clone.get_config() != config:
                raise _fail("from_config(get_config()) does not round-trip")

    space = keras_tuner.HyperParameters()
    hypermodel.build(space)
    names = sorted(hp.name for hp in space.space)
    again = keras_tuner.HyperParameters()
    hypermodel.build(again)
    if sorted(hp.name for hp in again.space) != names:
        raise _fail("building twice registered different hyperparameter names")

    all_values = []
    for i in range(n_samples + 1):
        hp = again if i == 0 else sample_hyperparameters(space, rng)
        keras.backend.clear_session()
        model = hypermodel.build(hp)
        for new in hp.space:  # builds may discover new hyperparameters
            if not space._exists(new.name, new.conditions):
                space.merge([new])
        if not isinstance(model, keras.Model):
            raise _fail(f"build() returned {type(model).__name__}, not a keras.Model")
        if model.optimizer is None or not getattr(model, "compiled", True):
            raise _fail(f"the model built for {hp.values} is not compiled")
        values = dict(hp.values)
        if ours:
            assert isinstance(hypermodel, BaseHyperModel)
            expected = (hypermodel.num_outputs if hypermodel.task == "regression"
                        else 1 if hypermodel.output_activation == "sigmoid"
                        else hypermodel.num_classes)
            if model.output_shape[-1] != expected:
                raise _fail(f"output shape {model.output_shape} for {values}, expected last dim {expected}")
            _check_options_reach_model(model, values)
            _check_prep_reaches_model(model, hypermodel.prep_values(hp), x)
        if train and x is not None:
            history = hypermodel.fit(hp, model, x, y, epochs=1, verbose=0)
            loss = history.history["loss"][-1]
            if not np.isfinite(loss):
                raise _fail(f"non-finite loss {loss} after one step with {values}")
            if ours:
                _check_statistics_loaded(model, x)
        all_values.append(values)
    return all_values
