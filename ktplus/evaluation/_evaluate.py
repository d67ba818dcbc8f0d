"""`tuner.evaluate`: the search's best models scored on held-out data, their
records written to TensorBoard (`ktplus.evaluation._tb`) and to the project
(`ktplus.evaluation._heldout` scores and saves; this module joins the two)."""

from __future__ import annotations

import numbers
import os
from typing import Any

from ktplus._atomic import atomic_write_json
from ktplus._errors import invalid
from ktplus.evaluation._heldout import (
    EVALUATION_FILE,
    _check_data,
    _check_model,
    _check_sample_shape,
    _json_ready,
    _score,
    best_trials,
    evaluation_frame,
)
from ktplus.evaluation._tb import write_evaluation


def _check_num_models(num_models: Any) -> int:
    if isinstance(num_models, bool) or not isinstance(num_models, numbers.Integral) or num_models < 1:
        raise invalid("num_models", num_models, "an integer >= 1: how many of the best trials' models to "
                      "evaluate")
    return int(num_models)


def _hypermodel_input_shape(tuner: Any) -> tuple[int, ...] | None:
    from ktplus.hypermodels._base import BaseHyperModel

    hypermodel = getattr(tuner, "hypermodel", None)
    return hypermodel.input_shape if isinstance(hypermodel, BaseHyperModel) else None


def _load_models(tuner: Any, trials: list[Any]) -> list[Any]:
    models = []
    for trial in trials:
        try:
            models.append(tuner.load_model(trial))
        except (OSError, ValueError) as e:
            raise ValueError(f"evaluate(): the model of trial {trial.trial_id} could not be loaded from its "
                             f"checkpoint ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                             "evaluate fewer models (num_models) or re-run the search") from e
    return models


def evaluate_trials(tuner: Any, x: Any, y: Any, num_models: int = 1) -> Any:
    """Scores a search's best models on held-out data (``tuner.evaluate``).

    Every input is checked before any model predicts or anything is
    written. Then each model is scored with scikit-learn's metrics (see
    `evaluate_model`), its records go to TensorBoard under its trial's run
    (unless the tuner logs none): the metrics as ``test/<metric>`` scalars
    of its HParams session, and, for classification, the per-class table as
    text, the confusion matrix as an image and one PR curve per class. The
    whole evaluation is saved to ``<project_dir>/ktplus_evaluation.json``
    (see `load_evaluation`). Evaluating again replaces the previous records.

    Args:
        tuner: A ktplus tuner whose search has completed trials.
        x: Held-out features, as the models take them.
        y: Held-out targets: integer class labels (shape ``(n,)`` or
            ``(n, 1)``), one-hot rows, or numbers for regression.
        num_models: How many of the best trials' models to evaluate (all
            the completed ones when fewer have completed).

    Returns:
        A pandas DataFrame, one row per model, best first: ``trial_id`` and,
        for classification, ``accuracy``, ``balanced_accuracy``,
        ``precision_macro``, ``recall_macro``, ``f1_macro``,
        ``f1_weighted``, ``roc_auc`` (one-vs-rest when multi-class; NaN
        where undefined) and ``log_loss``; for regression ``mae``, ``rmse``
        and ``r2``.

    Raises:
        ValueError: before any prediction or write, for a bad
            ``num_models``, a search without a completed trial, empty ``x``,
            ``x`` and ``y`` of different lengths, ``x`` whose samples do not
            have the model's input shape, or ``y`` that does not fit the
            model's output.

    Example:

    ```python
    tuner.search(x_train, y_train, validation_data=(x_val, y_val))
    tuner.evaluate(x_test, y_test, num_models=3)
    ```
    """
    num_models = _check_num_models(num_models)
    from ktplus.tuners._keep import check_num_models  # lazily: ktplus.tuners imports this package

    check_num_models(tuner, num_models)
    trials = best_trials(tuner, num_models)
    data = _check_data(x, y)
    input_shape = _hypermodel_input_shape(tuner)
    if input_shape is not None:
        _check_sample_shape(data, [(None, input_shape)], "the hypermodel")
    models = _load_models(tuner, trials)
    heads = [_check_model(model, data, f"the model of trial {t.trial_id}") for model, t in zip(models, trials)]
    if len({h.task for h in heads}) > 1:
        raise ValueError("evaluate(): the best models do not share a task (classification and regression); "
                         "evaluate them one at a time with num_models=1")
    scored = [_score(model, data, head) for model, head in zip(models, heads)]
    task = heads[0].task
    record = {
        "task": task,
        "n_samples": data.n,
        "models": [{"trial_id": t.trial_id, **{k: v for k, v in s.record.items() if k != "task"}}
                   for t, s in zip(trials, scored)],
    }
    tensorboard_dir = getattr(tuner, "tensorboard_dir", None)
    if tensorboard_dir:
        objective = getattr(tuner.oracle.objective, "name", "objective")
        write_evaluation(tensorboard_dir, record, scored, tuner.oracle.get_space().space, objective)
    atomic_write_json(os.path.join(tuner.project_dir, EVALUATION_FILE), _json_ready(record))
    return evaluation_frame(record)
