"""keras-tuner's chief/worker search, surviving a lost worker.

In keras-tuner 1.4.8 the chief exits only when no trial is ongoing and every
worker that asked for a trial has been told the search is over, so a worker
killed mid-trial leaves its trial RUNNING forever and the chief never exits.
ktplus adds a heartbeat: each worker rewrites
``<project>/ktplus_workers/<tuner_id>.json`` every few seconds from a thread,
and the chief watches those files (with its own clock, so hosts' clocks need
not agree). A worker silent for ``worker_timeout`` seconds is declared lost:
its trial is re-queued for another worker (once, and only while another
worker is still asking for trials; otherwise, or when a trial loses a second
worker, it is marked failed with the reason) and its tuner id is forgotten,
so the remaining workers finish the search and the chief exits.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any

from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.src.engine import oracle as oracle_module
from keras_tuner.src.engine import trial as trial_module

from ktplus.training._atomic import atomic_write_json

WORKERS_DIR = "ktplus_workers"
#: A trial may lose this many workers and still be re-queued.
LOST_WORKER_REQUEUES = 1


def is_worker() -> bool:
    return dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle()


def is_chief() -> bool:
    return dist_utils.has_chief_oracle() and dist_utils.is_chief_oracle()


def heartbeat_path(project_dir: str, tuner_id: str) -> str:
    return os.path.join(project_dir, WORKERS_DIR, f"{tuner_id}.json")


@contextmanager
def _oracle_lock(oracle: Any) -> Any:
    """Holds the lock keras-tuner's ``@synchronized`` oracle methods use."""
    name = threading.current_thread().name
    lock = oracle_module.LOCKS[oracle]
    lock.acquire()
    oracle_module.THREADS[oracle] = name
    try:
        yield
    finally:
        oracle_module.THREADS[oracle] = None
        lock.release()


class Heartbeat(threading.Thread):
    """Worker side: rewrites the heartbeat file every ``interval`` seconds."""

    def __init__(self, project_dir: str, tuner_id: str, interval: float) -> None:
        super().__init__(name=f"ktplus-heartbeat-{tuner_id}", daemon=True)
        self.path = heartbeat_path(project_dir, tuner_id)
        self.tuner_id = tuner_id
        self.interval = interval
        self.beats = 0
        self._stop_event = threading.Event()

    def beat(self, state: str = "alive") -> None:
        self.beats += 1
        try:
            atomic_write_json(self.path, {"tuner_id": self.tuner_id, "pid": os.getpid(),
                                          "host": socket.gethostname(), "beat": self.beats,
                                          "time": time.time(), "state": state})
        except OSError:
            pass  # a full or flaky shared disk: the chief will notice if it lasts

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.beat()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=self.interval + 5)
        self.beat("done")


class WorkerMonitor(threading.Thread):
    """Chief side: declares silent workers lost and frees their trials.

    Args:
        oracle: The chief's oracle.
        project_dir: The shared project directory.
        timeout: Seconds without a new heartbeat before a worker is lost.
        interval: Seconds between checks.
    """

    def __init__(self, oracle: Any, project_dir: str, timeout: float, interval: float) -> None:
        super().__init__(name="ktplus-worker-monitor", daemon=True)
        self.oracle = oracle
        self.project_dir = project_dir
        self.timeout = timeout
        self.interval = interval
        self._seen: dict[str, tuple[Any, float]] = {}
        self._lost_by_trial: collections.Counter[str] = collections.Counter()
        self.lost: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.check()
            except Exception as e:  # the monitor must never take the chief down
                print(f"ktplus: worker monitor error: {e!r}", file=sys.stderr)

    def stop(self) -> None:
        self._stop_event.set()

    def _read(self, tuner_id: str) -> dict[str, Any] | None:
        try:
            with open(heartbeat_path(self.project_dir, tuner_id)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def check(self) -> None:
        with _oracle_lock(self.oracle):
            ids = set(self.oracle.tuner_ids) | set(self.oracle.ongoing_trials)
        now = time.monotonic()
        for tuner_id in ids:
            beat = self._read(tuner_id)
            key = None if beat is None else beat.get("beat")
            seen = self._seen.get(tuner_id)
            if seen is None or seen[0] != key:
                self._seen[tuner_id] = (key, now)
                continue
            if now - seen[1] > self.timeout:
                self.declare_lost(tuner_id, now - seen[1])

    def declare_lost(self, tuner_id: str, silent_for: float) -> None:
        with _oracle_lock(self.oracle):
            trial = self.oracle.ongoing_trials.get(tuner_id)
            self.oracle.tuner_ids.discard(tuner_id)
            self._seen.pop(tuner_id, None)
            self.lost.append(tuner_id)
            if trial is None:
                print(f"ktplus: worker {tuner_id} stopped responding ({silent_for:.0f} s without a "
                      "heartbeat) while idle", file=sys.stderr, flush=True)
                return
            reason = (f"worker {tuner_id} stopped responding ({silent_for:.0f} s without a heartbeat) "
                      f"during trial {trial.trial_id}")
            self._lost_by_trial[trial.trial_id] += 1
            others = set(self.oracle.tuner_ids) - {tuner_id}
            if not others:
                reason += "; no other worker is left to re-run it"
            trial.message = reason
            # Recorded by hand rather than through end_trial, which may raise on
            # the consecutive-failure limit before it frees the ongoing slot.
            self.oracle.ongoing_trials.pop(tuner_id, None)
            if others and self._lost_by_trial[trial.trial_id] <= LOST_WORKER_REQUEUES:
                trial.status = trial_module.TrialStatus.IDLE
                self.oracle._retry_queue.append(trial.trial_id)
                action = "re-queued for another worker"
            else:
                trial.status = trial_module.TrialStatus.FAILED
                self.oracle.end_order.append(trial.trial_id)
                action = "marked failed"
            self.oracle._save_trial(trial)
            self.oracle.save()
        print(f"ktplus: {reason}; the trial is {action}", file=sys.stderr, flush=True)


def serve(oracle: Any, poll: float = 0.5) -> None:
    """keras-tuner's ``oracle_chief.start_server``, polling every ``poll``
    seconds instead of 20 once the search is over, and stopping the gRPC
    server before returning (same servicer, same protocol)."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}")
    server.start()
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll)
    finally:
        server.stop(grace=1)


@contextmanager
def fast_chief() -> Any:
    """Uses `serve` for the duration of a chief's ``search()``."""
    from keras_tuner.src.distribute import oracle_chief

    original = oracle_chief.start_server
    oracle_chief.start_server = serve
    try:
        yield
    finally:
        oracle_chief.start_server = original
