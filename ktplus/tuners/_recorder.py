"""One trial's records, owned in one place: its start (a clean TensorBoard
run), the callbacks of each execution (curve, scalars), the models it
builds (their parameter count), and its end — completed, pruned, failed or
infeasible (a model over ``max_model_size``) — with the trial facts, the
curve's final state and the HParams session."""

from __future__ import annotations

import copy
import os
import time
import warnings
import weakref
from typing import Any

import keras

from ktplus import _facts
from ktplus._compat import (
    OversizedModelError,
    average_metrics_dicts,
    convert_to_metrics_dict,
    objective_names,
)
from ktplus._objectives import epoch_objective
from ktplus.hypermodels._base import BaseHyperModel
from ktplus.logging import TrialLogger, trial_run_dir
from ktplus.logging._hparams import session_hparams
from ktplus.training import _schedules
from ktplus.training._callbacks import NaNGuard, make_early_stopping
from ktplus.training._pruning import PruningCallback


class _FencedCurves:
    """The tuner's curve store, read as usual, written only while this
    process owns the trial (a stalled distributed worker must not overwrite
    the curve of the worker that re-runs its trial)."""

    def __init__(self, store: Any, owns: Any) -> None:
        self._store = store
        self._owns = owns

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def write(self, *args: Any, **kwargs: Any) -> None:
        if self._owns():
            self._store.write(*args, **kwargs)


class _Execution:
    def __init__(self, curves: PruningCallback, logger: TrialLogger | None, fold: int | None) -> None:
        self.curves = curves
        self.logger = logger
        self.fold = fold


def _fold_facts(histories: list[keras.callbacks.History], executions: list[_Execution],
                objective: Any) -> dict[str, float]:
    """``score_std`` and ``folds`` of a cross-validated trial: the spread
    over the folds of their best-epoch objective values (each fold's value
    averaged over its executions), as numpy's ``std``."""
    import numpy as np

    by_fold: dict[int | None, list[float]] = {}
    for history, ex in zip(histories, executions):
        try:
            value = float(objective.get_value(convert_to_metrics_dict(history, objective)))
        except (KeyError, TypeError, ValueError):
            continue
        by_fold.setdefault(ex.fold, []).append(value)
    scores = [float(np.mean(v)) for v in by_fold.values()]
    if not scores:
        return {}
    return {_facts.SCORE_STD: float(np.std(scores)), _facts.FOLDS: float(len(scores))}


def _with_facts(history: keras.callbacks.History, curves: PruningCallback,
                extra: dict[str, float] | None = None) -> keras.callbacks.History:
    """A copy of ``history`` with the trial facts (and ``extra``, each a
    constant) as per-epoch series, so keras-tuner reads them at the best
    epoch like every metric."""
    n = max((len(v) for v in history.history.values()), default=0)
    epochs = list(getattr(history, "epoch", None) or ())
    if len(epochs) != n:  # a hand-made History may lack its epochs
        epochs = list(range(n))
    series: dict[str, list[float]] = {
        _facts.EPOCHS_RUN: [float(n)] * n,
        _facts.BEST_EPOCH: [float(e + 1) for e in epochs],
        _facts.PRUNED: [1.0 if curves.pruned_epoch is not None else 0.0] * n,
    }
    if curves.pruned_epoch is not None:
        series[_facts.PRUNED_EPOCH] = [float(curves.pruned_epoch + 1)] * n
    for name, value in (extra or {}).items():
        series[name] = [value] * n
    out = copy.copy(history)
    out.history = {**history.history, **series}
    return out


