"""`OptunaOracle`: a keras-tuner oracle whose configurations come from an
Optuna sampler through Optuna's ask-and-tell interface.

keras-tuner's trial records stay the one truth. The study lives in memory:
``populate_space`` asks it for a trial (only the active hyperparameters are
suggested), ``end_trial`` tells it how the trial ended: its objective
values, pruned (with its epoch curve as intermediate values) or failed; a
model over ``max_model_size`` is told as infeasible (a violated
``max_model_size`` constraint, with the worst values seen so far). On a
resume the study is rebuilt from the trial records; the only thing the
records cannot hold, the samplers' own per-trial and per-study system
attributes (CMA-ES's state, NSGA-II's generations, QMC's sequence index),
is saved with keras-tuner's oracle state (``oracle.json``) after every
trial and joined back by trial id, so a resumed sampler knows every
finished trial. In keras-tuner's chief/worker mode the oracle, and so the
sampler, lives on the chief.

With ``storage=`` the study lives in an Optuna storage shared by every
worker process that runs the same search (`ktplus.oracles._storage`): each
worker asks the shared study for its next trial (keras-tuner's trial id is
the Optuna trial number, so every worker's records land side by side in
the shared project directory), keeps the trial's heartbeat and intermediate
values in the storage while it trains, and tells it how the trial ended.
``max_trials`` counts the study's trials across all workers (a retry of a
stale trial runs in its place); the study, not ``oracle.json``, is then
the sampler's memory. A project directory belongs to one mode: a shared
study's project is not resumed in memory, nor the reverse (`set_state`).
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from typing import Any, Literal

import keras_tuner
import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from ktplus._compat import TrialStatus
from ktplus._errors import invalid
from ktplus._facts import CURVES_DIR, is_pruned
from ktplus._pareto import objective_directions, objective_values
from ktplus._seed import check_seed, oracle_seed
from ktplus.oracles import _storage
from ktplus.oracles._samplers import check_sampler, make_sampler, quiet_optuna
from ktplus.oracles._space import active_params, suggest

#: The constraint an oversized model violates (Optuna's constraint name).
SIZE_CONSTRAINT = "max_model_size"
#: Where a trial's keras-tuner id is kept on its Optuna trial.
TRIAL_ID_ATTR = "keras_tuner_trial_id"
#: Seconds between the log lines of a worker waiting for the other workers' trials.
WAIT_LOG_SECONDS = 60.0

_log = logging.getLogger("ktplus")


def study_directions(objective: Any) -> list[Literal["minimize", "maximize"]]:
    """Optuna's directions for a keras-tuner objective, one per objective."""
    return ["maximize" if d == "max" else "minimize" for d in objective_directions(objective)[1]]


