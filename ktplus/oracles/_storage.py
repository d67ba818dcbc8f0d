"""Optuna storages for `OptunaOracle`: many worker processes, one study.

``OptunaSearch(storage=..., study_name=...)`` keeps its study in an Optuna
storage instead of memory; every process that runs the same search with
the same storage and study name joins it (no chief). This module opens the
storage, checks that an existing study belongs to the same search, and
gives running trials their liveness:

* `optuna.storages.RDBStorage` (``sqlite:///``, ``postgresql://``,
  ``mysql://`` URLs): Optuna's own heartbeats. A URL is opened with
  ``heartbeat_interval``, ``grace_period`` and
  `optuna.storages.RetryHeartbeatStaleTrialCallback` (``max_retry=1``); a
  given ``RDBStorage`` keeps its own settings.
* Every other storage (`optuna.storages.JournalStorage`, Optuna's gRPC
  proxy, an ``RDBStorage`` without heartbeats): Optuna 5 has no heartbeat
  for them, so ktplus records one itself, as the trial's system attribute
  ``ktplus:heartbeat`` (the writer's wall clock: hosts sharing such a study
  need clocks that agree to well within ``grace_period``). The stale rule
  and the retry are Optuna's.

A stale trial (no heartbeat for ``grace_period`` seconds: its worker was
killed, lost its machine or stalled) is failed by the next worker that
asks for a trial and re-queued once with the same parameters; its
keras-tuner record and its curve are marked failed. A trial that never
beat (its worker was killed between its ask and its first beat) is stale
once it started more than ``grace_period`` seconds ago, on every storage:
its start is the asking worker's clock (Optuna's ``datetime_start``), so
hosts sharing a study need clocks that agree to well within
``grace_period``. A worker that comes back after its trial was
taken cannot tell it (the storage ends a trial once) and stops instead.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from ktplus._errors import invalid, invalid_type

#: Study system attributes ktplus keeps on a study it made.
OBJECTIVE_ATTR = "ktplus:objective"
SPACE_ATTR = "ktplus:space"
SEED_ATTR = "ktplus:seed"
#: A trial's heartbeat when the storage has none of its own (seconds since the epoch).
HEARTBEAT_ATTR = "ktplus:heartbeat"
#: A trial asked in a race past ``max_trials`` (told failed at once; never counted).
SURPLUS_ATTR = "ktplus:surplus"
#: How Optuna's retry callback marks a re-queued copy of a failed trial.
RETRY_ATTR = "failed_trial"

_EXPECTED = ("a database URL Optuna's RDBStorage opens (sqlite:///search.db, "
             "postgresql://user:password@host:5432/db, mysql://user:password@host/db), a journal "
             "file path, or an optuna.storages.BaseStorage instance")


def describe_storage(storage: Any) -> str:
    """A storage's URL with its password masked, or its class name."""
    if isinstance(storage, str):
        return mask_url(storage)
    url = getattr(storage, "url", None)
    if isinstance(url, str):
        return mask_url(url)
    return f"<{type(storage).__name__}>"


