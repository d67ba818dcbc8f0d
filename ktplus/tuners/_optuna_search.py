"""ktplus.OptunaSearch: `ktplus.Tuner` over an `OptunaOracle`."""

from __future__ import annotations

from typing import Any

from ktplus._seed import check_seed
from ktplus.oracles import OptunaOracle
from ktplus.tuners._tuner import _OPTIONS_DOC, Tuner


class OptunaSearch(Tuner):
    __doc__ = f"""Hyperparameter search with Optuna's samplers (TPE, CMA-ES, GP,
    QMC, random, NSGA-II) inside keras-tuner.

    Takes every argument of `keras_tuner.RandomSearch` and every ktplus
    option; each configuration is asked from an Optuna sampler and each
    ended trial is told back (its objective values, its epoch curve as
    intermediate values, pruned, failed, or infeasible when its model is
    over ``max_model_size``). A killed search resumed with
    ``overwrite=False`` continues with the sampler knowing every finished
    trial; in keras-tuner's chief/worker mode the sampler lives on the chief.

    Args:
        hypermodel: A `keras_tuner.HyperModel` or a model-building function.
        objective: A metric name, a `keras_tuner.Objective`, or a list of
            them (a multi-objective search: see `pareto_front()`); the
            built-in "num_params" and "trial_seconds" (both minimized) need
            no compiled metric.
        max_trials: The number of trials.
        sampler: "tpe" (default: multivariate TPE handling conditional
            hyperparameters; Optuna's multi-objective TPE with several
            objectives), "cmaes", "gp" (needs PyTorch: ``pip install
            'ktplus[gp]'``), "qmc", "random", "nsga2" (two or more
            objectives), or any `optuna.samplers.BaseSampler` instance.
        seed: The search's one seed (``seed=0`` included): it seeds a named
            sampler (the same seed gives the same sequence of configurations
            in a single-process search), the folds of ``cv`` and ``refit``.
            None: a random seed, drawn once (`search_seed` tells it).
        hyperparameters: As keras-tuner's tuners.
        tune_new_entries: As keras-tuner's tuners.
        allow_new_entries: As keras-tuner's tuners.
        max_retries_per_trial: As keras-tuner's tuners.
        max_consecutive_failed_trials: As keras-tuner's tuners.
        {_OPTIONS_DOC.replace("{{", "{").replace("}}", "}")}
        **kwargs: Keyword arguments of `keras_tuner.Tuner` (``directory``,
            ``project_name``, ``max_model_size``, ``overwrite``, ...).

    Example:

    >>> import tempfile
    >>> import ktplus
    >>> hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
    >>> tuner = ktplus.OptunaSearch(hm, objective="val_accuracy", max_trials=2,
    ...     sampler="tpe", seed=1, directory=tempfile.mkdtemp())
    >>> type(tuner.oracle.sampler).__name__
    'TPESampler'
    """

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        max_trials: int = 10,
        sampler: Any = "tpe",
        seed: int | None = None,
        hyperparameters: Any = None,
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        **kwargs: Any,
    ) -> None:
        seed = check_seed(seed)
        self.seed = seed
        oracle = OptunaOracle(objective=objective, max_trials=max_trials, sampler=sampler, seed=seed,
                              hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
                              allow_new_entries=allow_new_entries, max_retries_per_trial=max_retries_per_trial,
                              max_consecutive_failed_trials=max_consecutive_failed_trials)
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
        self._given_seed = seed
