"""``tuner.enqueue_trial(values)``: configurations that run before sampled
ones, in order, on every ktplus tuner.

The queue is one crash-safe file, ``<project>/ktplus_queue.json``::

    {"entries": [{"values": {"units": 64}, "trial_id": "00"},
                 {"values": {"units": 32, "dropout": 0.1}, "trial_id": null}]}

An entry is taken by the oracle when it creates a trial: the file records
the trial id first, then keras-tuner saves the trial. On reload an entry
whose trial keras-tuner never saved (a kill between the two writes) is
pending again, so keras-tuner's trial records stay the one truth and the
queue survives a resume. A resumed script that enqueues the same values
again (the k-th call of this process equal to the k-th recorded entry) does
not enqueue them twice.

keras-tuner's oracles complete a partial entry with the defaults (Hyperband
uses it as a new first-round candidate); `OptunaOracle` lets its sampler
choose the rest (Optuna's ``study.enqueue_trial``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ktplus._atomic import atomic_write_json, read_json_dict

QUEUE_FILE = "ktplus_queue.json"


class TrialQueue:
    """The enqueued configurations of one search (see the module docstring).

    Args:
        project_dir: The search's project directory.

    Example:

    >>> import tempfile
    >>> q = TrialQueue(tempfile.mkdtemp())
    >>> q.add({"units": 64})
    True
    >>> q.take("00")
    {'units': 64}
    >>> q.pending()
    []
    """

    def __init__(self, project_dir: str) -> None:
        self.path = os.path.join(project_dir, QUEUE_FILE)
        self._lock = threading.Lock()
        data = read_json_dict(self.path) or {}
        found = data.get("entries")
        entries: list[Any] = found if isinstance(found, list) else []
        self.entries: list[dict[str, Any]] = [
            {"values": dict(e["values"]), "trial_id": e.get("trial_id")}
            for e in entries if isinstance(e, dict) and isinstance(e.get("values"), dict)]
        self._recorded = len(self.entries)  # entries written by an earlier process
        self._calls = 0

    def _save(self) -> None:
        atomic_write_json(self.path, {"entries": self.entries})

    def reconcile(self, trial_ids: Any) -> None:
        """Makes pending again the entries whose trial keras-tuner never saved."""
        known = {str(t) for t in trial_ids}
        with self._lock:
            changed = False
            for entry in self.entries:
                if entry["trial_id"] is not None and str(entry["trial_id"]) not in known:
                    entry["trial_id"] = None
                    changed = True
            if changed:
                self._save()

    def add(self, values: dict[str, Any]) -> bool:
        """Appends ``values`` (already validated); False when this call
        repeats, in order, an entry an earlier process recorded."""
        with self._lock:
            index = self._calls
            self._calls += 1
            if index < self._recorded and self.entries[index]["values"] == values:
                return False
            self.entries.append({"values": dict(values), "trial_id": None})
            self._save()
            return True

    def take(self, trial_id: str) -> dict[str, Any] | None:
        """The first pending entry's values, now recorded as ``trial_id``'s
        (None when nothing is pending)."""
        with self._lock:
            for entry in self.entries:
                if entry["trial_id"] is None:
                    entry["trial_id"] = str(trial_id)
                    self._save()
                    return dict(entry["values"])
        return None

    def pending(self) -> list[dict[str, Any]]:
        """The values still waiting, in order."""
        return [dict(e["values"]) for e in self.entries if e["trial_id"] is None]

    def trial_ids(self) -> set[str]:
        """The trials created from entries."""
        return {str(e["trial_id"]) for e in self.entries if e["trial_id"] is not None}


def attach(oracle: Any, queue: TrialQueue) -> None:
    """Makes ``oracle`` run ``queue``'s entries before its own choices.

    `OptunaOracle` reads the queue itself. keras-tuner's Hyperband oracles
    take an entry (completed with defaults) where they would draw a random
    first-round candidate; every other oracle returns it from
    ``populate_space`` before its own algorithm runs (which then sees the
    trials it created itself only, so a grid search still walks its whole
    grid from its first point, ``GridSearchOracle._populate_next`` and
    ``start_order`` being its own trials).
    """
    from ktplus._compat import HyperbandOracle, TrialStatus
    from ktplus.oracles._optuna_oracle import OptunaOracle
    from ktplus.oracles._space import with_defaults

    queue.reconcile(getattr(oracle, "trials", {}).keys())
    if isinstance(oracle, OptunaOracle):
        oracle.queue = queue
        return
    if getattr(oracle, "_ktplus_queue", None) is not None:
        oracle._ktplus_queue = queue
        return
    oracle._ktplus_queue = queue
    populate = oracle.populate_space

    if isinstance(oracle, HyperbandOracle):
        draw = oracle._random_values
        current: dict[str, str] = {}

        def random_values() -> Any:
            entry = oracle._ktplus_queue.take(current["id"]) if "id" in current else None
            return with_defaults(oracle.get_space(), entry) if entry is not None else draw()

        def populate_hyperband(trial_id: str) -> Any:
            current["id"] = trial_id
            try:
                return populate(trial_id)
            finally:
                current.pop("id", None)

        oracle._random_values = random_values
        oracle.populate_space = populate_hyperband
        return

    def populate_queued(trial_id: str) -> Any:
        q = oracle._ktplus_queue
        entry = q.take(trial_id)
        if entry is not None:
            return {"status": TrialStatus.RUNNING, "values": with_defaults(oracle.get_space(), entry)}
        queued = q.trial_ids()
        following = getattr(oracle, "_populate_next", None)  # GridSearchOracle: grid points to continue from
        if isinstance(following, list):
            following[:] = [t for t in following if t not in queued]
        order = oracle.start_order
        oracle.start_order = [t for t in order if t not in queued]
        try:
            return populate(trial_id)
        finally:
            oracle.start_order = order

    oracle.populate_space = populate_queued
