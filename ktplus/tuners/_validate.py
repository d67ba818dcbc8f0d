"""Fail fast: check what ``search()`` is given before any trial starts."""

from __future__ import annotations

from typing import Any

import numpy as np

from ktplus._compat import DefaultObjective, objective_names, random_state_kept
from ktplus._objectives import is_trial_level
from ktplus.datasets import non_finite
from ktplus.hypermodels._base import BaseHyperModel


def _array(a: Any) -> np.ndarray | None:
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "shape") and hasattr(a, "dtype") and not hasattr(a, "element_spec"):
        try:
            return np.asarray(a)
        except Exception:
            return None
    return None


def _check_finite(name: str, a: np.ndarray) -> None:
    found = non_finite(a)
    if found:
        raise ValueError(f"search(): `{name}` contains NaN or inf ({found[0]} values, first in "
                         f"sample {found[1]}). Clean or impute the data before searching.")


def _check_pair(xname: str, x: np.ndarray, yname: str, y: np.ndarray) -> None:
    if len(x) != len(y):
        raise ValueError(f"search(): `{xname}` has {len(x)} samples but `{yname}` has {len(y)}; "
                         "they must have one entry per sample.")


def _check_against_hypermodel(hm: BaseHyperModel, x: np.ndarray, y: np.ndarray, where: str) -> None:
    if tuple(x.shape[1:]) != tuple(hm.input_shape):
        raise ValueError(f"search(): the samples of `{where}x` have shape {tuple(x.shape[1:])} but the "
                         f"hypermodel's input_shape is {hm.input_shape}; reshape the data or build the "
                         "hypermodel with the data's shape.")
    if hm.task == "regression":
        shape = tuple(y.shape[1:])
        if shape not in ((hm.num_outputs,), ()) or (shape == () and hm.num_outputs != 1):
            raise ValueError(f"search(): `{where}y` has targets of shape {shape} but the hypermodel has "
                             f"num_outputs={hm.num_outputs}.")
        return
    if hm.loss is not None or hm.num_classes is None:
        return  # a custom loss may take other label formats
    labels = y.reshape(len(y), -1)
    if labels.shape[1] != 1:
        raise ValueError(f"search(): `{where}y` must hold one integer class label per sample (0 to "
                         f"{hm.num_classes - 1}), got shape {y.shape}; one-hot labels need "
                         "loss='categorical_crossentropy'.")
    if labels.dtype.kind not in "biuf" or (labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0)):
        raise ValueError(f"search(): `{where}y` must hold integer class labels 0 to "
                         f"{hm.num_classes - 1}, got dtype {y.dtype}.")
    lo, hi = labels.min(), labels.max()
    if lo < 0 or hi >= hm.num_classes:
        raise ValueError(f"search(): `{where}y` has labels from {lo:g} to {hi:g} but num_classes="
                         f"{hm.num_classes} allows 0 to {hm.num_classes - 1}.")


def validate_search_inputs(tuner: Any, args: tuple, kwargs: dict, runs_model_fit: bool) -> None:
    """Raises one clear ValueError for data or an objective that cannot work.

    ``runs_model_fit``: whether the trials pass ``search()``'s data straight
    to ``model.fit`` (keras-tuner's own ``run_trial`` and ``HyperModel.fit``,
    or ktplus's): only then is the objective checked against the metrics of
    a model built with the default hyperparameters."""
    x = _array(args[0] if args else kwargs.get("x"))
    y = _array(args[1] if len(args) > 1 else kwargs.get("y"))
    val = kwargs.get("validation_data")
    xv = yv = None
    if isinstance(val, (tuple, list)) and len(val) >= 2:
        xv, yv = _array(val[0]), _array(val[1])
    hm = tuner.hypermodel
    pairs = [("x", x, "y", y, ""), ("validation_data[0]", xv, "validation_data[1]", yv, "validation ")]
    for xname, xa, yname, ya, where in pairs:
        for name, a in ((xname, xa), (yname, ya)):
            if a is not None and (a.ndim == 0 or len(a) == 0):
                arg = "validation_data" if where else name
                raise ValueError(f"search(): `{arg}` holds no samples (`{name}` has shape {a.shape}); pass at "
                                 "least one sample" + (", or use validation_split=0.2 instead" if where else ""))
        if xa is None or ya is None:
            continue
        _check_pair(xname, xa, yname, ya)
        _check_finite(xname, xa)
        _check_finite(yname, ya)
        if isinstance(hm, BaseHyperModel):
            _check_against_hypermodel(hm, xa, ya, where)

    obj = tuner.oracle.objective
    if isinstance(obj, DefaultObjective) or x is None or not runs_model_fit:
        return  # a custom run_trial or HyperModel.fit decides what it trains on and reports
    # The built-in objectives ("num_params", "trial_seconds") are measured by
    # ktplus itself: no data split or compiled metric to check.
    names = [name for name in objective_names(obj) if not is_trial_level(name)]
    has_validation = val is not None or bool(kwargs.get("validation_split"))
    for name in names:
        if name.startswith("val_") and not has_validation:
            raise ValueError(f"search(): the objective {name!r} is measured on validation data, but none "
                             "was given: pass validation_data=(x_val, y_val) or validation_split=0.2, or "
                             f"use the objective {name[4:]!r}.")
    if y is None or len(x) == 0:
        return
    _check_metrics(tuner, x, y, names)