class OptunaOracle(keras_tuner.Oracle):
    """A keras-tuner oracle driven by an Optuna sampler.

    Use it with `ktplus.Tuner(oracle=...)` (or through
    `ktplus.OptunaSearch`); every ktplus option (lr decay, early stopping,
    pruning, fast path, TensorBoard, cross-validation, resume, distributed
    search) works unchanged.

    Args:
        objective: As keras-tuner's: a metric name, a `keras_tuner.Objective`,
            or a list of them for a multi-objective (Pareto) search; the
            built-in "num_params" and "trial_seconds" (both minimized) need
            no compiled metric.
        max_trials: The number of trials.
        sampler: "tpe" (default: multivariate TPE over grouped, conditional
            spaces; Optuna's multi-objective TPE with several objectives),
            "cmaes", "gp" (needs PyTorch), "qmc", "random", "nsga2" (two or
            more objectives), or any `optuna.samplers.BaseSampler`.
        seed: Seeds a named sampler: the same seed (``seed=0`` included)
            suggests the same sequence of configurations in a single-process
            search. None: a random seed, drawn once and kept with the
            oracle's state (a resumed search goes on with it).
        hyperparameters: As keras-tuner's oracles.
        allow_new_entries: As keras-tuner's oracles.
        tune_new_entries: As keras-tuner's oracles.
        max_retries_per_trial: As keras-tuner's oracles.
        max_consecutive_failed_trials: As keras-tuner's oracles.
        storage: None (default: the study lives in memory, its state in
            ``oracle.json``), or where a study shared by many worker
            processes lives: a database URL (``sqlite:///search.db``,
            ``postgresql://user:password@host/db``, ``mysql://...``: an
            `optuna.storages.RDBStorage` with Optuna's heartbeats), a
            journal file path (`optuna.storages.JournalStorage`), or any
            `optuna.storages.BaseStorage`. Every process running the same
            search with the same storage and ``study_name`` joins the
            study; ``max_trials`` counts its trials across all of them.
        study_name: The shared study's name (needed with ``storage``).
        heartbeat_interval: With ``storage``: seconds between a running
            trial's heartbeats (a given RDBStorage keeps its own).
        grace_period: With ``storage``: seconds without a heartbeat after
            which a trial is stale: the next worker that asks fails it and
            re-queues it once with the same parameters (a trial that never
            beat is stale once it started ``grace_period`` seconds ago).
            None: twice ``heartbeat_interval``.

    With ``storage``, "tpe" runs with ``constant_liar=True`` (Optuna's advice
    for parallel workers: the running trials of every worker count as bad
    results while they run). A worker that asks in a race for the last
    places of ``max_trials`` tells its surplus trial failed at once: such
    trials stay in the study as FAIL trials with the system attribute
    ``ktplus:surplus`` (``optuna-dashboard`` and ``study.trials`` show them;
    they never count). "qmc" keeps its one sequence index in the study's
    attributes: workers asking at the same moment may draw the same point.
    `release_held` (the tuner calls it when a search ends, however it ends)
    tells every trial this process still holds as failed, so no other
    worker waits for them.

    Attributes:
        study: The `optuna.Study`: in memory (its trials mirror
            keras-tuner's), or the shared study in ``storage``.
        sampler: The Optuna sampler.

    Example:

    >>> import ktplus
    >>> oracle = ktplus.OptunaOracle(objective="val_accuracy", max_trials=5, sampler="tpe", seed=1)
    >>> type(oracle.sampler).__name__
    'TPESampler'
    """

    def __init__(
        self,
        objective: Any = None,
        max_trials: int | None = None,
        sampler: Any = "tpe",
        seed: int | None = None,
        hyperparameters: Any = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        storage: Any = None,
        study_name: str | None = None,
        heartbeat_interval: int = 60,
        grace_period: int | None = None,
    ) -> None:
        from ktplus._objectives import create_objective

        objective = create_objective(objective)
        self.directions = study_directions(objective)
        check_sampler(sampler, self.directions)
        seed = check_seed(seed)
        #: The shared study's storage (None: the study lives in memory).
        self.storage: Any = None
        self.study_name: str | None = None
        if storage is not None:
            self._open_storage(storage, study_name, objective, heartbeat_interval, grace_period)
        super().__init__(objective=objective, max_trials=max_trials, hyperparameters=hyperparameters,
                         allow_new_entries=allow_new_entries, tune_new_entries=tune_new_entries,
                         seed=oracle_seed(seed),
                         max_retries_per_trial=max_retries_per_trial,
                         max_consecutive_failed_trials=max_consecutive_failed_trials)
        # The given seed (0 included), else keras-tuner's draw, as a plain int.
        self.seed: int = int(self.seed)
        self._seed_state = self.seed
        self.sampler_name: str | None = sampler.lower() if isinstance(sampler, str) else None
        #: keras-tuner trial id -> Optuna trial number.
        self._numbers: dict[str, int] = {}
        #: keras-tuner trial id -> the Optuna trial's storage id (trials this process asked).
        self._optuna_ids: dict[str, int] = {}
        #: The heartbeat threads of this process's running trials, by keras-tuner trial id.
        self._keepers: dict[str, _storage.TrialKeeper] = {}
        #: The trials of this worker that another failed as stale (it stalled): it asks no more.
        self.lost_trials: set[str] = set()
        #: keras-tuner's writes of ``end_trial`` (the ended trial's record, ``oracle.json``), held
        #: until the study took the tell; ``_holding`` is the trial being ended.
        self._held_writes: list[Callable[[], None]] | None = None
        self._holding: str | None = None
        self._space_checked = False
        self.sampler: optuna.samplers.BaseSampler
        if self.storage is not None:
            self.seed = self._shared_seed(seed)
            self._seed_state = self.seed
            # Every worker samples with its own generator (one seed everywhere would make every
            # worker draw the same configurations); QMC's one sequence is shared through the study.
            self.sampler = make_sampler(sampler, self.seed if self.sampler_name == "qmc" else None, shared=True)
            self.study.sampler = self.sampler
        else:
            self.sampler = make_sampler(sampler, self.seed)
            self.study = self._new_study()
        #: Oversized trials waiting for a completed trial's values.
        self._waiting_infeasible: list[str] = []
        #: Enqueued configurations (`ktplus.Tuner.enqueue_trial`).
        self.queue: Any = None

    def _new_study(self) -> optuna.Study:
        with quiet_optuna():
            return optuna.create_study(sampler=self.sampler, directions=list(self.directions))

    # -- a shared study (storage=) -------------------------------------------------

    def _open_storage(self, storage: Any, study_name: Any, objective: Any, heartbeat_interval: Any,
                      grace_period: Any) -> None:
        """Connects to the storage and joins (or creates) the study, after
        refusing what cannot work; nothing is written before the checks."""
        interval, grace = _storage.check_heartbeat(heartbeat_interval, grace_period)
        if not isinstance(study_name, str) or not study_name:
            raise invalid("study_name", study_name, "the shared study's name (a non-empty string) with storage=")
        opened = _storage.open_storage(storage, interval, grace)
        self._described = _storage.describe_storage(storage)
        names, directions = objective_directions(objective)
        self._objective_attr = [[n, d] for n, d in zip(names, directions)]
        _storage.check_existing_study(opened, study_name, self.directions, self._objective_attr,
                                      self._described)
        self.storage, self.study_name = opened, study_name
        self.heartbeat_interval, self.grace_period = _storage.heartbeat_settings(opened, interval, grace)
        with quiet_optuna():
            self.study = optuna.create_study(storage=opened, study_name=study_name,
                                             directions=list(self.directions), load_if_exists=True,
                                             sampler=optuna.samplers.RandomSampler())
        if _storage.OBJECTIVE_ATTR not in opened.get_study_system_attrs(self.study._study_id):
            opened.set_study_system_attr(self.study._study_id, _storage.OBJECTIVE_ATTR, self._objective_attr)

    def _shared_seed(self, given: int | None) -> int:
        """The search's seed, the same in every worker: the given one, else
        the one the study recorded (the first worker's draw)."""
        sid = self.study._study_id
        recorded = self.storage.get_study_system_attrs(sid).get(_storage.SEED_ATTR)
        if given is None and isinstance(recorded, int):
            return int(recorded)
        if recorded is None:
            self.storage.set_study_system_attr(sid, _storage.SEED_ATTR, int(self.seed))
        return int(self.seed)

    def _trial_id_of(self, number: int) -> str:
        """keras-tuner's trial id for the study's trial ``number`` (padded as
        keras-tuner pads its own)."""
        return f"{number:0{len(str(self.max_trials))}d}"

    def check_space(self, hyperparameters: Any) -> None:
        """Refuses a search space other than the shared study's.

        The tuner calls it before it writes anything, with a fresh build of
        the user's hypermodel (keras-tuner reloads a project's saved space
        instead of building the given hypermodel, so a worker with another
        space joining the same project directory is only seen this way).
        Nothing is written. Without ``storage`` this does nothing.

        Args:
            hyperparameters: A `keras_tuner.HyperParameters`.

        Raises:
            ValueError: naming the storage, the study and a hyperparameter
                whose domain differs (or the names each space tunes), when
                the study's recorded space (or its trials' distributions) is
                another one.
        """
        if self.storage is None:
            return
        ours = _storage.space_fingerprint(hyperparameters)
        _storage.check_space(self.storage, self.study._study_id, self.study_name or "", ours, self._described)

    def _check_space(self) -> None:
        """Refuses a study of another search space (once, at the first ask:
        the space is known once the hypermodel was built), and records this
        one on a study that has none."""
        if self._space_checked:
            return
        sid = self.study._study_id
        ours = _storage.space_fingerprint(self.get_space())
        _storage.check_space(self.storage, sid, self.study_name or "", ours, self._described)
        if _storage.SPACE_ATTR not in self.storage.get_study_system_attrs(sid):
            self.storage.set_study_system_attr(sid, _storage.SPACE_ATTR, ours)
        self._space_checked = True

    def _enqueue_shared(self) -> None:
        """Moves `ktplus.Tuner.enqueue_trial`'s pending entries into the shared
        study (Optuna's queue, which any worker pops); an entry another
        worker (or a resumed run) already put there is not added twice."""
        if self.queue is None:
            return
        with quiet_optuna():
            while (entry := self.queue.take("optuna-study")) is not None:
                self.study.enqueue_trial(entry, skip_if_exists=True)

    def _mark_stale(self, frozen: Any) -> None:
        """A trial failed as stale by this worker: its keras-tuner record and
        its curve (written by the lost worker in the shared project
        directory) say failed, so readers do not show it running."""
        trial_id = str(frozen.user_attrs.get(TRIAL_ID_ATTR))
        if not trial_id.isdigit() or int(trial_id) != frozen.number:  # (a retry's copy carries its original's)
            return
        self._fail_record(trial_id, f"Worker lost: no heartbeat in the storage for {self.grace_period} s "
                                    f"(killed, machine lost or stalled); Optuna trial {frozen.number} was failed "
                                    "as stale and re-queued once with the same hyperparameters.")
        self._fail_curves(trial_id)

    def _fail_record(self, trial_id: str, message: str) -> None:
        """The trial's record in the project directory, if it says RUNNING,
        rewritten as FAILED with ``message``."""
        directory = getattr(self, "_directory", None)
        if directory is None:
            return
        path = os.path.join(str(directory), self._project_name, f"trial_{trial_id}", "trial.json")
        if not os.path.isfile(path):
            return
        try:
            record = keras_tuner.engine.trial.Trial.load(path)
        except Exception:  # a record being written: the worker that resumes it decides
            return
        if record.status != TrialStatus.RUNNING:
            return
        record.status = TrialStatus.FAILED
        record.message = message
        from ktplus._atomic import atomic_write_json

        atomic_write_json(path, record.get_state())

    def _fail_curves(self, trial_id: str) -> None:
        """The trial's curve files (one per fold with cv) that say running,
        rewritten as failed (their epochs kept)."""
        directory = getattr(self, "_directory", None)
        if directory is None:
            return
        from ktplus._atomic import atomic_write_json
        from ktplus.training._pruning import FAILED, RUNNING

        folder = os.path.join(str(directory), self._project_name, CURVES_DIR)
        paths = [os.path.join(folder, f"trial_{trial_id}.json"),
                 *sorted(glob.glob(os.path.join(folder, f"trial_{glob.escape(trial_id)}_fold_*.json")))]
        for path in paths:
            try:
                with open(path) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("state") == RUNNING:
                atomic_write_json(path, {**data, "state": FAILED})

    def _ask_shared(self) -> Any:
        """The shared study's next trial within ``max_trials``, or None when
        the search is over.

        Stale trials are failed (and re-queued) first; a waiting trial (a
        retry, an enqueued one) is taken before a new one is sampled. The
        budget counts the study's trials that are not retries; an ask that
        lost a race for the last places is told failed as surplus (never
        counted) and the ask repeats. While the budget is spent but other
        workers' trials still run, a worker waits: one of them may go stale
        and come back as a retry (unless it holds unfinished trials of
        its own: it trains those first and asks again after); it says so in
        a log line (logger "ktplus") when it starts waiting and every
        `WAIT_LOG_SECONDS` while it waits.

        The asked trial's heartbeat keeper starts at once, before its
        parameters are sampled, so a worker that dies later leaves a trial
        that goes stale by its heartbeat."""
        storage, sid = self.storage, self.study._study_id
        mine = set(self._optuna_ids.values())
        logged = None
        while True:
            with quiet_optuna():  # (Optuna's retry callback is experimental)
                _storage.fail_stale_trials(self.study, self.grace_period, self._mark_stale)
            trials = storage.get_all_trials(sid, deepcopy=False)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            counted = sum(1 for t in trials if _storage.counts_toward_budget(t))
            if waiting or not self.max_trials or counted < self.max_trials:
                with quiet_optuna(), _storage.asking(self.study):
                    trial = self.study.ask()
                trial_id = self._trial_id_of(trial.number)
                try:
                    self._keep(trial_id, trial._trial_id)
                except UpdateFinishedTrialError:  # failed as stale by another worker already: ask again
                    continue
                frozen = storage.get_trial(trial._trial_id)
                if (not self.max_trials or not _storage.counts_toward_budget(frozen)
                        or _storage.budget_rank(storage.get_all_trials(sid, deepcopy=False),
                                                frozen.number) < self.max_trials):
                    return trial
                self._stop_keeper(trial_id)
                with contextlib.suppress(UpdateFinishedTrialError):
                    storage.set_trial_system_attr(trial._trial_id, _storage.SURPLUS_ATTR, True)
                    storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
                continue
            others = [t.number for t in trials if t.state == TrialState.RUNNING and t._trial_id not in mine]
            if not others:
                return None
            if any(t.state == TrialState.RUNNING and t._trial_id in mine for t in trials):
                # This worker holds trials it has yet to train (a pack being gathered): waiting for the
                # others here would deadlock workers that each hold one; the pack asks again once they end.
                return None
            if logged is None or time.monotonic() - logged >= WAIT_LOG_SECONDS:
                logged = time.monotonic()
                _log.warning(
                    "ktplus: study %r has its max_trials=%d trials; waiting for the %d that other workers run "
                    "(Optuna trial %s): one whose worker is lost goes stale after %d s without a heartbeat "
                    "and is re-run by the next worker that asks.", self.study_name, self.max_trials,
                    len(others), ", ".join(map(str, others)), self.grace_period)
            time.sleep(min(float(self.heartbeat_interval), 5.0))

    def _keep(self, trial_id: str, optuna_id: int) -> None:
        """Starts the heartbeat keeper of a trial this worker asked (its first
        beat now)."""
        self._keepers[trial_id] = _storage.TrialKeeper(self.storage, optuna_id, self.heartbeat_interval,
                                                      lambda: self._curve(trial_id))

    def _create_shared_trial(self, tuner_id: str) -> Any:
        """keras-tuner's ``create_trial`` over the shared study."""
        Trial = keras_tuner.engine.trial.Trial
        if tuner_id in self.ongoing_trials:
            return self.ongoing_trials[tuner_id]
        self.tuner_ids.add(tuner_id)
        if self._retry_queue:  # keras-tuner's retry of this worker's own trial (max_retries_per_trial)
            trial = self.trials[self._retry_queue.pop()]
            trial.status = TrialStatus.RUNNING
            self.ongoing_trials[tuner_id] = trial
            self.save()
            self._display.on_trial_begin(trial)
            return trial
        self._check_space()
        self._enqueue_shared()
        while True:
            asked = None if self.lost_trials else self._ask_shared()
            if asked is None:
                self.tuner_ids.discard(tuner_id)
                hps = self.hyperparameters.copy()
                return Trial(hyperparameters=hps, trial_id=self._trial_id_of(len(self.trials)),
                             status=TrialStatus.STOPPED)
            trial_id = self._trial_id_of(asked.number)
            try:
                with quiet_optuna():
                    values = suggest(asked, self.get_space())
                    asked.set_user_attr(TRIAL_ID_ATTR, trial_id)
            except UpdateFinishedTrialError:  # failed as stale by another worker before it began: ask again
                self._stop_keeper(trial_id)
                continue
            break
        self._numbers[trial_id] = asked.number
        self._optuna_ids[trial_id] = asked._trial_id
        hps = self.hyperparameters.copy()
        hps.values = values
        trial = Trial(hyperparameters=hps, trial_id=trial_id, status=TrialStatus.RUNNING)
        self._record_values(trial)
        self.ongoing_trials[tuner_id] = trial
        self.trials[trial_id] = trial
        self.start_order.append(trial_id)
        self._save_trial(trial)
        self.save()
        self._display.on_trial_begin(trial)
        return trial

    def _still_owned(self, trial_id: str) -> bool:
        """Whether this worker's trial is still RUNNING in the storage (not
        failed as stale by another worker while this one stalled)."""
        optuna_id = self._optuna_ids.get(str(trial_id))
        if optuna_id is None:
            return True
        return self.storage.get_trial(optuna_id).state == TrialState.RUNNING

    def lost_to_another(self, trial_id: str) -> bool:
        """With ``storage``: whether a trial this worker still runs was ended in
        the storage by another worker (failed as stale while this one
        stalled); its curve, checkpoint and session are then not this
        worker's to write. A trial this worker ended itself is not lost."""
        trial_id = str(trial_id)
        if self.storage is None or trial_id not in self._optuna_ids or trial_id in self.lost_trials:
            return self.storage is not None and trial_id in self.lost_trials
        if not any(t.trial_id == trial_id for t in self.ongoing_trials.values()):
            return False
        return not self._still_owned(trial_id)

    def _give_up(self, trial: Any) -> None:
        """This worker's trial was taken from it (failed as stale while it
        stalled): its records and the study are left as the other worker
        left them, and this worker asks no more."""
        trial_id = str(trial.trial_id)
        self._stop_keeper(trial_id)
        self.lost_trials.add(trial_id)
        for tuner_id, ongoing in list(self.ongoing_trials.items()):
            if ongoing.trial_id == trial_id:
                self.ongoing_trials.pop(tuner_id)
        directory = getattr(self, "_directory", None)
        path = os.path.join(str(directory), self._project_name, f"trial_{trial_id}", "trial.json")
        if directory is not None and os.path.isfile(path):
            with contextlib.suppress(Exception):  # (this process's readers show the record the other worker left)
                self.trials[trial_id] = keras_tuner.engine.trial.Trial.load(path)
        warnings.warn(
            f"ktplus: trial {trial_id} (Optuna trial {self._numbers.get(trial_id)} of study "
            f"{self.study_name!r}) was failed as stale by another worker while this one went "
            f"{self.grace_period} s without a heartbeat; its result is not told and this worker stops.",
            RuntimeWarning, stacklevel=3)

    def _stop_keeper(self, trial_id: str) -> None:
        keeper = self._keepers.pop(str(trial_id), None)
        if keeper is not None:
            keeper.stop()

    # -- ask -------------------------------------------------------------------

    @keras_tuner.synchronized
    def create_trial(self, tuner_id: str) -> Any:
        """keras-tuner's ``create_trial``; with ``storage``, the shared study's
        next trial (keras-tuner's trial id from the Optuna trial number)."""
        if self.storage is None:
            return super().create_trial(tuner_id)
        return self._create_shared_trial(tuner_id)

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Asks the sampler for a configuration (an enqueued one first)."""
        with quiet_optuna():
            entry = self.queue.take(trial_id) if self.queue is not None else None
            if entry is not None:
                self.study.enqueue_trial(entry)
            trial = self.study.ask()
            values = suggest(trial, self.get_space())
            trial.set_user_attr(TRIAL_ID_ATTR, str(trial_id))
        self._numbers[str(trial_id)] = trial.number
        return {"status": TrialStatus.RUNNING, "values": values}

    @keras_tuner.synchronized
    def update_trial(self, trial_id: str, metrics: dict[str, Any], step: int = 0) -> Any:
        """keras-tuner's ``update_trial``; with ``storage``, a trial another
        worker failed as stale meanwhile keeps the record that worker wrote."""
        if self.storage is not None and not self._still_owned(trial_id):
            return self.trials[trial_id]
        return super().update_trial(trial_id, metrics, step)

    # -- tell ------------------------------------------------------------------

    @keras_tuner.synchronized
    def end_trial(self, trial: Any) -> None:
        """keras-tuner's ``end_trial``, then tells the sampler how it ended.

        With ``storage`` the study decides first: keras-tuner's record
        writes (the trial's ``trial.json``, ``oracle.json``) are held until
        the tell succeeded, since the storage ends a trial once and
        atomically. A trial another worker failed as stale meanwhile (this
        one stalled) is then neither told nor written: its records stay as
        that worker left them (`lost_trials`)."""
        if self.storage is None:
            try:
                super().end_trial(trial)
            finally:
                if self.tell_ended_trial(trial.trial_id):
                    self.save()  # oracle.json with what the tell changed (the sampler's attributes)
            return
        trial_id = str(trial.trial_id)
        if trial_id in self.lost_trials or not self._still_owned(trial_id):
            self._give_up(trial)
            return
        held: list[Callable[[], None]] = []
        self._held_writes, self._holding = held, trial_id
        try:
            super().end_trial(trial)
        finally:
            self._held_writes, self._holding = None, None
            try:
                self.tell_ended_trial(trial_id)
            finally:
                if trial_id in self.lost_trials:  # the storage refused the tell: another worker failed it first
                    self._give_up(trial)
                else:
                    for write in held:
                        write()

    def _save_trial(self, trial: Any) -> None:
        if self._held_writes is not None and str(trial.trial_id) == self._holding:  # (`end_trial`, storage)
            self._held_writes.append(lambda: super(OptunaOracle, self)._save_trial(trial))
            return
        super()._save_trial(trial)

    def save(self) -> None:
        if getattr(self, "_held_writes", None) is not None:
            self._held_writes.append(super().save)  # type: ignore[union-attr]
            return
        super().save()

    def tell_ended_trial(self, trial_id: str) -> bool:
        """Tells the study how keras-tuner's trial ``trial_id`` ended (once;
        nothing while it waits for a retry). ktplus's lost-worker recovery
        calls it for a trial it fails by hand.

        With ``storage``, a trial this worker holds that the storage
        already ended, or that it refuses to end (another worker failed it
        as stale first), joins `lost_trials`. The trial's intermediate
        values end as its final curve: with ``cv`` a step's value is the
        mean over the folds, so the values reported while the first folds
        trained are rewritten.

        Returns:
            Whether the study changed.
        """
        trial = self.trials.get(trial_id)
        number = self._numbers.get(str(trial_id))
        if trial is None or number is None or trial_id in self._retry_queue:
            return False
        if self.storage is not None:
            optuna_id = self._optuna_ids.get(str(trial_id))
            if optuna_id is None:  # another worker's trial (a resumed reader): its worker tells it
                return False
            frozen = self.storage.get_trial(optuna_id)
        else:
            frozen = self.study.get_trials(deepcopy=False)[number]
        if frozen.state.is_finished():
            if self.storage is not None and str(trial_id) in self._keepers:  # held here, ended elsewhere
                self.lost_trials.add(str(trial_id))
            self._stop_keeper(trial_id)
            return False
        state, values, curve = self._outcome(trial)
        try:
            with quiet_optuna():
                live = optuna.trial.Trial(self.study, frozen._trial_id)
                if state == "infeasible":
                    live.set_constraint(SIZE_CONSTRAINT, 1.0)
                    worst = self._worst_values()
                    if worst is None:
                        self._waiting_infeasible.append(str(trial_id))
                    else:
                        self._stop_keeper(trial_id)
                        self._tell(number, frozen._trial_id, worst)
                    return True
                self._stop_keeper(trial_id)  # (before reading what it reported: it reports no more)
                storage = self.study._storage
                reported = (storage.get_trial(frozen._trial_id).intermediate_values
                            if self.storage is not None else frozen.intermediate_values)
                for step, value in curve.items():
                    if step not in reported:
                        live.report(value, step)
                    elif reported[step] != value:  # (a cv mean over fewer folds: no "already reported" warning)
                        storage.set_trial_intermediate_value(frozen._trial_id, step, value)
                self._tell(number, frozen._trial_id, values, state=state)
                if state == TrialState.COMPLETE and self._waiting_infeasible:
                    self._tell_waiting()
        except UpdateFinishedTrialError:  # failed as stale between the check and the tell
            self._stop_keeper(trial_id)
            self.lost_trials.add(str(trial_id))
            return False
        return True

    def _tell(self, number: int, optuna_id: int, values: Any = None, state: Any = None) -> None:
        """``study.tell``; a trial the storage has ended meanwhile (Optuna
        checks before it writes, and says ValueError) raises
        `optuna.exceptions.UpdateFinishedTrialError`, as the storage's own
        refusal does."""
        try:
            self.study.tell(number, values, state=state)
        except ValueError as e:
            if self.study._storage.get_trial(optuna_id).state.is_finished():
                raise UpdateFinishedTrialError(str(e)) from e
            raise

    def _tell_waiting(self) -> None:
        worst = self._worst_values()
        if worst is None:
            return
        for trial_id in self._waiting_infeasible:
            self._stop_keeper(trial_id)
            with contextlib.suppress(UpdateFinishedTrialError):
                self._tell(self._numbers[trial_id], self._optuna_id(trial_id), worst)
        self._waiting_infeasible = []

    def _optuna_id(self, trial_id: str) -> int:
        """The storage id of the study's trial for keras-tuner's ``trial_id``."""
        if trial_id in self._optuna_ids:
            return self._optuna_ids[trial_id]
        return int(self.study.get_trials(deepcopy=False)[self._numbers[trial_id]]._trial_id)

    @keras_tuner.synchronized
    def release_held(self) -> None:
        """Lets go of every trial this process still holds in the shared study.

        Stops every heartbeat keeper of this process and tells each trial it
        asked but did not end (a search that raised or was interrupted, a
        pack left untrained) as failed, its record and curve marked failed
        too; an infeasible trial still waiting for a completed trial's
        values is told with the worst values seen so far (failed when there
        are none). The other workers then never wait for them. The tuner
        calls it when a search ends, however it ends; calling it again, or
        after a normal end, does nothing more. Without ``storage`` this does
        nothing.
        """
        if self.storage is None:
            return
        waiting = list(self._waiting_infeasible)
        held = {t: keeper.trial_id for t, keeper in self._keepers.items() if t not in waiting}
        for trial_id in list(self._keepers):
            self._stop_keeper(trial_id)
        worst = self._worst_values() if waiting else None
        self._waiting_infeasible = []
        for trial_id in waiting:
            with quiet_optuna(), contextlib.suppress(UpdateFinishedTrialError):
                self._tell(self._numbers[trial_id], self._optuna_id(trial_id), worst,
                           state=TrialState.FAIL if worst is None else None)
        message = ("The search in this process ended (it raised or was interrupted) before this trial ended: "
                   "it was told failed to the shared study, so that no other worker waits for it.")
        for trial_id, optuna_id in held.items():  # (asked, perhaps not yet begun: its keeper knows its id)
            try:
                with quiet_optuna():
                    self._tell(self.storage.get_trial(optuna_id).number, optuna_id, state=TrialState.FAIL)
            except UpdateFinishedTrialError:  # another worker failed it as stale: its records are that worker's
                continue
            for tuner_id, ongoing in list(self.ongoing_trials.items()):
                if ongoing.trial_id == trial_id:
                    self.ongoing_trials.pop(tuner_id)
            if trial_id in self._retry_queue:
                self._retry_queue.remove(trial_id)
            trial = self.trials.get(trial_id)
            if trial is not None and trial.status in (TrialStatus.RUNNING, TrialStatus.INVALID):
                trial.status, trial.message = TrialStatus.FAILED, message
                if trial_id not in self.end_order:
                    self.end_order.append(trial_id)
                if getattr(self, "_directory", None) is not None:
                    self._save_trial(trial)
            self._fail_curves(trial_id)
        if held and getattr(self, "_directory", None) is not None:
            self.save()

    def _outcome(self, trial: Any) -> tuple[Any, Any, dict[int, float]]:
        """(state, values, intermediate values) of an ended keras-tuner trial."""
        status = trial.status
        if status == TrialStatus.STOPPED:
            return "infeasible", None, {}
        if status != TrialStatus.COMPLETED:
            return TrialState.FAIL, None, {}
        curve = self._curve(trial.trial_id) if len(self.directions) == 1 else {}
        if is_pruned(trial):
            return TrialState.PRUNED, None, curve
        values = objective_values(trial, self.objective)
        if not all(math.isfinite(v) for v in values):
            return TrialState.FAIL, None, curve
        return TrialState.COMPLETE, values, curve

    def _curve(self, trial_id: str) -> dict[int, float]:
        """The trial's objective by epoch, from ktplus's curve files (the
        mean over its folds with cross-validation; {} without a ktplus tuner)."""
        from ktplus.training._pruning import CurveStore

        directory = getattr(self, "_directory", None)
        if directory is None:
            return {}
        store = CurveStore(os.path.join(str(directory), self._project_name, CURVES_DIR))
        return {step: v for step, v in store.trial_curve(trial_id).items() if math.isfinite(v)}

    def _worst_values(self) -> list[float] | None:
        """Each objective's worst value over the completed trials (what an
        infeasible trial is told with, beside its violated constraint)."""
        complete = [t.values for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if not t.system_attrs.get(f"constraints:{SIZE_CONSTRAINT}")]
        if not complete:
            return None
        return [(min if d == "maximize" else max)(v[i] for v in complete) for i, d in enumerate(self.directions)]

    # -- resume ----------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.storage is not None:  # the study is the sampler's memory; oracle.json names it
            state["optuna"] = {"storage": self._described, "study_name": self.study_name}
            return state
        trials = self.study.get_trials(deepcopy=False)
        state["optuna"] = {
            "study_system_attrs": dict(self.study._storage.get_study_system_attrs(self.study._study_id)),
            "trial_system_attrs": {tid: dict(trials[n].system_attrs) for tid, n in self._numbers.items()
                                   if n < len(trials)},
            # What the sampler was told of each trial (for reading; rebuilt from the records on reload).
            "trial_states": {tid: trials[n].state.name for tid, n in self._numbers.items() if n < len(trials)},
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """keras-tuner's ``set_state`` (a resumed search's ``oracle.json``),
        after refusing a project of the other mode: a search whose study
        lives in a storage resumed in memory, or a search that kept its
        study in memory (alone or in keras-tuner's chief/worker mode)
        joined by a shared study, or another shared study than the one
        the project holds. Their trial numbers would collide over the same
        ``trial_<id>`` records; nothing is written before the refusal."""
        self._check_mode(state.get("optuna"))
        if self.storage is not None:  # another worker's oracle.json: a trial it began may have no record yet
            state = {**state, "ongoing_trials": {k: v for k, v in state["ongoing_trials"].items()
                                                 if v in self.trials}}
        super().set_state(state)
        self._saved_optuna = state.get("optuna") or {}

    def _check_mode(self, saved: Any) -> None:
        """Refuses a saved state (``oracle.json``'s ``"optuna"`` entry) of
        the other mode, or of another shared study."""
        project = os.path.join(str(getattr(self, "_directory", ".")), str(getattr(self, "_project_name", "")))
        shared = isinstance(saved, dict) and "storage" in saved
        if self.storage is None and shared:
            raise invalid("storage", None,
                          f"the storage of the shared Optuna study that the project {project} holds "
                          f"({saved.get('storage')}, study_name={saved.get('study_name')!r}): resume it with "
                          "storage= and study_name= (ktplus search --storage URL --study NAME, or --workers N "
                          "for the project's journal file); in memory, new trials would be numbered over the "
                          "study's. Or use another project_name")
        if self.storage is not None and not shared:
            raise invalid("storage", self._described,
                          f"None for the project {project}: it holds a search that kept its Optuna study in "
                          "memory (one process, or keras-tuner's chief/worker mode) and a shared study would "
                          "number its trials from 0 over that search's records. Resume that search without "
                          "storage=, or give the shared search another project_name or directory")
        if self.storage is not None and saved.get("study_name") != self.study_name:
            raise invalid("study_name", self.study_name,
                          f"{saved.get('study_name')!r}, the shared study whose trials the project {project} "
                          f"holds (in {saved.get('storage')}), or another project_name for study "
                          f"{self.study_name!r}: two studies would number their trials over the same records")

    def reload(self) -> None:
        """keras-tuner's reload, then the study rebuilt from the trial records."""
        super().reload()
        if self.storage is not None:
            self._join_records()
            return
        self._rebuild(getattr(self, "_saved_optuna", {}))

    def refresh_shared(self) -> None:
        """With ``storage``: every other worker's trial record, read again
        from the shared project directory (a trial they began, or ended,
        since this process last looked), so the readers (``results()``,
        the best models, ``evaluate``, ``refit``, the Pareto front,
        importance) see the whole search. Trials this process asked keep
        their own, current, records; a record being written is read next
        time. Without ``storage`` this does nothing."""
        project = getattr(self, "_project_dir", None)
        if self.storage is None or project is None:
            return
        import glob

        Trial = keras_tuner.engine.trial.Trial
        for path in sorted(glob.glob(os.path.join(project, "trial_*", "trial.json"))):
            trial_id = os.path.basename(os.path.dirname(path))[len("trial_"):]
            if trial_id in self._optuna_ids:
                continue
            try:
                trial = Trial.load(path)
            except Exception:  # half written: the next refresh reads it
                continue
            self.trials[trial.trial_id] = trial
            if trial.trial_id not in self.start_order:
                self.start_order.append(trial.trial_id)
            if trial.status != TrialStatus.RUNNING and trial.trial_id not in self.end_order:
                self.end_order.append(trial.trial_id)

    def _check_consecutive_failures(self) -> None:
        """keras-tuner's check; with ``storage``, over the trials this
        process asked only: other workers' failures (a lost worker's trials,
        failed as stale) read back by `refresh_shared` are not this
        worker's, and must not stop it."""
        if self.storage is None:
            return super()._check_consecutive_failures()
        everyone: list[str] = list(getattr(self, "end_order"))  # noqa: B009  (keras-tuner's, untyped)
        self.end_order[:] = [t for t in everyone if t in self._optuna_ids]
        try:
            return super()._check_consecutive_failures()
        finally:
            self.end_order[:] = everyone

    @keras_tuner.synchronized
    def get_best_trials(self, num_trials: int = 1) -> list[Any]:
        """keras-tuner's ``get_best_trials``; with ``storage``, over every
        worker's trials (`refresh_shared`)."""
        self.refresh_shared()
        return list(super().get_best_trials(num_trials))

    def _join_records(self) -> None:
        """A worker joining (or resuming) a shared search: every record in the
        project directory is known, none is retried here (a trial another
        worker runs is its own; a lost worker's is failed as stale and
        re-queued through the study), and keras-tuner ids map to the study's
        trial numbers."""
        self.ongoing_trials: dict[str, Any] = {}
        self._retry_queue: list[str] = []
        order: list[str] = [t for t in self.start_order if t in self.trials]
        self.start_order: list[str] = order + sorted(t for t in self.trials if t not in order)
        ended = set(self.end_order)
        self.end_order += sorted(t for t, trial in self.trials.items()
                                 if t not in ended and trial.status != TrialStatus.RUNNING)
        self._numbers = {}
        for frozen in self.storage.get_all_trials(self.study._study_id, deepcopy=False):
            trial_id = str(frozen.user_attrs.get(TRIAL_ID_ATTR))  # (a retry inherits its original's until asked)
            if trial_id.isdigit() and int(trial_id) == frozen.number:
                self._numbers[trial_id] = frozen.number

    def _rebuild(self, saved: dict[str, Any]) -> None:
        """A fresh study holding every keras-tuner trial, in start order:
        finished ones with their outcome, the rest (running, or waiting for
        a retry) as running trials that are told when they end."""
        if self.sampler_name is not None:  # a resumed seeded sampler must not replay its first draws
            self.sampler = make_sampler(self.sampler_name, self.seed + len(self.trials))
        self.study = self._new_study()
        self._numbers = {}
        self._waiting_infeasible = []
        storage, study_id = self.study._storage, self.study._study_id
        for key, value in (saved.get("study_system_attrs") or {}).items():
            storage.set_study_system_attr(study_id, key, value)
        system_attrs = saved.get("trial_system_attrs") or {}
        order = [t for t in self.start_order if t in self.trials]
        order += sorted(t for t in self.trials if t not in order)
        finished = set(self.end_order) - set(self._retry_queue)
        infeasible: list[tuple[str, dict[str, Any], Any, dict[str, Any]]] = []
        space = self.get_space()
        with quiet_optuna():
            for trial_id in order:
                trial = self.trials[trial_id]
                params, dists = active_params(space, trial.hyperparameters.values)
                attrs = dict(system_attrs.get(trial_id) or {})
                user_attrs = {TRIAL_ID_ATTR: trial_id}
                state, values, curve = (self._outcome(trial) if trial_id in finished
                                        else (TrialState.RUNNING, None, {}))
                if state == "infeasible":
                    attrs[f"constraints:{SIZE_CONSTRAINT}"] = 1.0
                    infeasible.append((trial_id, params, dists, attrs))
                    state = TrialState.RUNNING
                self.study.add_trial(optuna.trial.create_trial(
                    state=state, values=values, params=params, distributions=dists,
                    intermediate_values=curve or None, system_attrs=attrs, user_attrs=user_attrs))
                self._numbers[trial_id] = len(self._numbers)
            self._waiting_infeasible = [t for t, *_ in infeasible]
            self._tell_waiting()