def mask_url(url: str) -> str:
    """``url`` with the password of its credentials replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def check_heartbeat(heartbeat_interval: Any, grace_period: Any) -> tuple[int, int]:
    """The checked ``heartbeat_interval`` and ``grace_period`` (None: twice
    the interval, Optuna's default), in whole seconds as Optuna takes them."""
    if isinstance(heartbeat_interval, bool) or not isinstance(heartbeat_interval, int) or heartbeat_interval < 1:
        raise invalid("heartbeat_interval", heartbeat_interval, "a whole number of seconds >= 1")
    if grace_period is None:
        grace_period = 2 * heartbeat_interval
    if isinstance(grace_period, bool) or not isinstance(grace_period, int) or grace_period <= heartbeat_interval:
        raise invalid("grace_period", grace_period,
                      f"None (twice heartbeat_interval) or a whole number of seconds greater than "
                      f"heartbeat_interval={heartbeat_interval}")
    return heartbeat_interval, grace_period


def _short(error: BaseException) -> str:
    """The first line of an error, credentials masked."""
    text = str(error).strip().splitlines()
    return mask_url(f"{type(error).__name__}: {text[0] if text else ''}")


def open_storage(storage: Any, heartbeat_interval: int, grace_period: int) -> optuna.storages.BaseStorage:
    """The Optuna storage for ``storage``, connected.

    Args:
        storage: A database URL (an `optuna.storages.RDBStorage` is opened
            with Optuna's heartbeats and a retry of each stale trial), a
            journal file path (`optuna.storages.JournalStorage`), or any
            `optuna.storages.BaseStorage` (used as it is).
        heartbeat_interval: Seconds between a running trial's heartbeats.
        grace_period: Seconds without a heartbeat after which a trial is stale.

    Raises:
        ValueError: naming ``storage`` (its password masked) when the
            database cannot be reached, refuses the credentials, or the
            URL's driver is not installed.
    """
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, (str, os.PathLike)):
        raise invalid_type("storage", storage, _EXPECTED)
    text = os.fspath(storage)
    if not text:
        raise invalid("storage", text, _EXPECTED)
    if "://" not in text:
        from optuna.storages.journal import JournalFileBackend

        folder = os.path.dirname(os.path.abspath(text))
        if not os.path.isdir(folder):
            raise invalid("storage", text, f"{_EXPECTED}; the journal file's folder {folder} does not exist")
        try:
            return optuna.storages.JournalStorage(JournalFileBackend(text))
        except Exception as e:
            raise invalid("storage", text, f"{_EXPECTED}; the journal file cannot be opened ({_short(e)})") from None
    try:
        return _open_rdb(text, heartbeat_interval, grace_period)
    except ImportError as e:
        raise invalid("storage", mask_url(text),
                      f"{_EXPECTED}; the database driver is not installed ({_short(e)}): e.g. pip install "
                      "'psycopg[binary]' for postgresql://, pymysql for mysql+pymysql://") from None
    except Exception as e:
        raise invalid("storage", mask_url(text),
                      f"{_EXPECTED} that can be reached with its credentials; connecting failed "
                      f"({_short(e)})") from None


#: How often a database is opened again when workers started at once race to create Optuna's tables.
SCHEMA_ATTEMPTS = 8


def _open_rdb(url: str, heartbeat_interval: int, grace_period: int) -> optuna.storages.RDBStorage:
    """An `optuna.storages.RDBStorage` of ``url`` with Optuna's heartbeats.

    Workers started at the same time on an empty database all create
    Optuna's tables and version row; all but one fail with an integrity or
    "already exists" error (SQLAlchemy's ``IntegrityError`` or
    ``ProgrammingError``; SQLite's ``OperationalError`` "table ... already
    exists" or "database is locked"). Those are opened again, after a short random
    pause, and then find the tables made; any other error (unreachable
    server, refused credentials) is raised at once."""
    import random

    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    from ktplus.oracles._samplers import quiet_optuna

    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            with quiet_optuna():
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))
        except (IntegrityError, ProgrammingError, OperationalError) as e:
            racing = not isinstance(e, OperationalError) or any(
                words in str(e) for words in ("already exists", "database is locked"))  # (SQLite's)
            if not racing or attempt == SCHEMA_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
    raise AssertionError("unreachable")


def native_heartbeat(storage: Any) -> bool:
    """Whether the storage records heartbeats itself (an RDBStorage with
    ``heartbeat_interval``)."""
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    return isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage)  # type: ignore[arg-type]


def heartbeat_settings(storage: Any, heartbeat_interval: int, grace_period: int) -> tuple[int, int]:
    """The interval and grace period in force: the storage's own (an
    RDBStorage with heartbeats), else ktplus's."""
    if native_heartbeat(storage):
        interval = int(storage.get_heartbeat_interval() or heartbeat_interval)
        return interval, int(getattr(storage, "grace_period", None) or 2 * interval)
    return heartbeat_interval, grace_period


def study_id(storage: Any, study_name: str) -> int | None:
    """The id of the study ``study_name`` in ``storage``, None when it has none."""
    try:
        return int(storage.get_study_id_from_name(study_name))
    except KeyError:
        return None


