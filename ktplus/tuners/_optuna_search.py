"""ktplus.OptunaSearch: `ktplus.Tuner` over an `OptunaOracle`."""

from __future__ import annotations

from typing import Any

from ktplus._errors import invalid
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

    With ``storage``, the study lives in an Optuna storage and any number of
    worker processes (on one machine or many, sharing the project
    directory) run the same search with no chief: each asks the shared
    study for its next trial, trains it with every ktplus option, keeps its
    heartbeat and epoch curve (intermediate values) in the storage while it
    trains, and tells the study how it ended. ``max_trials`` counts the
    study's trials across all workers. A worker that dies or stalls past
    ``grace_period`` has its trial failed as stale by the next worker that
    asks and re-run once, with the same hyperparameters, by one of them; a
    stalled worker that comes back stops without telling. With a storage,
    each worker samples with its own generator, so configurations are not
    reproducible (``seed`` still fixes the folds of ``cv`` and ``refit``);
    TPE runs with ``constant_liar=True`` there (Optuna's advice for parallel
    workers). When several workers ask for the last trials of the budget at
    once, the surplus asks are told FAIL at once with the ``ktplus:surplus``
    system attribute (the study may list a few more trials than
    ``max_trials``; ktplus's count does not). A search that raises or is
    interrupted tells the study every trial its process still holds as
    failed. A worker whose hypermodel builds another search space, a project
    of the other storage mode or study name, and ``overwrite=True`` are
    refused before anything is written.

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
        storage: None (default: the study in memory, the search's state in
            ``oracle.json``), a database URL (``sqlite:///search.db``,
            ``postgresql://user:password@host/db``, ``mysql://...``: an
            `optuna.storages.RDBStorage` with Optuna's heartbeats), a journal
            file path (`optuna.storages.JournalStorage`, for processes on one
            machine or a shared file system; ktplus records its heartbeats
            in the trials), or any `optuna.storages.BaseStorage`. An
            unreachable database, refused credentials, or a study of that
            name made by another objective or search space is a ValueError
            before any trial.
        study_name: The shared study's name; None: ``project_name``.
        heartbeat_interval: With ``storage``: seconds between a running
            trial's heartbeats (a given RDBStorage keeps its own settings).
        grace_period: With ``storage``: seconds without a heartbeat after
            which a trial is stale. None: twice ``heartbeat_interval``.
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
        storage: Any = None,
        study_name: str | None = None,
        heartbeat_interval: int = 60,
        grace_period: int | None = None,
        **kwargs: Any,
    ) -> None:
        seed = check_seed(seed)
        self.seed = seed
        if storage is not None:
            if kwargs.get("overwrite"):
                raise invalid("overwrite", kwargs["overwrite"],
                              "False with storage=: every worker joins the shared study and project "
                              "directory (overwrite=True would delete the other workers' records); to "
                              "start anew, use another study_name and project_name")
            if study_name is None:
                study_name = kwargs.get("project_name") or "untitled_project"
        oracle = OptunaOracle(objective=objective, max_trials=max_trials, sampler=sampler, seed=seed,
                              hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
                              allow_new_entries=allow_new_entries, max_retries_per_trial=max_retries_per_trial,
                              max_consecutive_failed_trials=max_consecutive_failed_trials,
                              storage=storage, study_name=study_name,
                              heartbeat_interval=heartbeat_interval, grace_period=grace_period)
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
        self._given_seed = seed
