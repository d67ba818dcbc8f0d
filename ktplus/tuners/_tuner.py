"""`ktplus.Tuner`: every ktplus option over `keras_tuner.Tuner`, with any
oracle. The four search algorithms are this class plus their oracle."""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from typing import Any

import keras_tuner

from ktplus._compat import (
    KERAS_TUNER_CALLBACKS,
    SaveBestEpoch,
    TrialStatus,
    TunerHooks,
    atomic_state_writes,
    is_consecutive_failure_error,
    local_oracle,
    saved_trials,
)
from ktplus._errors import invalid
from ktplus._facts import CURVES_DIR
from ktplus._objectives import create_objective
from ktplus._seed import check_seed, oracle_seed
from ktplus.evaluation._cv import CrossValidation, is_classifier
from ktplus.logging import SearchLogger
from ktplus.oracles._queue import TrialQueue
from ktplus.oracles._queue import attach as attach_queue
from ktplus.oracles._space import check_values
from ktplus.results import record_fit_settings, results_frame, write_meta
from ktplus.training import _schedules
from ktplus.training._pruning import CurveStore
from ktplus.tuners import _distributed
from ktplus.tuners._checkpoint import AtomicSaveBestEpoch
from ktplus.tuners._data_prep import adapt_hypermodel, training_data
from ktplus.tuners._fast_path import FastPath, has_known_fit
from ktplus.tuners._keep import check_num_models, prune_checkpoints
from ktplus.tuners._options import TunerOptions
from ktplus.tuners._oracles import adopt_oracle, retry_unrecorded
from ktplus.tuners._pack import data_allows, pack_size, packed_search, requeue_slots
from ktplus.tuners._recorder import TrialRecorder
from ktplus.tuners._validate import validate_search_inputs

_OPTIONS_DOC = """lr_decay: None, "exponential", "step", "cosine", "polynomial",
            "plateau" (on the objective), a dict such as
            `{{"schedule": "step", "factor": 0.5, "step_size": 5}}`, a
            `ktplus.LRDecay`, or "tune" to make the schedule and its
            parameters hyperparameters. Scales the learning rate of whatever
            optimizer the model was compiled with; logged as `learning_rate`.
        lr_warmup: Epochs of linear warmup before the schedule (with every
            form of `lr_decay`; with "tune" it fixes the warmup).
        early_stopping: None, True (patience 5), an int patience, a dict of
            `keras.callbacks.EarlyStopping` options or an EarlyStopping. It
            monitors the objective in its direction and restores the best
            weights.
        pruning: None, "median" (median stopping rule), "percentile" (keep the
            best quarter) or a `ktplus.Pruner`. A pruned trial is never
            promoted by Hyperband; BayesianOptimization learns it as no
            better than the worst fully trained trial.
        fast_path: True (default, every part), False (none), or a part's
            name or a list of them: "data" (numpy data as one cached,
            prefetched tf.data pipeline per search), "steps_per_execution",
            "checkpoint" (best-epoch weights written once per trial),
            "gc_freeze", "release_gradients", "pack" (same-shaped
            trials trained as one fused model; see ``pack``) ("trial_overhead" is
            "checkpoint" plus "gc_freeze"). Each part steps aside where it
            could change what user code sees (a custom `HyperModel.fit`
            gets exactly keras-tuner's arguments).
        tensorboard: True (default: `<directory>/<project_name>/tensorboard`),
            a directory, or False: every trial's scalars, HParams session and
            text, and a search overview.
        worker_timeout: In keras-tuner's distributed mode, seconds without a
            heartbeat after which the chief declares a worker lost and
            re-queues (once) or fails its trial, so the search still ends.
        cv: None (default), an int k >= 2 (stratified k-fold for a
            classifier, k-fold for regression, by the hypermodel's `task` as
            scikit-learn's `check_cv` decides; for another hypermodel,
            stratified for integer or string targets; shuffled with the
            tuner's seed) or a scikit-learn splitter (`GroupKFold`, ...; `search(...,
            groups=...)` reaches it). With cv, `search(x, y, epochs=...)`
            takes no validation data: each fold's held-out part is its
            validation data, a trial's score is the mean over its folds
            (`results()` adds `score_std` and `folds`), and pruning compares
            each fold with the same fold of other trials. Not with Hyperband.
        keep_checkpoints: None (default, keep every trial's checkpoint) or
            k: keep only the k best trials' checkpoints on disk, deleting
            the others as they fall out of the top k (`get_best_models(n)`
            then needs n <= k; Hyperband also keeps the parents of kept
            trials and trials a later round may still continue).
        pack: "auto" (default), or K: the fast path's "pack" part asks
            the oracle for up to K trials at once (as K workers would) and
            trains those whose models share a structure (ktplus's
            hypermodels: the same layers, widths up to masking) as one
            fused model with a member dimension, each member with its own
            learning rate and schedule, optimizer state, regularization,
            dropout, class weights, early stopping, pruning and NaN guard;
            every record of a trial is what it would be unfused. 1 is off.
            "auto" asks for up to 8 trials at once (4 for Bayesian
            optimization and `OptunaSearch`, which learn from finished
            trials), at most half of ``max_trials``, so later asks learn
            from, and are pruned against, earlier ones. A member joins a
            fused model only if padding it to the widest member costs at
            most twice its own compute. With `cv`, each fold trains
            the group fused (a member pruned in a fold ends its trial
            there); in a distributed search each worker packs its own
            trials. Steps aside for a custom `run_trial` or
            `HyperModel.fit`, a hypermodel not ktplus's,
            `executions_per_trial` > 1, a `distribution_strategy`, data
            the "data" part does not convert,
            `search()` callbacks with batch hooks or a Keras `TensorBoard`,
            and backends other than TensorFlow."""