def check_existing_study(storage: Any, study_name: str, directions: Sequence[str],
                         objective: list[list[str]], described: str) -> None:
    """Refuses a study made by another objective (its directions, or the
    metrics ktplus recorded on it), before anything is written."""
    sid = study_id(storage, study_name)
    if sid is None:
        return
    theirs = [d.name.lower() for d in storage.get_study_directions(sid)]
    attrs = storage.get_study_system_attrs(sid)
    recorded = attrs.get(OBJECTIVE_ATTR)
    if theirs != list(directions) or (recorded is not None and recorded != objective):
        held = (", ".join(f"{n} ({d})" for n, d in recorded) if recorded
                else ", ".join(theirs))
        raise invalid("study_name", study_name,
                      f"a new study name, or this search's objective in the study of that name in "
                      f"{described}: it optimizes {held}, this search "
                      f"{', '.join(f'{n} ({d})' for n, d in objective)}")


def space_fingerprint(space: Any) -> dict[str, str]:
    """Each tunable hyperparameter's Optuna distribution, as JSON, by name."""
    from ktplus.oracles._space import distribution, tunable

    return {hp.name: optuna.distributions.distribution_to_json(distribution(hp)) for hp in tunable(space)}


def check_space(storage: Any, sid: int, study_name: str, ours: dict[str, str], described: str) -> None:
    """Refuses a study whose search space is another one: a hyperparameter
    both have with another domain, or names of which neither space holds
    the other's. The space recorded on the study (or, for a study made
    without ktplus, its trials' distributions) is compared."""
    theirs = storage.get_study_system_attrs(sid).get(SPACE_ATTR)
    if theirs is None:
        theirs = {}
        for t in storage.get_all_trials(sid, deepcopy=False):
            for name, dist in t.distributions.items():
                theirs.setdefault(name, optuna.distributions.distribution_to_json(dist))
        if not theirs:
            return
    differ = sorted(n for n in set(ours) & set(theirs)
                    if json.loads(ours[n]) != json.loads(theirs[n]))
    nested = set(ours) <= set(theirs) or set(theirs) <= set(ours)
    if differ or not nested:
        detail = (f"{differ[0]!r} is {theirs[differ[0]]} there and {ours[differ[0]]} here" if differ else
                  f"it tunes {sorted(theirs)}, this search {sorted(ours)}")
        raise invalid("study_name", study_name,
                      f"a new study name, or this search's search space in the study of that name in "
                      f"{described}: {detail}")


# -- trials --------------------------------------------------------------------

def is_surplus(trial: FrozenTrial) -> bool:
    return bool(trial.system_attrs.get(SURPLUS_ATTR))


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """A trial of ``max_trials``: not a retry of a failed one (Optuna's retry
    callback's copy runs in its place), not a surplus ask."""
    return RETRY_ATTR not in trial.system_attrs and not is_surplus(trial)


def budget_rank(trials: list[FrozenTrial], number: int) -> int:
    """How many trials before trial ``number`` count toward the budget."""
    return sum(1 for t in trials if t.number < number and counts_toward_budget(t))


@contextlib.contextmanager
def asking(study: optuna.Study) -> Iterator[None]:
    """``study.ask()`` without Optuna's warning that heartbeats are meant
    for ``Study.optimize``: ktplus runs them around its own trials."""
    local = getattr(study, "_thread_local", None)
    before = getattr(local, "in_optimize_loop", None)
    if local is not None:
        local.in_optimize_loop = True
    try:
        yield
    finally:
        if local is not None:
            local.in_optimize_loop = before


def _last_sign_of_life(trial: FrozenTrial) -> float:
    """When ``trial`` last showed its worker alive: its latest heartbeat, or
    its start when it has none yet (a worker killed between asking and its
    first beat) or only an older one (a retry's copy carries the heartbeat
    of the trial it replaces, from before it started)."""
    beat = trial.system_attrs.get(HEARTBEAT_ATTR)
    start = trial.datetime_start.timestamp() if trial.datetime_start is not None else 0.0
    return max(float(beat) if isinstance(beat, (int, float)) else 0.0, start)


