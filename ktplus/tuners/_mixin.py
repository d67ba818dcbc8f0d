"""The options every ktplus tuner adds to its keras-tuner base class,
written once: learning-rate decay, early stopping, pruning, the NaN guard,
the fast training path, TensorBoard logging, input validation, crash-safe
state and the distributed-mode heartbeat."""

from __future__ import annotations

import gc
import math
import os
import time
import warnings
from typing import Any

import keras
import keras_tuner
from keras_tuner.src.engine import objective as objective_module
from keras_tuner.src.engine.tuner_utils import SaveBestEpoch, average_metrics_dicts

from ktplus.hypermodels._base import BaseHyperModel
from ktplus.hypermodels._knobs import invalid
from ktplus.logging import SearchLogger, TrialLogger, trial_run_dir
from ktplus.logging._hparams import session_hparams
from ktplus.results import results_frame, write_meta
from ktplus.training import _schedules
from ktplus.training._callbacks import NaNGuard, make_early_stopping, parse_early_stopping
from ktplus.training._checkpoint import AtomicSaveBestEpoch
from ktplus.training._data import MAX_STEPS_PER_EXECUTION, DataCache, uses_batch_hooks
from ktplus.training._memory import gradient_registry_snapshot, release_trial_gradients
from ktplus.training._pruning import CurveStore, PruningCallback, parse_pruning
from ktplus.tuners import _distributed
from ktplus.tuners._validate import validate_search_inputs

FAST_PARTS = ("data", "steps_per_execution", "trial_overhead")
#: Callbacks keras-tuner adds itself (epoch-level only).
_KT_CALLBACKS = ("TunerCallback", "SaveBestEpoch")
CURVES_DIR = "ktplus_curves"
#: Trial facts recorded under their own names (the rest as best/<metric>).
_FACTS = ("epochs_run", "best_epoch", "pruned", "pruned_epoch")


def parse_fast_path(value: Any) -> frozenset[str]:
    """``fast_path=``: True (all parts), False, "data", "steps_per_execution",
    "trial_overhead" or a list of parts."""
    expected = "True, False, 'data', 'steps_per_execution', 'trial_overhead' or a list of those"
    if value is True:
        return frozenset(FAST_PARTS)
    if value is False or value is None:
        return frozenset()
    parts = [value] if isinstance(value, str) else value
    if not isinstance(parts, (list, tuple)) or not all(p in FAST_PARTS for p in parts):
        raise invalid("fast_path", value, expected)
    return frozenset(parts)