def tuner_docstring(name: str, budget: str) -> str:
    """The docstring of ``ktplus.<name>`` (the options are the same for all)."""
    return f"""`keras_tuner.{name}` with ktplus's options: learning-rate decay,
    early stopping, pruning, a fast training path and TensorBoard logging.
    Takes every argument of `keras_tuner.{name}`; see `ktplus.Tuner`.

    Args:
        *args: Positional arguments of `keras_tuner.{name}` (hypermodel, ...).
        {_OPTIONS_DOC}
        **kwargs: Keyword arguments of `keras_tuner.{name}`.

    Each trial records `epochs_run`, `best_epoch` and `pruned` (and
    `pruned_epoch`) with its metrics; a NaN or infinite loss fails the trial.

    Example:

    >>> import tempfile
    >>> import ktplus
    >>> hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
    >>> tuner = ktplus.{name}(hm, objective="val_accuracy", {budget},
    ...     lr_decay="cosine", early_stopping=3, pruning="median",
    ...     directory=tempfile.mkdtemp())
    >>> tuner.early_stopping
    {{'patience': 3}}
    """


def _given_oracle(args: tuple, kwargs: dict) -> Any:
    """The oracle passed to a `ktplus.Tuner` (None for a search algorithm)."""
    return kwargs.get("oracle", args[0] if args and isinstance(args[0], keras_tuner.Oracle) else None)


def _given_hypermodel(args: tuple, kwargs: dict) -> Any:
    """The hypermodel passed to a `ktplus.Tuner` (after its oracle) or to a
    search algorithm (its first argument)."""
    position = 1 if _given_oracle(args, kwargs) is not None and "oracle" not in kwargs else 0
    return kwargs.get("hypermodel", args[position] if len(args) > position else None)