def _silent_rdb_trial_ids(storage: Any, sid: int, grace_period: int) -> list[int]:
    """An RDBStorage's RUNNING trials that never beat (no heartbeat row) and
    started more than ``grace_period`` seconds ago: a worker killed between
    its ask and its first beat, a surplus ask not yet told. Optuna's own
    rule (``_get_stale_trial_ids``) skips them, so they would stay RUNNING
    for ever. Their start is the asking worker's clock (Optuna's
    ``datetime_start``), compared with this one's."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    rdb = getattr(storage, "_backend", storage)  # (a study wraps an RDBStorage in Optuna's cache)
    if not isinstance(rdb, optuna.storages.RDBStorage):
        return []
    trial: Any = models.TrialModel
    beat: Any = models.TrialHeartbeatModel
    start = getattr(trial, "_datetime_start_utc", None)  # Optuna >= 5.1 keeps naive UTC times
    if start is not None:
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    else:  # (naive local times)
        start, now = trial.datetime_start, datetime.datetime.now()
    cutoff = now - datetime.timedelta(seconds=grace_period)
    with _create_scoped_session(rdb.scoped_session) as session:
        rows = (session.query(trial.trial_id)
                .filter(trial.study_id == sid, trial.state == TrialState.RUNNING, start < cutoff,
                        ~session.query(beat.trial_id).filter(beat.trial_id == trial.trial_id).exists())
                .all())
    return [int(row[0]) for row in rows]


def fail_stale_trials(study: optuna.Study, grace_period: int,
                      on_failed: Callable[[FrozenTrial], None]) -> list[FrozenTrial]:
    """Fails the study's stale trials (Optuna's rule: RUNNING, no heartbeat
    for ``grace_period`` seconds) and re-queues each once with the same
    parameters; ``on_failed`` is called with each trial this call failed.

    With an RDBStorage's own heartbeats, its stale trials and callback are
    Optuna's (as ``optuna.storages.fail_stale_trials``), plus the RUNNING
    trials that never beat and started more than ``grace_period`` seconds
    ago (Optuna's rule skips them); otherwise ktplus's ``ktplus:heartbeat``
    attribute is read (a trial with no newer beat counts from its start)
    and Optuna's `RetryHeartbeatStaleTrialCallback` (``max_retry=1``)
    re-queues. Only one worker fails a trial: the storage refuses a second
    end."""
    storage: Any = study._storage
    sid = study._study_id
    if native_heartbeat(storage):
        stale = list(storage._get_stale_trial_ids(sid))
        stale += [t for t in _silent_rdb_trial_ids(storage, sid, grace_period) if t not in stale]
        callback = storage.get_heartbeat_stale_trial_callback()
    else:
        now = time.time()
        stale = [t._trial_id for t in storage.get_all_trials(sid, deepcopy=False, states=(TrialState.RUNNING,))
                 if now - _last_sign_of_life(t) > grace_period]
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
    failed: list[FrozenTrial] = []
    for trial_id in stale:
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                failed.append(copy.deepcopy(storage.get_trial(trial_id)))
        except UpdateFinishedTrialError:  # another worker failed it first, or its own worker ended it
            pass
    for trial in failed:
        if callback is not None:
            callback(study, trial)
        on_failed(trial)
    return failed


class TrialKeeper:
    """A running trial's companion thread: its heartbeat every
    ``interval`` seconds (the storage's own, or ktplus's attribute) and the
    epochs its curve file gained since, as the trial's intermediate values
    (so the study shows every worker's curves while they train).

    Args:
        storage: The study's storage.
        trial_id: The Optuna trial's storage id.
        interval: Seconds between beats.
        curve: Returns the trial's curve so far ({epoch: value}).
    """

    def __init__(self, storage: Any, trial_id: int, interval: float,
                 curve: Callable[[], dict[int, float]]) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self.interval = interval
        self._curve = curve
        self._native = native_heartbeat(storage)
        self._reported: dict[int, float] = {}
        self._stop = threading.Event()
        self.beat()
        self._thread = threading.Thread(target=self._run, name=f"ktplus-heartbeat-{trial_id}", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        if self._native:
            self.storage.record_heartbeat(self.trial_id)
        else:
            self.storage.set_trial_system_attr(self.trial_id, HEARTBEAT_ATTR, time.time())

    def report(self) -> None:
        """The curve's new epochs, as intermediate values."""
        for step, value in sorted(self._curve().items()):
            if self._reported.get(step) != value:
                self.storage.set_trial_intermediate_value(self.trial_id, step, value)
                self._reported[step] = value

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
                self.report()
            except UpdateFinishedTrialError:  # the trial was ended (failed as stale): nothing to keep
                return
            except Exception as e:  # a storage hiccup: the next beat tries again
                warnings.warn(f"ktplus: heartbeat of Optuna trial {self.trial_id} failed: {_short(e)}",
                              RuntimeWarning, stacklevel=1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=max(5.0, self.interval))
