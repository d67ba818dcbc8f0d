"""The fast path's "pack" part: trials whose models share a structure,
trained together as one fused model (`ktplus.training._fused`).

The tuner asks its oracle for up to K trials at once, as K workers would
(each under a tuner id of its own: keras-tuner's oracles keep one ongoing
trial per id, Optuna's samplers take parallel asks), builds each trial's
model as usual, groups those whose models fuse, and trains every group of
two or more as one model. Each member keeps its own callbacks, exactly the
ones its unfused trial gets (ktplus's schedule, early stopping, pruning,
TensorBoard and NaN guard; keras-tuner's checkpoint; copies of
``search()``'s callbacks), called at every epoch with its own logs and an
ordinary model of its configuration holding its current weights; its
results then take keras-tuner's usual path (``run_trial`` returns them),
so every record is the unfused trial's. A trial that does not fuse with
another runs alone, as without pack.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import keras
import keras_tuner

from ktplus._compat import TrialStatus, local_oracle, requeue_ongoing, save_build_config, trial_callbacks
from ktplus.hypermodels._base import BaseHyperModel
from ktplus.hypermodels._metrics import make_metric
from ktplus.training._data import KERAS_DEFAULT_BATCH_SIZE, DataCache, uses_batch_hooks
from ktplus.training._fused import (
    FusedModel,
    MemberPlan,
    class_weight_vector,
    fusion_groups,
    member_logs,
    member_plan,
    member_targets,
)
from ktplus.tuners._fast_path import build_for_fit, tuned_batch_size

#: ``pack="auto"``: how many trials one ask takes at most. Oracles that do
#: not learn from finished trials lose little by proposing many at once;
#: those that learn (Bayesian optimization, Optuna's samplers) propose
#: fewer, as a few workers would. Either way at most half the trial budget:
#: the later asks learn from, and are pruned against, the earlier ones.
AUTO_PACK = 8
AUTO_PACK_ADAPTIVE = 4


def _adaptive(oracle: Any) -> bool:
    from ktplus.oracles._optuna_oracle import OptunaOracle

    return isinstance(oracle, (keras_tuner.oracles.BayesianOptimizationOracle, OptunaOracle))


def pack_size(tuner: Any) -> int:
    """The number of trials ``tuner`` asks for at once (1: pack steps
    aside: off, not ktplus's hypermodel, a custom ``run_trial`` or
    ``HyperModel.fit``, several executions per trial, the chief of a
    distributed search (it trains nothing; each worker packs), a
    ``distribution_strategy`` (the fused model is not built under it, and
    keras-tuner's multi-worker mode has several processes share one tuner
    id, while the chief takes a pack's slots as one process's), or a
    backend other than TensorFlow)."""
    from ktplus.tuners import _distributed

    value = tuner.options.pack
    if "pack" not in tuner.fast_path or "data" not in tuner.fast_path or value == 1:
        return 1
    hm = tuner.hypermodel
    if (not tuner._runs_model_fit() or not isinstance(hm, BaseHyperModel) or getattr(tuner, "executions_per_trial", 1) != 1
            or _distributed.is_chief() or getattr(tuner, "distribution_strategy", None) is not None
            or keras.backend.backend() != "tensorflow"):
        return 1
    if value == "auto":
        oracle = local_oracle(tuner.oracle)
        size = AUTO_PACK_ADAPTIVE if _adaptive(oracle) else AUTO_PACK
        budget = getattr(oracle, "max_trials", None)
        if isinstance(budget, int) and budget > 0:
            size = min(size, max(2, math.ceil(budget / 2)))
        return size
    return int(value)


def _callbacks_allow(callbacks: list[Any]) -> bool:
    """Whether ``search()``'s callbacks can be given to each member: epoch
    hooks only (a batch hook needs the steps of one model), and no Keras
    ``TensorBoard`` (it writes the graph and steps of the model it trains)."""
    return not any(uses_batch_hooks(c) or isinstance(c, keras.callbacks.TensorBoard) for c in callbacks)


def data_allows(fit_args: tuple, fit_kwargs: dict) -> bool:
    """Whether ``search()``'s data can be trained on by a fused model: what
    the fast path's data part converts (numpy arrays), without sample
    weights (each member's come from its class weights)."""
    if fit_kwargs.get("sample_weight") is not None:
        return False
    val = fit_kwargs.get("validation_data")
    if val is not None and (not isinstance(val, (tuple, list)) or len(val) != 2):
        return False
    if fit_kwargs.get("validation_freq", 1) != 1:
        return False
    return DataCache.applicable(fit_args, fit_kwargs) and _callbacks_allow(list(fit_kwargs.get("callbacks", [])))


def slot_id(tuner_id: str, slot: int) -> str:
    """The tuner id the ``slot``-th trial of a pack is asked under."""
    return tuner_id if slot == 0 else f"{tuner_id}-pack{slot}"


def requeue_slots(tuner: Any, k: int) -> None:
    """Trials still ongoing under slot ids this search will not ask with
    (an earlier ``search()`` of this tuner, interrupted, asked for more at
    once) go back to the oracle's retry queue, so they run now instead of
    holding their places forever. A distributed worker has nothing to do:
    the chief holds the trials, and re-queues those still held under the
    worker's slot ids when the worker asks under its own id (it does so only
    to start a new pack, whatever its K: `ktplus.tuners._distributed`)."""
    oracle = local_oracle(tuner.oracle)
    if oracle is not tuner.oracle:  # a distributed worker: the chief holds the trials
        return
    prefix = f"{tuner.tuner_id}-pack"
    stale = [tid for tid in list(oracle.ongoing_trials)
             if tid.startswith(prefix) and tid[len(prefix):].isdigit() and int(tid[len(prefix):]) >= k]
    requeue_ongoing(oracle, stale)


def create_trials(tuner: Any, k: int) -> tuple[list[Any], bool]:
    """Up to ``k`` new trials from the oracle (each slot asks as a worker
    would); ``True`` when the oracle said the search is over."""
    trials: list[Any] = []
    while len(trials) < k:
        tuner.pre_create_trial()
        trial = tuner.oracle.create_trial(slot_id(tuner.tuner_id, len(trials)))
        if trial.status == TrialStatus.STOPPED:
            return trials, True
        if trial.status == TrialStatus.IDLE:
            if trials:  # e.g. Hyperband waiting for a round: run what we have
                return trials, False
            continue
        trials.append(trial)
    return trials, False


@dataclass
class _Member:
    trial: Any
    model: keras.Model
    plan: MemberPlan
    key: tuple
    callbacks: Any = None  # a keras CallbackList: the member's own callbacks, then its History
    history: Any = None
    error: BaseException | None = None
    active: bool = True
    last_logs: dict | None = None  # None until an epoch ended, as Keras passes on_train_end


def _learning_rate(model: keras.Model) -> float:
    from ktplus.training._schedules import _get_lr

    return _get_lr(model.optimizer)


class _Dispatch(keras.callbacks.Callback):
    """The fused model's one callback: each epoch event goes to every
    active member's callbacks, with its own logs and model."""

    def __init__(self, fused: FusedModel, members: list[_Member]) -> None:
        super().__init__()
        self.fused = fused
        self.members = members

    def _each(self, event: str, *args: Any) -> None:
        for m in self.members:
            if not m.active:
                continue
            try:
                getattr(m.callbacks, event)(*args)
            except Exception as error:  # the member's trial fails as its unfused fit would
                m.error = error
                m.active = False

    def _sync(self) -> None:
        self.fused.set_learning_rates([_learning_rate(m.model) if m.active else 0.0 for m in self.members])
        self.fused.set_active([m.active for m in self.members])
        if not any(m.active for m in self.members):
            self.model.stop_training = True

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._each("on_train_begin")
        self._sync()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._each("on_epoch_begin", epoch)
        self._sync()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        active = [i for i, m in enumerate(self.members) if m.active]
        self.fused.store(active)
        for i in active:
            m = self.members[i]
            m.last_logs = member_logs(logs, i)
            try:
                m.callbacks.on_epoch_end(epoch, m.last_logs)  # the dict its callbacks add to, as in Keras
            except Exception as error:
                m.error = error
                m.active = False
                continue
            if m.model.stop_training:  # its early stopping or pruning: it ends now
                m.active = False
                try:
                    m.callbacks.on_train_end(m.last_logs)
                except Exception as error:
                    m.error = error
        self._sync()

    def on_train_end(self, logs: dict | None = None) -> None:
        for m in self.members:
            if m.active:
                m.active = False
                try:
                    m.callbacks.on_train_end(m.last_logs)
                except Exception as error:
                    m.error = error


def _hyperband_fit(hp: Any, kwargs: dict) -> dict:
    """``kwargs`` with Hyperband's epochs for this trial (as keras-tuner's
    ``Hyperband.run_trial`` sets them)."""
    if "tuner/epochs" in hp.values:
        kwargs = {**kwargs, "epochs": hp.values["tuner/epochs"],
                  "initial_epoch": hp.values["tuner/initial_epoch"]}
    return kwargs


@contextmanager
def _building(tuner: Any, trial: Any) -> Iterator[None]:
    tuner._building = trial.trial_id
    try:
        yield
    finally:
        tuner._building = None


def _member(tuner: Any, trial: Any, fit_kwargs: dict) -> _Member | None:
    """``trial``'s freshly built model as a member, or None when it cannot
    be fused (it then runs alone, and fails there as usual if its build does)."""
    hp = trial.hyperparameters
    try:
        with _building(tuner, trial):
            model = tuner._try_build(hp)
    except Exception:
        return None
    plan = member_plan(model)
    if plan is None:
        return None
    kwargs = _hyperband_fit(hp, fit_kwargs)
    key = (plan.key, tuned_batch_size(tuner.hypermodel, hp, kwargs), kwargs.get("epochs"),
           kwargs.get("initial_epoch", 0))
    return _Member(trial, model, plan, key)


def run_pack(tuner: Any, trials: list[Any], fit_args: tuple, fit_kwargs: dict) -> dict[str, Any]:
    """Trains the fusable groups among ``trials``; returns each trained
    trial's results (a list of Histories: one, or one per cross-validation
    fold) or the error it raised, by trial id. Trials not returned run as
    usual."""
    members = [m for m in (_member(tuner, trial, fit_kwargs) for trial in trials) if m is not None]
    by_key: dict[tuple, list[_Member]] = {}
    for m in members:
        by_key.setdefault(m.key, []).append(m)
    groups = [[same[i] for i in indices] for same in by_key.values()
              for indices in fusion_groups([m.plan for m in same])]
    results: dict[str, Any] = {}
    for group in groups:
        if len(group) < 2:
            continue
        start = time.time()
        try:
            with tuner._fast.trial():
                trained = _train_folds(tuner, group, fit_args, fit_kwargs)
        except Exception:  # preparing or finishing the fused fit failed: each member runs alone instead
            for m in group:
                tuner._restart_recorder(m.trial)
            continue
        for m in group:
            tuner._recorder(m.trial).start = start  # its trial_seconds: the group's training
            results[m.trial.trial_id] = trained[m.trial.trial_id]
            tuner.packed_trials[m.trial.trial_id] = len(group)
    return results


def _train_folds(tuner: Any, group: list[_Member], fit_args: tuple, fit_kwargs: dict) -> dict[str, Any]:
    """Trains ``group`` fused: once, or with cross-validation once per fold
    (each fold's members freshly built, as each fold of an unfused trial
    builds its model; a member whose fold was pruned or failed ends its
    trial there, as `Tuner._run_folds` ends it). Returns each member's
    Histories, or the error its trial raised, by trial id."""
    cv = tuner._cv
    kwargs = _hyperband_fit(group[0].trial.hyperparameters, fit_kwargs)
    if cv is None:
        _train(tuner, group, fit_args, kwargs)
        return {m.trial.trial_id: m.error if m.error is not None else [m.history] for m in group}
    histories: dict[str, Any] = {m.trial.trial_id: [] for m in group}
    live = group
    for fold in cv.folds:
        if fold.index > 0:
            rebuilt = [_member(tuner, m.trial, fit_kwargs) for m in live]
            if any(m is None or m.key != rebuilt[0].key for m in rebuilt):  # type: ignore[union-attr]
                raise RuntimeError("a fold's models no longer fuse")
            live = [m for m in rebuilt if m is not None]
        fold_args, fold_kwargs = cv.fold_inputs(fold.index, fit_args, kwargs)
        with tuner._fast.fold(fold.index):
            _train(tuner, live, fold_args, fold_kwargs, fold.index)
        for m in live:
            if m.error is not None:
                histories[m.trial.trial_id] = m.error
            else:
                histories[m.trial.trial_id].append(m.history)
        live = [m for m in live if m.error is None and not tuner._recorder(m.trial).pruned]
        if not live:
            break
    return histories


def _train(tuner: Any, group: list[_Member], fit_args: tuple, fit_kwargs: dict, fold: int | None = None) -> None:
    from ktplus.tuners._data_prep import training_data

    hm = tuner.hypermodel
    kwargs = dict(fit_kwargs)
    given = list(kwargs.pop("callbacks", []))
    hp0 = group[0].trial.hyperparameters
    classification = hm.task == "classification"
    with training_data(hm, fit_args, kwargs), \
            tuner._fast.fit(hm, hp0, fit_args, kwargs, given) as (args, fkw):
        steps_per_execution = tuner._fast._steps_per_execution
        epochs = int(fkw.get("epochs", 1))
        steps = tuner._fast._data.steps_per_epoch(tuned_batch_size(hm, hp0, kwargs) or KERAS_DEFAULT_BATCH_SIZE)
        class_weights = []
        for m in group:
            hp = m.trial.hyperparameters
            member_kwargs = dict(fkw)
            if hm.needs_statistics:
                hm._prepare_fit(hp, m.model, args, member_kwargs)
            class_weights.append(class_weight_vector(member_kwargs.get("class_weight"), hm.num_classes))
            callbacks = tuner._member_callbacks(m.trial, trial_callbacks(tuner, m.trial, given), fold)
            m.history = keras.callbacks.History()
            m.model.stop_training = False
            # Built as an unfused fit builds it: the checkpoint's optimizer then holds the variables a
            # trained model's does, so loading it into a fresh model (Hyperband's continuation,
            # load_model) skips them as it does unfused, instead of taking the member's last (decayed)
            # learning rate as the new model's starting rate.
            if not m.model.optimizer.built:
                m.model.optimizer.build(m.model.trainable_variables)
            if steps_per_execution > 1:  # as the fast path sets it on a trial's own model for its fit
                m.model.steps_per_execution = steps_per_execution
            m.callbacks = keras.callbacks.CallbackList(
                [*callbacks, m.history], add_history=False, add_progbar=False, model=m.model,
                verbose=0, epochs=epochs, steps=steps)
        metrics = [[make_metric(spec, classification) for spec in hm.metrics] for _ in group]
        loss = hm.loss if hm.loss is not None else hm._default_loss()
        fused = FusedModel([m.plan for m in group], [m.model for m in group], loss, metrics,
                           steps_per_execution)
        train = args[0].map(member_targets(len(group), class_weights))
        fkw = {k: v for k, v in fkw.items() if k not in ("class_weight", "callbacks")}
        val = fkw.pop("validation_data", None)
        if val is not None:  # validation data has no class weights (Keras applies them to training only)
            fkw["validation_data"] = val.map(member_targets(len(group), [None] * len(group)))
        fkw["verbose"] = 0
        build_for_fit(fused.model, train.element_spec)  # its train step then traces once, as a trial's own
        try:
            fused.model.fit(train, callbacks=[_Dispatch(fused, group)], **fkw)
        except Exception as error:  # the fused fit itself failed: every member with it
            for m in group:
                if m.error is None:
                    m.error = error
    for m in group:
        if m.error is None:
            tuner._flush_checkpoints(m.trial, m.callbacks.callbacks)
            save_build_config(tuner, m.trial, m.model)


def packed_search(tuner: Any, k: int, fit_args: tuple, fit_kwargs: dict) -> None:
    """keras-tuner's ``BaseTuner.search`` loop (outside a distributed
    search), asking for up to ``k`` trials at a time and training the
    fusable ones together; each trial then takes keras-tuner's usual path
    (``_try_run_and_update_trial``, ``on_trial_end``) in the order asked."""
    if "verbose" in fit_kwargs:
        tuner.oracle.verbose = fit_kwargs.get("verbose")
    tuner.on_search_begin()
    while True:
        trials, stopped = create_trials(tuner, k)
        for trial in trials:
            tuner.on_trial_begin(trial)
        if len(trials) > 1:
            tuner._packed.update(run_pack(tuner, trials, fit_args, fit_kwargs))
        try:
            for trial in trials:
                # A trial that runs alone builds its model now: its parameter count is its own (not
                # also taken by the pack's trials still waiting to be handed their fused results).
                if trial.trial_id in tuner._packed:
                    tuner._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)
                else:
                    tuner._recorder(trial).start = time.time()  # its trial_seconds: its own training
                    with _building(tuner, trial):
                        tuner._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)
                tuner.on_trial_end(trial)
        finally:
            tuner._packed.clear()
        if stopped and not trials:
            # Asked again after trials ended (as keras-tuner's loop asks after every trial): one
            # of them may have gone back to the oracle's retry queue (max_retries_per_trial).
            break
    tuner.on_search_end()