def _given_objective(args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """The tuner's objective (as keras-tuner will create it, the built-in
    "num_params" and "trial_seconds" included) and the value the user gave,
    from a tuner's or a search algorithm's arguments."""
    oracle = _given_oracle(args, kwargs)
    if isinstance(oracle, keras_tuner.Oracle):
        return oracle.objective, oracle.objective
    given = kwargs.get("objective", args[1] if len(args) > 1 else None)
    return create_objective(given), given


def _with_objective(args: tuple, kwargs: dict, objective: Any) -> tuple[tuple, dict]:
    """A search algorithm's arguments with its objective replaced by the
    created one: keras-tuner cannot infer the direction of the built-ins."""
    if _given_oracle(args, kwargs) is not None:
        return args, kwargs
    if "objective" in kwargs:
        return args, {**kwargs, "objective": objective}
    if len(args) > 1:
        return (args[0], objective, *args[2:]), kwargs
    return args, kwargs


def _check_shared_space(oracle: Any, hypermodel: Any, options: TunerOptions) -> None:
    """Refuses, before anything is written to the project directory, a
    search whose space differs from the one of the shared study its oracle
    joins (an `OptunaOracle` with ``storage``): the hypermodel given here is
    built once on a scratch space and the oracle compares it with the
    study's. keras-tuner reloads a project's saved space instead of building
    the given hypermodel, so a worker with another space joining the same
    project directory would otherwise run the study's configurations
    through its own build function."""
    check = getattr(oracle, "check_space", None)  # (an OptunaOracle; no other oracle has a shared study)
    if check is None or getattr(oracle, "storage", None) is None or hypermodel is None:
        return
    hp = oracle.get_space()  # the hyperparameters given to the oracle (fixed values, ...), a copy
    if isinstance(hypermodel, keras_tuner.HyperModel):
        hypermodel.declare_hyperparameters(hp)
        hypermodel.build(hp)
    else:  # a build function (keras-tuner wraps it the same way)
        hypermodel(hp)
    if isinstance(options.lr_decay, _schedules.TunedLRDecay):
        _schedules.declare_tuned_decay(hp, options.lr_decay)
    check(hp)


class Tuner(TunerHooks):
    __doc__ = f"""`keras_tuner.Tuner` with ktplus's options, over any oracle.

    A drop-in replacement: takes every argument of `keras_tuner.Tuner`
    (`oracle`, `hypermodel`, `directory`, ...) and runs user subclasses
    (custom `run_trial`, `HyperModel.fit` returning a History, a dict or a
    float) exactly as keras-tuner does, adding:

    Args:
        *args: Positional arguments of `keras_tuner.Tuner` (oracle, hypermodel).
        {_OPTIONS_DOC.replace("{{", "{").replace("}}", "}")}
        **kwargs: Keyword arguments of `keras_tuner.Tuner`.

    Example:

    >>> import tempfile
    >>> import keras_tuner
    >>> import ktplus
    >>> oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=2)
    >>> tuner = ktplus.Tuner(oracle=oracle,
    ...                      hypermodel=ktplus.DenseHyperModel(input_shape=(4,), num_classes=3),
    ...                      early_stopping=2, directory=tempfile.mkdtemp())
    >>> sorted(tuner.fast_path)[:2]
    ['checkpoint', 'data']
    """

    def __init__(
        self,
        *args: Any,
        lr_decay: Any = None,
        lr_warmup: int = 0,
        early_stopping: Any = None,
        pruning: Any = None,
        fast_path: Any = True,
        tensorboard: Any = True,
        worker_timeout: float = 60.0,
        cv: Any = None,
        keep_checkpoints: int | None = None,
        pack: Any = "auto",
        **kwargs: Any,
    ) -> None:
        # Everything is validated before keras-tuner touches the directory.
        options = TunerOptions.parse(lr_decay=lr_decay, lr_warmup=lr_warmup, early_stopping=early_stopping,
                                     pruning=pruning, fast_path=fast_path, tensorboard=tensorboard,
                                     worker_timeout=worker_timeout, cv=cv,
                                     keep_checkpoints=keep_checkpoints, pack=pack)
        if _given_hypermodel(args, kwargs) is None and type(self).run_trial is Tuner.run_trial:
            # keras-tuner's own check, which ktplus's run_trial would otherwise pass.
            raise ValueError("Received `hypermodel=None`. We only allow not specifying `hypermodel` if the "
                             "user defines the search space in `Tuner.run_trial()` by subclassing a `Tuner` "
                             "class without using a `HyperModel` instance.")
        objective, given = _given_objective(args, kwargs)
        options.check_objective(objective, given)
        args, kwargs = _with_objective(args, kwargs, objective)
        if options.cv is not None and (isinstance(self, keras_tuner.Hyperband) or isinstance(
                _given_oracle(args, kwargs), keras_tuner.oracles.HyperbandOracle)):
            raise invalid("cv", options.cv,
                          "None with Hyperband: its continuations resume one checkpoint per trial, and "
                          "cross-validation trains one model per fold; use cv with RandomSearch, "
                          "BayesianOptimization, GridSearch or ktplus.Tuner over another oracle")
        given_oracle = _given_oracle(args, kwargs)
        if kwargs.get("overwrite") and getattr(given_oracle, "storage", None) is not None:
            raise invalid("overwrite", kwargs["overwrite"],
                          "False with an oracle whose study lives in a shared storage: every worker joins "
                          "the shared study and project directory (overwrite=True would delete the other "
                          "workers' records); to start anew, use another study_name and project_name")
        directory = kwargs.get("directory")
        if directory is not None and "://" in os.fspath(directory):
            raise invalid("directory", directory,
                          "a local or mounted directory shared by every worker: ktplus writes its curves, "
                          "heartbeats and TensorBoard logs with local file operations (remote paths such "
                          "as gs://... are not supported)")
        self.options = options
        parameters, given_args = self._keras_tuner_arguments(args, kwargs)
        self._max_epochs = given_args.get("max_epochs")  # Hyperband's budget (workers cannot ask the oracle)
        # One seed, checked once: seed=0 is the seed 0 (keras-tuner's oracles would draw a random one).
        self._given_seed = check_seed(given_args.get("seed"))
        if self._given_seed is not None:
            if "seed" in kwargs:
                kwargs["seed"] = oracle_seed(self._given_seed)
            else:  # given by position
                at = parameters.index("seed")
                args = (*args[:at], oracle_seed(self._given_seed), *args[at + 1:])
        _check_shared_space(given_oracle, _given_hypermodel(args, kwargs), options)
        with atomic_state_writes(os.fspath(directory or ".")):
            super().__init__(*args, **_distributed.keep_shared_directory(kwargs))
            if local_oracle(self.oracle) is self.oracle:  # a worker's client oracle holds no trials
                retry_unrecorded(self.oracle)
        adopt_oracle(self.oracle)
        if isinstance(options.lr_decay, _schedules.TunedLRDecay):
            space = self.oracle.get_space()
            _schedules.declare_tuned_decay(space, options.lr_decay)
            self.oracle.update_space(space)
        tb = options.tensorboard
        self.tensorboard_dir: str | None = (os.path.join(self.project_dir, "tensorboard") if tb is True
                                            else (os.fspath(tb) if tb else None))
        self._curves = CurveStore(os.path.join(self.project_dir, CURVES_DIR))
        self._tb = (SearchLogger(self.tensorboard_dir, self.oracle.objective, self._curves)
                    if self.tensorboard_dir else None)
        self._fast = FastPath(options.fast_path)
        self._recorders: dict[str, TrialRecorder] = {}
        self._packed: dict[str, Any] = {}  # results of trials trained fused, until run_trial hands them on
        self._building: str | None = None  # the trial whose model is being built, when several are open
        #: The trials this tuner trained fused (``pack``), with the number of members of their model.
        self.packed_trials: dict[str, int] = {}
        self._cv: CrossValidation | None = None
        write_meta(self.project_dir, self.oracle.objective, type(self).__name__)
        # enqueue_trial: the queue lives with the oracle (a distributed worker's
        # oracle is a client of the chief's: it only validates).
        self._queue: TrialQueue | None = None
        if local_oracle(self.oracle) is self.oracle:
            self._queue = TrialQueue(self.project_dir)
            attach_queue(self.oracle, self._queue)

    def _keras_tuner_arguments(self, args: tuple, kwargs: dict) -> tuple[list[str], dict[str, Any]]:
        """The parameter names of the keras-tuner ``__init__`` this tuner
        calls (``keras_tuner.RandomSearch``'s, ...) and the arguments given,
        by name, positional ones included (``RandomSearch(hm, "val_loss", 3,
        0)`` gives ``seed=0``)."""
        try:
            signature = inspect.signature(super().__init__)
            bound = signature.bind_partial(*args, **kwargs)
        except TypeError:  # keras-tuner will refuse the arguments itself
            return [], dict(kwargs)
        return list(signature.parameters), {**bound.arguments, **kwargs}

    # -- the options, as attributes ------------------------------------------

    @property
    def lr_decay(self) -> Any:
        return self.options.lr_decay

    @property
    def early_stopping(self) -> Any:
        return self.options.early_stopping

    @property
    def pruner(self) -> Any:
        return self.options.pruner

    @property
    def fast_path(self) -> frozenset[str]:
        return self.options.fast_path

    @property
    def worker_timeout(self) -> float:
        return self.options.worker_timeout

    @property
    def search_seed(self) -> int | None:
        """The search's one seed: the ``seed`` the tuner was given
        (``seed=0`` included), else its oracle's (an `OptunaOracle` keeps a
        given 0; without one, the seed keras-tuner's oracle drew). The oracle
        samples with it, it shuffles the folds of ``cv`` (the same folds in
        every process of a distributed search given a seed) and seeds
        ``refit``."""
        if self._given_seed is not None:
            return self._given_seed
        seed = getattr(local_oracle(self.oracle), "seed", None)
        return None if seed is None else int(seed)

    @property
    def curves(self) -> CurveStore:
        """Per-trial objective curves, shared by all workers of a search."""
        return self._curves

    def results(self) -> Any:
        """The trials of this search as a pandas DataFrame, best first.

        Returns:
            One row per trial: ``trial_id``, ``status`` (completed, pruned,
            failed, ...), ``score``, ``epochs`` (run), ``best_epoch``, the
            hyperparameters and ``best/<metric>`` columns. With an oracle
            whose study lives in a shared storage, every worker's trials.
        """
        self._refresh_shared()
        space = [hp.name for hp in self.oracle.get_space().space]
        return results_frame(self.oracle.trials.values(), self.oracle.objective.name,
                             self.oracle.objective.direction, space)

    def pareto_front(self) -> Any:
        """The non-dominated completed trials, as a pandas DataFrame.

        A trial is on the front when no other completed trial is at least as
        good in every objective and better in one (each in its direction);
        pruned, failed and infeasible trials are left out. With a single
        objective the front is the best trial (and its ties).

        Returns:
            One row per trial on the front, best first by the first
            objective: ``trial_id``, one column per objective named by its
            metric (its value at the trial's best epoch; the trial's score
            for a single objective), then the hyperparameters. Empty, with
            the same columns, while no trial has completed.

        Example:

        >>> import tempfile
        >>> import ktplus
        >>> hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
        >>> tuner = ktplus.RandomSearch(hm, objective=["val_accuracy", "num_params"], max_trials=2,
        ...                             directory=tempfile.mkdtemp())
        >>> list(tuner.pareto_front().columns)[:3]
        ['trial_id', 'val_accuracy', 'num_params']
        """
        from ktplus._pareto import pareto_front_frame

        self._refresh_shared()
        space = [hp.name for hp in self.oracle.get_space().space]
        return pareto_front_frame(self.oracle.trials.values(), self.oracle.objective, space)

    def importance(self, method: str = "fanova") -> Any:
        """How much each tuned hyperparameter mattered to the score.

        Optuna's importance evaluator (``optuna.importance``) over an
        in-memory study of this search's fully trained trials: pruned,
        failed and infeasible trials, fixed values and conditional
        hyperparameters not active in every such trial are left out.

        Args:
            method: "fanova" (fANOVA, Optuna's default) or "ped_anova".

        Returns:
            A pandas DataFrame with ``hyperparameter`` and ``importance``
            (summing to 1), most important first; ``attrs["method"]``
            names the method.

        Raises:
            ValueError: with fewer than two completed trials, or no tuned
                hyperparameter.

        Example:

        ```python
        tuner.search(x, y, validation_split=0.2, epochs=5)
        tuner.importance()  # hyperparameter, importance: most important first
        ```
        """
        from ktplus.reporting import importance_frame

        self._refresh_shared()
        trials = getattr(self.oracle, "trials", None)
        if trials is None:  # a worker's oracle client: the chief's saved records
            from ktplus.reporting import importance as from_directory

            return from_directory(self.project_dir, method)
        return importance_frame(trials.values(), self.oracle.get_space(), self.oracle.objective.direction,
                                method)

    # -- the search ----------------------------------------------------------

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Runs the search, as `keras_tuner.Tuner.search` does.

        The inputs are checked before the first trial (a clear ValueError
        for data or an objective that cannot work); the fast path's data
        cache and garbage-collector freeze live for this call only, however
        it ends. With an oracle whose study lives in a shared storage, the
        trials this worker still holds when the search ends (it raised, or
        was interrupted) are told failed, so no other worker waits for them,
        and the other workers' records are read in afterwards.
        """
        groups = fit_kwargs.pop("groups", None)
        if self.options.cv is None:
            if groups is not None:
                raise invalid("groups", f"<{type(groups).__name__}>",
                              "None without cross-validation: `groups` reaches the cv splitter (e.g. "
                              "cv=GroupKFold(5)); set cv= on the tuner")
            validate_search_inputs(self, fit_args, fit_kwargs, self._runs_model_fit())
            cv = None
        else:
            cv = CrossValidation(self.options.cv, fit_args, fit_kwargs, groups, self.search_seed,
                                 classifier=is_classifier(self.hypermodel))
            first_args, first_kwargs = cv.fold_inputs(0, fit_args, fit_kwargs)
            validate_search_inputs(self, first_args, first_kwargs, self._runs_model_fit())
        adapt_hypermodel(self.hypermodel, fit_args, fit_kwargs, cv)
        record_fit_settings(self.project_dir, fit_kwargs)
        with contextlib.ExitStack() as stack:
            stack.callback(setattr, self, "_cv", None)
            self._cv = cv
            stack.enter_context(atomic_state_writes(self.project_dir))
            stack.enter_context(self._fast.search())
            stack.enter_context(_distributed.session(self))
            stack.callback(self._release_held)  # however the search ends (first of these to run)
            try:
                k = pack_size(self) if data_allows(fit_args, fit_kwargs) else 1
                requeue_slots(self, k)
                if k > 1:
                    packed_search(self, k, fit_args, fit_kwargs)
                else:
                    super().search(*fit_args, **fit_kwargs)
            except RuntimeError as e:
                if not is_consecutive_failure_error(e):
                    raise
                self._save_failed_trials()
                raise RuntimeError(self._failure_report(str(e).splitlines()[0])) from e
        self._refresh_shared()  # the readers after a search show every worker's trials
        self._rank_in_tensorboard()
        self._check_some_model_fits()

    def _runs_model_fit(self) -> bool:
        """Whether the trials pass search()'s data straight to ``model.fit``:
        keras-tuner's own run_trial and HyperModel.fit (or ktplus's)."""
        return (type(self).run_trial is Tuner.run_trial and self.hypermodel is not None
                and has_known_fit(self.hypermodel))

    def _save_failed_trials(self) -> None:
        """keras-tuner raises "too many consecutive failures" inside
        ``end_trial``, before it saves the last failed trial: its
        ``trial.json`` would still say RUNNING. It is saved as failed
        (``oracle.json`` is left as keras-tuner left it, so a resume retries
        the trial as keras-tuner does)."""
        oracle = local_oracle(self.oracle)
        if oracle is not self.oracle:  # a worker: the chief saves
            return
        for trial in oracle.trials.values():
            if trial.status == TrialStatus.FAILED:
                oracle._save_trial(trial)

    def _rank_in_tensorboard(self) -> None:
        """At the end of a search (in the process that holds the trials: not
        a distributed worker), the HParams experiment lists the most
        important hyperparameters first, as its default columns."""
        if self._tb is None or _distributed.is_worker():
            return
        try:
            frame = self.importance()
        except ValueError:  # fewer than two completed trials, or nothing tuned: nothing to rank
            return
        except Exception as e:  # logging must not stop a search
            warnings.warn(f"ktplus: hyperparameter importance failed: {e!r}", stacklevel=2)
            return
        self._tb.rank_hyperparameters(frame, self.oracle.get_space().space)

    def _check_some_model_fits(self) -> None:
        """After a search whose every trial was over ``max_model_size``: a
        RuntimeError (keras-tuner raises one for oversized models too; ktplus
        only waits until every trial was tried instead of counting them as
        consecutive failures)."""
        trials = list((getattr(self.oracle, "trials", None) or {}).values())  # a worker's client has none
        if trials and all(t.status == TrialStatus.STOPPED for t in trials):
            raise RuntimeError(
                f"Oversized model: every one of the {len(trials)} trials built a model over "
                f"max_model_size={self.max_model_size} parameters ({(trials[-1].message or '').strip()}); "
                "raise max_model_size or search smaller models")

    def _failure_report(self, headline: str) -> str:
        """keras-tuner's "too many consecutive failures", with every failed
        trial and its reason."""
        trials = getattr(self.oracle, "trials", None) or {}  # a worker's oracle client has none
        failed = [t for t in trials.values() if str(t.status) in ("FAILED", "INVALID")]
        lines = [f"{headline} The search stopped; failed trials:"]
        for t in failed:
            reason = (t.message or "no message").strip().splitlines()
            lines.append(f"  trial {t.trial_id}: {reason[-1] if reason else 'no message'}")
        return "\n".join(lines)

    def _recorder(self, trial: Any) -> TrialRecorder:
        recorder = self._recorders.get(trial.trial_id)
        if recorder is None:
            recorder = self._recorders[trial.trial_id] = TrialRecorder(self, trial)
        return recorder

    def _restart_recorder(self, trial: Any) -> TrialRecorder:
        """A fresh start of ``trial``'s records (a pack that could not train
        it hands it back to run alone)."""
        old = self._recorders.pop(trial.trial_id, None)
        if old is not None:
            old._close_loggers()
        return self._recorder(trial)

    def _owns_trial(self, trial_id: str) -> bool:
        """Whether this process may still write the trial's curve, checkpoint
        and TensorBoard session: not once the chief fenced it (keras-tuner's
        chief/worker mode), nor, with an oracle whose study lives in a shared
        storage, once another worker failed it as stale (this one stalled
        past the grace period): the study then says how it ended."""
        lost = getattr(self.oracle, "lost_to_another", None)  # (an oracle client in chief/worker mode has none)
        if lost is not None and lost(trial_id):
            return False
        return _distributed.owns_trial(self, trial_id)

    def _refresh_shared(self) -> None:
        """With an oracle whose study lives in a shared storage: every other
        worker's trial records, read again from the shared project directory,
        so the readers show the whole search (a no-op for other oracles)."""
        refresh = getattr(self.oracle, "refresh_shared", None)  # (an oracle client in chief/worker mode has none)
        if refresh is not None:
            refresh()

    def _release_held(self) -> None:
        """With an oracle whose study lives in a shared storage: its heartbeat
        threads stopped and every trial it still holds (asked but not ended,
        or waiting to be told) told failed, so a search that raised or was
        interrupted leaves no running trial the other workers wait for."""
        release = getattr(self.oracle, "release_held", None)  # (an oracle client in chief/worker mode has none)
        if release is None:
            return
        try:
            release()
        except Exception as e:  # (a storage gone: the trials go stale after the grace period instead)
            warnings.warn(f"ktplus: the trials this worker held could not be released ({e!r}); the other "
                          "workers fail them as stale after the grace period", stacklevel=2)

    def on_trial_begin(self, trial: Any) -> None:
        super().on_trial_begin(trial)
        self._recorders.pop(trial.trial_id, None)
        self._recorder(trial)

    @property
    def pack(self) -> int | str:
        """The ``pack`` option: "auto" or how many trials to train fused."""
        return self.options.pack

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        recorder = self._recorder(trial)
        if trial.trial_id in self._packed:  # trained fused with others (`ktplus.tuners._pack`)
            results = self._packed.pop(trial.trial_id)
            if isinstance(results, BaseException):
                recorder.fail(results)
                raise results
            return recorder.finish(results)
        with self._fast.trial():
            try:
                if self._cv is None:
                    results = super().run_trial(trial, *args, **kwargs)
                else:
                    results = self._run_folds(trial, self._cv, recorder, args, kwargs)
            except BaseException as error:
                recorder.fail(error)
                raise
        return recorder.finish(results)

    #: The keyword that carries a cross-validation fold's index from `_run_folds`, through keras-tuner's
    #: ``run_trial``, to `_fit_execution`, which takes it out before anything else sees the arguments.
    _FOLD_KWARG = "_ktplus_fold"

    def _run_folds(self, trial: Any, cv: CrossValidation, recorder: TrialRecorder, args: tuple,
                   kwargs: dict) -> list[Any]:
        """keras-tuner's ``run_trial`` once per fold of ``cv`` (each fold's
        executions as keras-tuner runs them, each told its fold); a pruned
        fold ends the trial."""
        results: list[Any] = []
        for fold in cv.folds:
            fold_args, fold_kwargs = cv.fold_inputs(fold.index, args, kwargs)
            out = super().run_trial(trial, *fold_args, **fold_kwargs, **{self._FOLD_KWARG: fold.index})
            results.extend(out if isinstance(out, list) else [out])
            if recorder.pruned:
                break
        return results

    def on_trial_end(self, trial: Any) -> None:
        recorder = self._recorders.pop(trial.trial_id, None)
        super().on_trial_end(trial)
        if recorder is not None and not recorder.finished:
            recorder.finish_from_trial(trial)
        prune_checkpoints(self)  # keep_checkpoints: after the oracle saved the trial
        if self._tb is not None and self._tb.marks_pareto:
            trials = getattr(self.oracle, "trials", None)  # a worker's oracle client has none: read
            if trials is None:  # the records the chief saved, this trial's included
                trials = saved_trials(self.project_dir)
            if trials is not None:  # (None: one being written; the next trial's end catches up)
                self._tb.mark_pareto(trials.values(), self.oracle.get_space().space)

    def get_best_models(self, num_models: int = 1) -> list[Any]:
        """The best trials' trained models, as `keras_tuner.Tuner.get_best_models`
        (a ValueError when ``num_models`` exceeds ``keep_checkpoints``)."""
        check_num_models(self, num_models)
        self._refresh_shared()
        return list(super().get_best_models(num_models))

    def _hyperband_budget(self) -> int | None:
        """Hyperband's ``max_epochs`` (None for the other tuners)."""
        max_epochs = self._max_epochs or getattr(self.oracle, "max_epochs", None)
        return int(max_epochs) if max_epochs else None

    def _total_epochs(self, kwargs: dict) -> int:
        """The epoch budget of a search fit with ``kwargs`` (what a refit replays)."""
        return int(self._hyperband_budget() or kwargs.get("epochs") or 1)

    def _fit_execution(self, trial: Any, fit: Any, args: tuple, kwargs: dict) -> Any:
        kwargs = dict(kwargs)
        fold = kwargs.pop(self._FOLD_KWARG, None)  # the cross-validation fold (None without cv)
        hp = trial.hyperparameters
        given = list(kwargs.get("callbacks", []))
        user_callbacks = [c for c in given if not isinstance(c, KERAS_TUNER_CALLBACKS)]
        callbacks = self._member_callbacks(trial, given, fold)
        with training_data(self.hypermodel, args, kwargs), \
                (contextlib.nullcontext() if fold is None else self._fast.fold(fold)), \
                self._fast.fit(self.hypermodel, hp, args, kwargs, user_callbacks) as (fit_args, fit_kwargs):
            fit_kwargs = {**fit_kwargs, "callbacks": callbacks}
            result = fit(*fit_args, **fit_kwargs)
        self._flush_checkpoints(trial, callbacks)
        return result

    def _member_callbacks(self, trial: Any, given: list[Any], fold: int | None = None) -> list[Any]:
        """Every callback of one execution of ``trial``: ktplus's, then
        ``given`` (keras-tuner's and the user's, its best-epoch checkpoint
        written atomically). The one place a fit's callbacks are made, for
        a trial trained alone or fused (`ktplus.tuners._pack`)."""
        recorder = self._recorder(trial)
        # The schedule spans Hyperband's whole budget (a round trains up to its own end epoch);
        # otherwise the epochs each fit trains, read from Keras (a HyperModel.fit may set its own).
        ours = recorder.execution_callbacks(trial.hyperparameters, self._hyperband_budget(), fold)
        for c in given:  # with cv: the checkpoint is the best epoch over all folds
            if isinstance(c, SaveBestEpoch) and recorder.checkpoint_best is not None:
                c.best_value = recorder.checkpoint_best
        theirs = [AtomicSaveBestEpoch(c, defer=self._fast.defer_checkpoint, may_write=recorder.owns)
                  if isinstance(c, SaveBestEpoch) else c for c in given]
        return [*ours, *theirs]

    def _flush_checkpoints(self, trial: Any, callbacks: list[Any]) -> None:
        """Writes a deferred best-epoch checkpoint once its fit has ended."""
        recorder = self._recorder(trial)
        for callback in callbacks:
            if isinstance(callback, AtomicSaveBestEpoch):
                callback.flush()
                recorder.checkpoint_best = callback.best_value

    def _trial_values(self, trial: Any) -> dict[str, float]:
        """The trial's parameter count and wall seconds so far (the built-in
        trial-level objectives), for a list objective's combined value."""
        return self._recorder(trial).trial_values()

    def _after_build(self, model: Any) -> Any:
        if self._building is not None:  # one of the trials of a pack
            recorder = self._recorders.get(self._building)
            if recorder is not None:
                recorder.built(model)
            return self._fast.after_build(model)
        for recorder in self._recorders.values():  # the trial being built (one at a time per process)
            if not recorder.finished:
                recorder.built(model)  # num_params, even when HyperModel.fit trains nothing
        return self._fast.after_build(model)

    # -- after the search: held-out evaluation and refit -----------------------

    def evaluate(self, x: Any, y: Any, num_models: int = 1) -> Any:
        """Scores the best models on held-out data with scikit-learn's metrics.

        Args:
            x: Held-out features, as the models take them.
            y: Held-out targets (integer class labels, one-hot labels or
                numbers).
            num_models: How many of the best trials' models to evaluate.

        Returns:
            A pandas DataFrame, one row per model, best first: ``trial_id``
            and, for classification, ``accuracy``, ``balanced_accuracy``,
            ``precision_macro``, ``recall_macro``, ``f1_macro``,
            ``f1_weighted``, ``roc_auc`` (one-vs-rest when multi-class) and
            ``log_loss``; for regression ``mae``, ``rmse`` and ``r2``.
            Each model's per-class table, confusion matrix and PR curves go
            to TensorBoard under its trial, its metrics to its HParams
            session as ``test/<metric>``.
        """
        from ktplus.evaluation import evaluate_trials

        self._refresh_shared()
        return evaluate_trials(self, x, y, num_models=num_models)

    def refit(self, x: Any, y: Any, **fit_kwargs: Any) -> Any:
        """Trains the best trial's configuration on all of ``x``, ``y``.

        The model is built with the best trial's hyperparameters and trained
        for its best number of epochs (the mean best epoch over folds with
        ``cv``), with the same learning-rate schedule and batch size, seeded
        with the tuner's seed.

        Args:
            x: All the training features (e.g. training plus validation).
            y: Their targets.
            **fit_kwargs: More `HyperModel.fit` arguments (``epochs`` given
                here replaces the best trial's epoch count).

        Returns:
            The trained `keras.Model`.
        """
        from ktplus.evaluation import refit_best

        self._refresh_shared()
        return refit_best(self, x, y, **fit_kwargs)

    # -- warm start --------------------------------------------------------------

    def enqueue_trial(self, values: dict[str, Any]) -> None:
        """Runs a configuration before the sampled ones (in call order).

        Args:
            values: Hyperparameter values by name. A partial dict takes the
                defaults for the rest (`ktplus.OptunaSearch`: the sampler's
                choice). The queue is saved in the project directory, so a
                resumed search keeps it; a resumed script that enqueues the
                same values again does not run them twice.

        Raises:
            ValueError: for a name the search space does not have or a
                value outside its hyperparameter's domain (at the call).

        Example:

        >>> import tempfile
        >>> import ktplus
        >>> hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, units=[16, 32])
        >>> tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=3,
        ...                             directory=tempfile.mkdtemp())
        >>> tuner.enqueue_trial({"units_0": 32})
        >>> tuner.enqueue_trial({"units_0": 7})
        Traceback (most recent call last):
        ...
        ValueError: Invalid value for argument `values`: expected 'units_0' to be one of [16, 32]; got 7. Received: values={'units_0': 7}
        """
        values = check_values(self.oracle.get_space(), values)
        if self._queue is not None:
            self._queue.add(values)