class TrialRecorder:
    """Start, executions and end of one trial of a ktplus tuner.

    Args:
        tuner: The `ktplus.Tuner` running the trial.
        trial: The keras-tuner `Trial`.
    """

    def __init__(self, tuner: Any, trial: Any) -> None:
        self.tuner = tuner
        self.trial = trial
        self.start = time.time()
        self.executions: list[_Execution] = []
        self.finished = False
        #: The best objective value any fold's checkpoint holds (with cv the
        #: checkpoint is the best epoch over all folds).
        self.checkpoint_best: float | None = None
        #: Set when the trial's model was over ``max_model_size``.
        self.oversized: OversizedModelError | None = None
        self._num_params: int | None = None
        self._unbuilt: Any = None  # a weak reference to a model built on its first batch
        if tuner._tb is not None:
            tuner._tb.start_trial(trial.trial_id)

    @property
    def _objective(self) -> Any:
        return self.tuner.oracle.objective

    @property
    def pruned(self) -> bool:
        """Whether any execution (any fold) of the trial was pruned."""
        return any(ex.curves.pruned_epoch is not None for ex in self.executions)

    def owns(self) -> bool:
        """False once a distributed chief gave this trial to another worker."""
        return bool(self.tuner._owns_trial(self.trial.trial_id))

    def built(self, model: keras.Model) -> None:
        """Records the parameter count of a model the trial built (a custom
        ``HyperModel.fit`` may train nothing); a model that builds on its
        first batch is counted once it has."""
        try:
            self._num_params = int(model.count_params())
        except ValueError:
            try:
                self._unbuilt = weakref.ref(model)
            except TypeError:
                pass

    @property
    def num_params(self) -> int | None:
        """The parameter count of the trial's model (``model.count_params()``,
        as the ``num_params`` fact), None if it never was built."""
        if self._num_params is None and self._unbuilt is not None:
            model = self._unbuilt()
            if model is not None:
                try:
                    self._num_params = int(model.count_params())
                except ValueError:
                    pass
        if self._num_params is None:
            counted = [ex.logger.num_params for ex in self.executions
                       if ex.logger is not None and ex.logger.num_params is not None]
            if counted:
                self._num_params = counted[0]
        return self._num_params

    def trial_values(self) -> dict[str, float]:
        """The trial-level values (the built-in objectives): the parameter
        count and the wall seconds of the whole trial so far."""
        values = {_facts.TRIAL_SECONDS: time.time() - self.start}
        if self.num_params is not None:
            values[_facts.NUM_PARAMS] = float(self.num_params)
        return values

    def execution_callbacks(self, hp: Any, total_epochs: int | None,
                            fold: int | None = None) -> list[keras.callbacks.Callback]:
        """ktplus's callbacks for one execution (a fresh set each time); the
        learning-rate schedule spans ``total_epochs`` (None: the epochs the
        fit trains), and ``fold`` is the cross-validation fold it trains
        (None without cv)."""
        options = self.tuner.options
        obj = self._objective
        ours: list[keras.callbacks.Callback] = []
        decay = _schedules.decay_callback(options.lr_decay, hp, total_epochs, obj.name, obj.direction)
        if decay is not None:
            ours.append(decay)
        if options.early_stopping is not None:
            ours.append(make_early_stopping(options.early_stopping, obj))
        parent = hp.values.get("tuner/trial_id")
        store = self.tuner._curves
        fenced: Any = _FencedCurves(store, self.owns)
        curves = PruningCallback(options.pruner, fenced, self.trial.trial_id, obj,
                                 initial_curve=store.read(parent) if parent else None, fold=fold)
        ours.append(curves)
        logger = None
        if self.tuner.tensorboard_dir:
            run_dir = trial_run_dir(self.tuner.tensorboard_dir, self.trial.trial_id)
            scalars_dir = run_dir if fold is None else os.path.join(run_dir, f"fold_{fold}")
            if getattr(self.tuner, "executions_per_trial", 1) > 1:
                index = sum(1 for ex in self.executions if ex.fold == fold)
                scalars_dir = os.path.join(scalars_dir, f"execution_{index}")
            logger = TrialLogger(scalars_dir, run_dir if not self.executions else None,
                                 session_hparams(hp, "running"), preview=self._preview_sample())
            ours.append(logger)
        # Last of ours: the failing epoch is still logged and recorded.
        ours.append(NaNGuard(["loss", *objective_names(obj)]))
        self.executions.append(_Execution(curves, logger, fold))
        return ours

    def _preview_sample(self) -> Any:
        """A few raw training images for the augmentation preview, when the
        hypermodel can augment images (None otherwise)."""
        hm = self.tuner.hypermodel
        if not isinstance(hm, BaseHyperModel) or hm.statistics is None:
            return None
        if not any(spec.augments_images for spec in hm.prep_specs()):
            return None
        return hm.statistics.sample

    def _close_loggers(self) -> None:
        for ex in self.executions:
            if ex.logger is not None:
                ex.logger.close()  # a fit that raised never reached on_train_end

    def fail(self, error: BaseException) -> None:
        """The trial raised: curves end "failed", the session says so
        ("infeasible" for a model over ``max_model_size``)."""
        self.finished = True
        self._close_loggers()
        if isinstance(error, OversizedModelError):
            self.oversized = error
        if not self.owns():
            return
        for ex in self.executions:
            ex.curves.finish(_facts.FAILED)
        if isinstance(error, Exception):
            self._log(_facts.INFEASIBLE if self.oversized else _facts.FAILED, self._logger_facts())

    def finish(self, results: Any) -> Any:
        """The trial returned ``results``: records its facts and returns the
        results keras-tuner should see (Histories carry the facts)."""
        self.finished = True
        self._close_loggers()
        if not self.owns():
            return results
        histories = (isinstance(results, list) and len(results) == len(self.executions)
                     and all(isinstance(h, keras.callbacks.History) for h in results))
        pruned = self.pruned
        if histories and not all(self._has_objective(h) for h in results):
            for ex in self.executions:  # e.g. validation_freq > epochs run: keras-tuner decides
                ex.curves.finish(_facts.FAILED)
            return results
        for ex in self.executions:
            ex.curves.finish(_facts.PRUNED if ex.curves.pruned_epoch is not None else _facts.COMPLETED)
        values = self.trial_values()
        if histories:
            results = [_with_facts(h, ex.curves, _missing(values, h.history))
                       for h, ex in zip(results, self.executions)]
            if any(ex.fold is not None for ex in self.executions):
                folds = _fold_facts(results, self.executions, self._objective)
                results = [_with_facts(h, ex.curves, folds) for h, ex in zip(results, self.executions)]
        else:
            results = self._with_values(results, values)
        try:
            merged = convert_to_metrics_dict(results, self._objective) if results is not None else {}
        except Exception:  # keras-tuner reports unusable results itself
            merged = {}
        metrics = {**self._logger_facts(),
                   **{k if k in _facts.FACTS else f"best/{k}": float(v) for k, v in (merged or {}).items()
                      if _is_number(v)}}
        try:
            metrics["score"] = float(self._objective.get_value(merged))
        except (KeyError, TypeError, ValueError):
            pass
        self._log(_facts.PRUNED if pruned else _facts.COMPLETED, metrics)
        return results

    def finish_from_trial(self, trial: Any) -> None:
        """The trial ended without reaching ktplus's ``run_trial`` (a
        subclass overrode it): its session holds what the trial recorded."""
        self.finished = True
        status = _facts.status_of(trial)
        metrics = {f"best/{name}": float(trial.metrics.get_best_value(name))
                   for name in trial.metrics.metrics if trial.metrics.get_best_value(name) is not None}
        if trial.score is not None:
            metrics["score"] = float(trial.score)
        self._log(_facts.FAILED if status in (_facts.FAILED, "invalid") else status, metrics)

    @staticmethod
    def _with_values(results: Any, values: dict[str, float]) -> Any:
        """Results that are not Histories, with the trial-level values: each
        dict of metrics gets those it lacks. A float (the objective's value)
        stays a float: code that post-processes the results sees the types
        its ``HyperModel.fit`` returned."""
        if isinstance(results, list):
            return [TrialRecorder._with_values(r, values) for r in results]
        if isinstance(results, dict):
            return {**_missing(values, results), **results}
        return results

    def _has_objective(self, history: keras.callbacks.History) -> bool:
        epoch_level = epoch_objective(self._objective)  # ktplus adds the trial-level values itself
        if epoch_level is None:
            return True
        names = objective_names(epoch_level) or [epoch_level.name]
        return all(any(v is not None for v in history.history.get(n, [])) for n in names)

    def _logger_facts(self) -> dict[str, float]:
        """Last-epoch values, parameter count and epochs run, averaged over
        the executions."""
        loggers = [ex.logger for ex in self.executions if ex.logger is not None]
        facts: dict[str, float] = {}
        if not loggers:
            return facts
        lasts = [{f"last/{k}": v for k, v in lg.last_logs.items() if k != "epoch_seconds"}
                 for lg in loggers if lg.last_logs]
        if lasts:
            facts.update(average_metrics_dicts(lasts))
        facts[_facts.EPOCHS_RUN] = sum(lg.epochs for lg in loggers) / len(loggers)
        if self.num_params is not None:
            facts[_facts.NUM_PARAMS] = float(self.num_params)
        return facts

    def _log(self, status: str, metrics: dict[str, float]) -> None:
        tb = self.tuner._tb
        if tb is None:
            return
        try:
            tb.end_trial(self.trial, status, metrics, self.start, self.tuner.oracle.get_space().space)
        except Exception as e:  # logging must never fail a trial
            warnings.warn(f"ktplus: TensorBoard logging of trial {self.trial.trial_id} failed: {e!r}",
                          stacklevel=2)


def _missing(values: dict[str, float], present: Any) -> dict[str, float]:
    """The entries of ``values`` that ``present`` (a dict of results) lacks:
    a value the trial reported itself is kept."""
    return {k: v for k, v in values.items() if k not in present}


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True