def tuner_docstring(name: str, budget: str) -> str:
    """The docstring of ``ktplus.<name>`` (the options are the same for all)."""
    return f"""`keras_tuner.{name}` plus learning-rate decay, early stopping, pruning
    and a fast training path. Takes every argument of `keras_tuner.{name}`.

    Args:
        *args: Positional arguments of `keras_tuner.{name}` (hypermodel, ...).
        lr_decay: None, "exponential", "step", "cosine", "polynomial",
            "plateau" (on the objective), a dict such as
            `{{"schedule": "step", "factor": 0.5, "step_size": 5}}`, a
            `ktplus.LRDecay`, or "tune" to make the schedule and its
            parameters hyperparameters. Scales the learning rate of whatever
            optimizer the model was compiled with; logged as `learning_rate`.
        lr_warmup: Epochs of linear warmup before the schedule.
        early_stopping: None, True (patience 5), an int patience, a dict of
            `keras.callbacks.EarlyStopping` options or an EarlyStopping. It
            monitors the objective in its direction and restores the best
            weights.
        pruning: None, "median" (median stopping rule), "percentile" (keep the
            best quarter) or a `ktplus.Pruner`.
        fast_path: True (default): numpy data becomes one cached, prefetched
            tf.data pipeline per search, `steps_per_execution` is raised
            when no callback needs batch-level hooks and the best-epoch
            checkpoint is written once per trial ("trial_overhead", which
            also keeps keras-tuner's per-trial garbage collections cheap);
            one part's name or a list of them; False for none.
        tensorboard: True (default: `<directory>/<project_name>/tensorboard`),
            a directory, or False: every trial's scalars, HParams session and
            text, and a search overview.
        worker_timeout: In keras-tuner's distributed mode, seconds without a
            heartbeat after which the chief declares a worker lost and
            re-queues (once) or fails its trial, so the search still ends.
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


class _Execution:
    """What one execution of a trial needs to be summarized afterwards."""

    def __init__(self, curves: PruningCallback, logger: TrialLogger | None) -> None:
        self.curves = curves
        self.logger = logger


class TunerOptionsMixin:
    """Adds ktplus's options to a keras-tuner tuner class.

    Must come before the keras-tuner class in the bases. All keras-tuner
    arguments pass through unchanged.
    """

    oracle: Any
    hypermodel: Any
    project_dir: str

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
        **kwargs: Any,
    ) -> None:
        # Validate everything before keras-tuner touches the directory.
        self.lr_decay = _schedules.parse_lr_decay(lr_decay, lr_warmup)
        self.early_stopping = parse_early_stopping(early_stopping)
        self.pruner = parse_pruning(pruning)
        self.fast_path = parse_fast_path(fast_path)
        if isinstance(worker_timeout, bool) or not isinstance(worker_timeout, (int, float)) or not (
                worker_timeout > 0):
            raise invalid("worker_timeout", worker_timeout, "a number of seconds > 0")
        self.worker_timeout = float(worker_timeout)
        self._max_epochs = kwargs.get("max_epochs")  # Hyperband's budget (workers cannot ask the oracle)
        if not (tensorboard is None or isinstance(tensorboard, (bool, str, os.PathLike))) or tensorboard == "":
            raise invalid("tensorboard", tensorboard,
                          "True (<directory>/<project_name>/tensorboard), False/None, or a directory path")
        objective = kwargs.get("objective", args[1] if len(args) > 1 else None)
        obj = objective_module.create_objective(objective)
        single = not isinstance(obj, objective_module.MultiObjective) and not isinstance(
            obj, objective_module.DefaultObjective)
        needs_metric = {"early_stopping": self.early_stopping is not None,
                        "lr_decay": self.lr_decay == "tune" or getattr(self.lr_decay, "schedule", None)
                        == "plateau"}
        for arg, used in needs_metric.items():
            if used and not single:
                raise invalid(arg, early_stopping if arg == "early_stopping" else lr_decay,
                              "an objective that is one metric name or keras_tuner.Objective "
                              f"(received objective={objective!r})")
        if self.pruner is not None and isinstance(obj, objective_module.DefaultObjective):
            raise invalid("pruning", pruning, f"an objective to prune on (received objective={objective!r})")
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        if self.lr_decay == "tune":
            space = self.oracle.get_space()
            _schedules.declare_tuned_decay(space)
            self.oracle.update_space(space)
        if tensorboard is True:
            tensorboard = os.path.join(self.project_dir, "tensorboard")
        self.tensorboard_dir: str | None = os.fspath(tensorboard) if tensorboard else None
        self._tb = (SearchLogger(self.tensorboard_dir, self.oracle.objective, self.curves)
                    if self.tensorboard_dir else None)
        self._data = DataCache()
        self._executions: dict[str, list[_Execution]] = {}
        write_meta(self.project_dir, self.oracle.objective, type(self).__name__)
        self._next_steps_per_execution = 1

    def results(self) -> Any:
        """The trials of this search as a pandas DataFrame, best first.

        Returns:
            One row per trial: ``trial_id``, ``status`` (completed, pruned,
            failed, ...), ``score``, ``epochs`` (run), ``best_epoch``, the
            hyperparameters and ``best/<metric>`` columns.
        """
        space = [hp.name for hp in self.oracle.get_space().space]
        return results_frame(self.oracle.trials.values(), self.oracle.objective.name,
                             self.oracle.objective.direction, space)

    # -- keras-tuner hooks --------------------------------------------------

    @property
    def curves(self) -> CurveStore:
        """Per-trial objective curves, shared by all workers of a search."""
        return CurveStore(os.path.join(self.project_dir, CURVES_DIR))

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Runs the search (see the keras-tuner base class).

        With the "trial_overhead" part of the fast path, the objects alive
        when the search starts (TensorFlow's modules, the data) are moved out
        of the garbage collector's scans for its duration (``gc.freeze``):
        the collections keras-tuner runs before every build then cost
        milliseconds instead of ~0.3 s.
        """
        validate_search_inputs(self, fit_args, fit_kwargs)
        freeze = "trial_overhead" in self.fast_path and not gc.get_freeze_count()
        if freeze:
            gc.collect()
            gc.freeze()
        helper: Any = None
        if _distributed.is_chief():
            helper = _distributed.WorkerMonitor(self.oracle, self.project_dir, self.worker_timeout,
                                                interval=min(2.0, self.worker_timeout / 4))
        elif _distributed.is_worker():
            helper = _distributed.Heartbeat(self.project_dir, os.environ["KERASTUNER_TUNER_ID"],
                                            interval=min(5.0, self.worker_timeout / 4))
            helper.beat()
        if helper is not None:
            helper.start()
        try:
            if _distributed.is_chief():
                with _distributed.fast_chief():
                    super().search(*fit_args, **fit_kwargs)  # type: ignore[misc]
            else:
                super().search(*fit_args, **fit_kwargs)  # type: ignore[misc]
        except RuntimeError as e:
            if "consecutive failures" not in str(e):
                raise
            raise RuntimeError(self._failure_report(str(e).splitlines()[0])) from e
        finally:
            if helper is not None:
                helper.stop()
            if freeze:
                gc.unfreeze()

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

    def on_search_end(self) -> None:
        super().on_search_end()  # type: ignore[misc]
        self._data = DataCache()  # the cached pipelines live for one search

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        gradients_before = gradient_registry_snapshot()
        try:
            return self._run_trial(trial, *args, **kwargs)
        finally:
            release_trial_gradients(gradients_before)

    def _run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        self._executions[trial.trial_id] = []
        start = time.time()
        if self._tb is not None:
            self._tb.start_trial(trial.trial_id)
        try:
            histories = super().run_trial(trial, *args, **kwargs)  # type: ignore[misc]
        except BaseException as error:
            executions = self._executions.pop(trial.trial_id, [])
            for ex in executions:
                ex.curves.finish("failed")
                if ex.logger is not None:
                    ex.logger.close()  # fit raised: Keras never called on_train_end
            if self._tb is not None and isinstance(error, Exception):
                self._log_trial(trial, "failed", self._trial_facts(executions), start)
            raise
        finally:
            for ex in self._executions.get(trial.trial_id, []):
                if ex.logger is not None:
                    ex.logger.close()
        executions = self._executions.pop(trial.trial_id, [])
        if not isinstance(histories, list) or len(histories) != len(executions) or not all(
                isinstance(h, keras.callbacks.History) for h in histories):
            return histories  # a subclass reported something else
        if not all(self._has_objective(h) for h in histories):
            for ex in executions:  # e.g. validation_freq > epochs run: keras-tuner decides
                ex.curves.finish("failed")
            return histories
        results = []
        for history, ex in zip(histories, executions):
            pruned = ex.curves.pruned_epoch is not None
            ex.curves.finish("pruned" if pruned else "completed")
            results.append(self._summarize(history, pruned, ex.curves.pruned_epoch))
        if self._tb is not None:
            merged = average_metrics_dicts(results)
            status = "pruned" if merged.get("pruned") else "completed"
            metrics = {**self._trial_facts(executions), **{
                k if k in _FACTS else f"best/{k}": v for k, v in merged.items()}}
            metrics["score"] = float(self.oracle.objective.get_value(merged))
            self._log_trial(trial, status, metrics, start)
        return results

    def _has_objective(self, history: keras.callbacks.History) -> bool:
        logs = history.history
        for i in range(len(history.epoch)):
            try:
                value = float(self.oracle.objective.get_value({k: v[i] for k, v in logs.items()}))
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if math.isfinite(value):
                return True
        return False

    def _trial_facts(self, executions: list[_Execution]) -> dict[str, float]:
        """Last-epoch values, parameter count and epochs, averaged."""
        loggers = [ex.logger for ex in executions if ex.logger is not None]
        facts: dict[str, float] = {}
        if not loggers:
            return facts
        lasts = [{f"last/{k}": v for k, v in lg.last_logs.items() if k != "epoch_seconds"}
                 for lg in loggers if lg.last_logs]
        if lasts:
            facts.update(average_metrics_dicts(lasts))
        facts["epochs_run"] = sum(lg.epochs for lg in loggers) / len(loggers)
        params = [lg.num_params for lg in loggers if lg.num_params is not None]
        if params:
            facts["num_params"] = float(params[0])
        return facts

    def _log_trial(self, trial: Any, status: str, metrics: dict[str, float], start: float) -> None:
        assert self._tb is not None
        try:
            self._tb.end_trial(trial, status, metrics, start, self.oracle.get_space().space)
        except Exception as e:  # logging must never fail a trial
            warnings.warn(f"ktplus: TensorBoard logging of trial {trial.trial_id} failed: {e!r}",
                          stacklevel=2)

    def _summarize(self, history: keras.callbacks.History, pruned: bool,
                   pruned_epoch: int | None) -> dict[str, float]:
        """Metrics at the best epoch (as keras-tuner records them), plus
        epochs run, the best epoch and whether the trial was pruned."""
        obj = self.oracle.objective
        logs = history.history
        epochs = list(history.epoch)
        values = []
        for i in range(len(epochs)):
            try:
                values.append(float(obj.get_value({k: v[i] for k, v in logs.items()})))
            except (KeyError, IndexError):
                values.append(math.nan)
        finite = [i for i, v in enumerate(values) if math.isfinite(v)]
        best_i = (max if obj.direction == "max" else min)(finite, key=lambda i: values[i]) if finite else len(epochs) - 1
        result = {k: float(v[best_i]) for k, v in logs.items() if len(v) > best_i}
        result["epochs_run"] = float(len(epochs))
        result["best_epoch"] = float(epochs[best_i] + 1) if epochs else 0.0
        result["pruned"] = 1.0 if pruned else 0.0
        if pruned_epoch is not None:
            result["pruned_epoch"] = float(pruned_epoch + 1)
        return result

    def _batch_size(self, hp: keras_tuner.HyperParameters, kwargs: dict) -> int | None:
        if (isinstance(self.hypermodel, BaseHyperModel)
                and self.hypermodel.knobs.get("batch_size") is not None and "batch_size" in hp.values):
            return int(hp.values["batch_size"])
        return kwargs.get("batch_size")

    def _total_epochs(self, kwargs: dict) -> int:
        max_epochs = self._max_epochs or getattr(self.oracle, "max_epochs", None)  # Hyperband's budget
        return int(max_epochs or kwargs.get("epochs") or 1)

    def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        hp = trial.hyperparameters
        obj = self.oracle.objective
        user_callbacks = [c for c in kwargs.get("callbacks", []) if type(c).__name__ not in _KT_CALLBACKS]
        self._next_steps_per_execution = 1
        if "data" in self.fast_path and DataCache.applicable(args, kwargs):
            batch_size = self._batch_size(hp, kwargs) or 32
            args, kwargs = self._data.convert(args, kwargs, batch_size)
            if "steps_per_execution" in self.fast_path and not any(
                    uses_batch_hooks(c) for c in user_callbacks):
                self._next_steps_per_execution = min(MAX_STEPS_PER_EXECUTION,
                                                     self._data.steps_per_epoch(batch_size))
        ours: list[keras.callbacks.Callback] = []
        decay = (_schedules.decay_from_hp(hp) if self.lr_decay == "tune" else self.lr_decay)
        if isinstance(decay, _schedules.LRDecay):
            ours.append(_schedules.LearningRateDecay(
                decay, self._total_epochs(kwargs), monitor=obj.name, mode=obj.direction))
        if self.early_stopping is not None:
            ours.append(make_early_stopping(self.early_stopping, obj))
        parent = hp.values.get("tuner/trial_id")
        curves = PruningCallback(self.pruner, self.curves, trial.trial_id, obj,
                                 initial_curve=self.curves.read(parent) if parent else None)
        ours.append(curves)
        executions = self._executions.setdefault(trial.trial_id, [])
        logger = None
        if self.tensorboard_dir:
            run_dir = trial_run_dir(self.tensorboard_dir, trial.trial_id)
            multi = getattr(self, "executions_per_trial", 1) > 1
            logger = TrialLogger(
                os.path.join(run_dir, f"execution_{len(executions)}") if multi else run_dir,
                run_dir if not executions else None,
                session_hparams(hp, "running"),
            )
            ours.append(logger)
        # Last of ours: the failing epoch is still logged and recorded.
        ours.append(NaNGuard(["loss", *self._objective_names()]))
        executions.append(_Execution(curves, logger))
        defer = "trial_overhead" in self.fast_path
        theirs = [AtomicSaveBestEpoch(c, defer=defer) if isinstance(c, SaveBestEpoch) else c
                  for c in kwargs.get("callbacks", [])]
        kwargs["callbacks"] = [*ours, *theirs]
        return super()._build_and_fit_model(trial, *args, **kwargs)  # type: ignore[misc]

    def _objective_names(self) -> list[str]:
        obj = self.oracle.objective
        if isinstance(obj, objective_module.MultiObjective):
            return [o.name for o in obj.objectives]
        return [] if isinstance(obj, objective_module.DefaultObjective) else [obj.name]

    def _try_build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        model = super()._try_build(hp)  # type: ignore[misc]
        if self._next_steps_per_execution > 1 and getattr(model, "steps_per_execution", 1) == 1:
            model.steps_per_execution = self._next_steps_per_execution
        return model