def _quick_inputs(x: np.ndarray, y: np.ndarray) -> tuple[Any, ...]:
    """``evaluate``'s inputs for a quick check of ``x``/``y``: on TensorFlow,
    numeric arrays as one batch of a ``tf.data`` dataset, of the dtypes
    Keras' array adapter (and the fast path's data part) gives them, so no
    adapter pipeline function is traced; else the arrays."""
    import keras

    from ktplus.training._data import DataCache, _to_tensor

    if keras.backend.backend() != "tensorflow" or not DataCache.applicable((x, y), {}):
        return (x, y)
    import tensorflow as tf

    return (tf.data.Dataset.from_tensors((_to_tensor(x), _to_tensor(y))),)


def _evaluate_default(tuner: Any, hp: Any, x: np.ndarray, y: np.ndarray, quick: bool) -> dict[str, Any]:
    """The default model's metrics on ``x``/``y``: quick (eagerly, see
    `_quick_inputs`), or as a trial evaluates (traced, from the arrays)."""
    model = tuner._build_hypermodel(hp)  # applies the tuner's own loss/optimizer/metrics
    if quick:
        model.run_eagerly = True
        return dict(model.evaluate(*_quick_inputs(x, y), verbose=0, return_dict=True))
    return dict(model.evaluate(x, y, verbose=0, return_dict=True))


def _check_metrics(tuner: Any, x: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    """Builds the default model once and evaluates it on two samples: the
    data must fit the model, and the objective must be one of its metrics.
    The evaluation runs eagerly (tracing a test function and Keras' array
    pipeline for two samples costs a good part of a second; the trials trace
    their own anyway); an error is confirmed by evaluating a fresh model as
    keras-tuner's trials would, traced, from the arrays (so a model that runs
    only traced is not refused, and the message is the one it gives).
    The tuner's ``max_model_size`` is not applied: an oversized default
    configuration is skipped as a trial, while others may fit. Every global
    random state is put back as it was: a seeded search trains exactly as
    keras-tuner's would."""
    import keras

    hp = tuner.oracle.get_space()
    with random_state_kept():
        try:
            try:
                logs = _evaluate_default(tuner, hp, x[:2], y[:2], quick=True)
            except Exception:
                keras.backend.clear_session(free_memory=False)
                logs = _evaluate_default(tuner, hp, x[:2], y[:2], quick=False)
        except Exception as e:
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"search(): the data does not fit the model built with the default "
                             f"hyperparameters: {type(e).__name__}: {message}") from e
        finally:
            keras.backend.clear_session(free_memory=False)
    available = sorted(logs)
    for name in names:
        base = name[4:] if name.startswith("val_") else name
        if base not in logs:
            raise ValueError(f"search(): the objective {name!r} is not among the model's metrics "
                             f"({', '.join(available)}); compile the metric (ktplus hypermodels: "
                             f"metrics=[...]) or pick one of those (with 'val_' for validation).")
