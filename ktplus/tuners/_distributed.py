"""keras-tuner's chief/worker search, surviving lost and stalled workers.

In keras-tuner 1.4.8 the chief exits only when no trial is ongoing and every
worker that asked for a trial has been told the search is over, so a worker
killed mid-trial leaves its trial RUNNING forever and the chief never exits.
ktplus adds, on keras-tuner's own engine and protocol:

* Heartbeats: each worker rewrites ``<project>/ktplus_workers/<tuner_id>.json``
  every few seconds from a thread; the chief watches those files with its
  own clock (hosts' clocks need not agree). A worker whose heartbeat stops
  changing for ``worker_timeout`` seconds is declared lost: its trial is
  re-queued for another worker (once, and only while another worker is still
  asking for trials; otherwise, or when a trial loses a second worker, it is
  marked failed with the reason) and its tuner id is forgotten, so the
  remaining workers finish the search and the chief exits. A worker whose
  heartbeat was never seen is not lost: if it runs trials and its heartbeat
  does not appear within ``worker_timeout``, the chief and that worker do not
  share the project directory, and the chief stops with that error.
* A shared-directory check on the workers: the chief writes
  ``ktplus_workers/_chief.json`` when its search starts; a worker that cannot
  see it within ``worker_timeout`` stops with a clear error instead of
  running trials whose curves and logs nobody else would see. A worker's
  ``overwrite=True`` (keras-tuner's guide passes it to every process) never
  deletes the shared directory: only the chief starts the search afresh.
* The end of the search: the chief marks ``_chief.json`` "done" before it
  stops serving. keras-tuner's worker waits up to an hour for a chief it
  cannot reach; a ktplus worker that cannot reach a chief whose marker says
  "done", written after the marker the worker saw when it started (a worker
  stalled past the end of the search), stops at once, its search ending as
  keras-tuner's does when the chief says the search is over. A "done" left
  by an earlier search never ends a worker: it waits for this search's chief
  as keras-tuner's client does (a resumed search whose workers start first).
* Fencing: a worker declared lost may only have been stalled (SIGSTOP,
  swapping, a slow NFS). Each ktplus worker sends its tuner id with every
  call to the chief; the chief ignores ``update_trial``/``end_trial`` calls
  for a trial the calling worker no longer owns, so a late report can neither
  end another worker's trial nor count twice. The chief also leaves a fence
  file for the (worker, trial) pair, and the worker checks it before writing
  the trial's checkpoint, curve and TensorBoard session.
* Fused trials (the fast path's "pack", `ktplus.tuners._pack`): a worker
  asks for up to K trials at once, the k-th under the slot tuner id
  ``<worker>-pack<k>`` (the first under its own id), and trains them
  together. The chief counts every slot id as its worker's: the worker's
  heartbeat covers them; a lost worker's trials, under any of its ids, are
  all fenced (under the worker's id: its ``owns_trial`` answers for every
  slot) and freed; a report from the worker about a trial held under any of
  its ids is taken, and one about a trial no longer held under them is
  ignored as above. The worker asks under its own id only when it starts a
  new pack, once every trial it asked for before has ended: a trial still
  held under one of its slot ids then (a ``search()`` of the worker that
  was interrupted, maybe with a larger K) goes back to the retry queue. A
  worker told the search is over leaves with all its idle slot ids, and
  the worker's own trials never keep it waiting for trials (only other
  workers' can come back to it).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import keras_tuner

from ktplus._atomic import atomic_write_json, read_json_dict
from ktplus._compat import (
    TrialStatus,
    chief_server,
    dist_utils,
    grpc_parts,
    oracle_lock,
    requeue_ongoing,
    trial_module,
)

WORKERS_DIR = "ktplus_workers"
CHIEF_MARKER = "_chief.json"
FENCE_DIR = "fenced"
#: gRPC metadata key carrying a ktplus worker's tuner id.
TUNER_ID_HEADER = "ktplus-tuner-id"
#: A trial may lose this many workers and still be re-queued.
LOST_WORKER_REQUEUES = 1
#: Seconds a worker waits before asking again while the search is full but other workers still run trials.
IDLE_WAIT = 0.2
#: Seconds between a worker's tries to reach a chief it cannot connect to.
RECONNECT_WAIT = 0.5
#: The chief marker's states once the chief's search is over ("running" before).
CHIEF_DONE, CHIEF_FAILED = "done", "failed"


class ChiefEndedError(keras_tuner.errors.FatalError):
    """A distributed worker called a chief that has ended its search and
    stopped serving (its marker says so). A `keras_tuner.errors.FatalError`:
    keras-tuner does not count it against a trial. Inside the worker's
    ``search()`` a chief "done" ends the search quietly; a chief that failed,
    or a call after the search, raises it.

    Args:
        marker: The chief's marker file.
        state: What the marker says: "done" or "failed".
    """

    def __init__(self, marker: str, state: str) -> None:
        self.marker = marker
        self.state = state
        how = "has ended the search" if state == CHIEF_DONE else "stopped with an error"
        super().__init__(f"ktplus: the chief {how} and no longer serves trials (its marker {marker} says "
                         f"{state!r}); this worker stops")


#: A pack's slot tuner id, ``<worker>-pack<k>`` for k >= 1 (`ktplus.tuners._pack.slot_id`).
_SLOT_ID = re.compile(r"(?P<worker>.+)-pack[1-9][0-9]*")


def worker_of(tuner_id: str) -> str:
    """The worker a tuner id the chief's oracle knows belongs to: ``<worker>``
    for one of its pack's slot ids ``<worker>-pack<k>``, else the id itself."""
    match = _SLOT_ID.fullmatch(tuner_id)
    return match.group("worker") if match else tuner_id


def _ids_of(ids: Any, worker: str) -> list[str]:
    """The tuner ids among ``ids`` that belong to ``worker`` (its own and its slots')."""
    return [tuner_id for tuner_id in ids if worker_of(tuner_id) == worker]


def is_worker() -> bool:
    return bool(dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle())


def is_chief() -> bool:
    return bool(dist_utils.has_chief_oracle() and dist_utils.is_chief_oracle())


def keep_shared_directory(kwargs: dict[str, Any]) -> dict[str, Any]:
    """keras-tuner's tuner arguments for this process: on a worker,
    ``overwrite=True`` never deletes the shared project directory.

    keras-tuner's distributed guide passes ``overwrite=True`` in every
    process, and keras-tuner's ``BaseTuner`` deletes the project directory in
    each: a worker started once the chief's search runs deletes the chief's
    records, the other workers' checkpoints and the chief's marker. Starting
    the search afresh is the chief's to do (it holds the oracle); a worker's
    ``overwrite=True`` drops only its own saved tuner state
    (``<project>/<tuner id>.json``) and goes on as keras-tuner's
    ``overwrite=True`` does. Elsewhere ``kwargs`` is returned unchanged.
    """
    if not (is_worker() and kwargs.get("overwrite")):
        return kwargs
    project = os.path.join(os.fspath(kwargs.get("directory") or "."),
                           str(kwargs.get("project_name") or "untitled_project"))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(project, f"{os.environ['KERASTUNER_TUNER_ID']}.json"))
    return {**kwargs, "overwrite": False}


def heartbeat_path(project_dir: str, tuner_id: str) -> str:
    return os.path.join(project_dir, WORKERS_DIR, f"{tuner_id}.json")


def fence_path(project_dir: str, tuner_id: str, trial_id: str) -> str:
    return os.path.join(project_dir, WORKERS_DIR, FENCE_DIR, f"{tuner_id}--trial_{trial_id}")


def owns_trial(tuner: Any, trial_id: str) -> bool:
    """Whether this process may still write the records of ``trial_id``
    (always, outside a distributed search). The chief fences a trial under
    the worker's own id whichever of its slot ids held it, so this answers
    for the trials of every slot of a pack."""
    if not is_worker():
        return True
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    return not os.path.exists(fence_path(tuner.project_dir, tuner_id, trial_id))


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
    """Chief side: declares silent workers lost and frees their trials, and
    notices workers whose heartbeat never appears (an unshared directory).
    A pack's slot ids are their worker's (`worker_of`): its heartbeat covers
    them, and a lost worker's trials under all of them are freed.

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
        #: tuner id -> (last beat counter seen, when it last changed)
        self._seen: dict[str, tuple[Any, float]] = {}
        #: tuner id -> when it was first active without any heartbeat
        self._unseen_since: dict[str, float] = {}
        self._lost_by_trial: collections.Counter[str] = collections.Counter()
        self.lost: list[str] = []
        self.error: str | None = None
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
        with oracle_lock(self.oracle):
            ids = set(self.oracle.tuner_ids) | set(self.oracle.ongoing_trials)
        now = time.monotonic()
        for tuner_id in {worker_of(i) for i in ids}:  # a pack's slots beat with their worker
            beat = self._read(tuner_id)
            seen = self._seen.get(tuner_id)
            if beat is None and seen is None:
                # Never seen: not lost. Active for a whole timeout without one: not shared.
                since = self._unseen_since.setdefault(tuner_id, now)
                if now - since > self.timeout and self.error is None:
                    self.error = (
                        f"ktplus: worker {tuner_id} has been running trials for {now - since:.0f} s but its "
                        f"heartbeat never appeared in {os.path.join(self.project_dir, WORKERS_DIR)}: the "
                        "chief and the workers must share the project directory (the same `directory` "
                        "and `project_name` on a shared file system)")
                    print(self.error, file=sys.stderr, flush=True)
                continue
            self._unseen_since.pop(tuner_id, None)
            key = None if beat is None else beat.get("beat")
            if seen is None or seen[0] != key:
                self._seen[tuner_id] = (key, now)
                continue
            if now - seen[1] > self.timeout:
                self.declare_lost(tuner_id, now - seen[1])

    def declare_lost(self, tuner_id: str, silent_for: float) -> None:
        """Forgets worker ``tuner_id`` and frees every trial it holds, under
        its own id and its pack's slot ids: each is fenced, then re-queued
        for another worker or marked failed."""
        with oracle_lock(self.oracle):
            held = [(i, self.oracle.ongoing_trials[i]) for i in _ids_of(list(self.oracle.ongoing_trials), tuner_id)]
            for i in _ids_of(list(self.oracle.tuner_ids), tuner_id):
                self.oracle.tuner_ids.discard(i)
            self._seen.pop(tuner_id, None)
            self.lost.append(tuner_id)
            if not held:
                print(f"ktplus: worker {tuner_id} stopped responding ({silent_for:.0f} s without a "
                      "heartbeat) while idle", file=sys.stderr, flush=True)
                return
            # Fence first: from now on the worker's late writes and reports are ignored.
            for _, trial in held:
                try:
                    atomic_write_json(fence_path(self.project_dir, tuner_id, trial.trial_id),
                                      {"tuner_id": tuner_id, "trial_id": trial.trial_id, "time": time.time()})
                except OSError as e:
                    print(f"ktplus: could not write the fence file for worker {tuner_id}: {e}", file=sys.stderr)
            others = {worker_of(i) for i in self.oracle.tuner_ids} - {tuner_id}
            told = []
            for held_id, trial in held:
                reason = (f"worker {tuner_id} stopped responding ({silent_for:.0f} s without a heartbeat) "
                          f"during trial {trial.trial_id}")
                self._lost_by_trial[trial.trial_id] += 1
                if not others:
                    reason += "; no other worker is left to re-run it"
                trial.message = reason
                # Recorded by hand rather than through end_trial, which may raise on
                # the consecutive-failure limit before it frees the ongoing slot.
                self.oracle.ongoing_trials.pop(held_id, None)
                if others and self._lost_by_trial[trial.trial_id] <= LOST_WORKER_REQUEUES:
                    trial.status = TrialStatus.IDLE
                    self.oracle._retry_queue.append(trial.trial_id)
                    action = "re-queued for another worker"
                else:
                    trial.status = TrialStatus.FAILED
                    self.oracle.end_order.append(trial.trial_id)
                    action = "marked failed"
                self.oracle._save_trial(trial)
                tell = getattr(self.oracle, "tell_ended_trial", None)  # OptunaOracle: the sampler learns it
                if action == "marked failed" and tell is not None:
                    tell(trial.trial_id)
                told.append(f"ktplus: {reason}; the trial is {action}")
            self.oracle.save()
        for line in told:
            print(line, file=sys.stderr, flush=True)


def chief_marker(project_dir: str) -> str:
    return os.path.join(project_dir, WORKERS_DIR, CHIEF_MARKER)


def write_chief_marker(project_dir: str, state: str) -> None:
    """Writes the chief's marker with ``state`` ("running" raises OSError
    when the directory cannot be written; the end states only warn)."""
    try:
        atomic_write_json(chief_marker(project_dir), {"pid": os.getpid(), "host": socket.gethostname(),
                                                       "time": time.time(), "state": state})
    except OSError as e:
        if state not in (CHIEF_DONE, CHIEF_FAILED):
            raise
        print(f"ktplus: could not mark the chief {state} in {chief_marker(project_dir)}: {e}", file=sys.stderr)


def chief_record(project_dir: str) -> dict[str, Any]:
    """The chief's marker as written ({} without one)."""
    marker = chief_marker(project_dir)
    return read_json_dict(marker) if os.path.exists(marker) else {}


def chief_state(project_dir: str) -> str | None:
    """What the chief's marker says: "running", "done" or "failed"; None
    without a marker (a marker written before ktplus recorded states is
    "running")."""
    marker = chief_marker(project_dir)
    if not os.path.exists(marker):
        return None
    return str(read_json_dict(marker).get("state", "running"))


def _caller(context: Any) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == TUNER_ID_HEADER:
            return str(value)
    return None


def _fenced_servicer(oracle: Any, project_dir: str) -> Any:
    """keras-tuner's OracleServicer that ignores a worker's reports about a
    trial it no longer owns (calls without ktplus's header: as keras-tuner),
    counting the trials held under a worker's pack slot ids as its own."""
    protos, oracle_chief = grpc_parts()

    class FencedServicer(oracle_chief.OracleServicer):  # type: ignore[misc, name-defined]
        fenced_calls = 0

        def _owned(self, context: Any, trial_id: str) -> bool:
            tuner_id = _caller(context)
            if tuner_id is None:
                return True
            ongoing = self.oracle.ongoing_trials
            if any(ongoing[i].trial_id == trial_id for i in _ids_of(list(ongoing), tuner_id)):
                return True
            FencedServicer.fenced_calls += 1
            print(f"ktplus: ignored a late report from worker {tuner_id} about trial {trial_id}, which it "
                  "no longer owns", file=sys.stderr, flush=True)
            return False

        def CreateTrial(self, request: Any, context: Any) -> Any:
            with oracle_lock(self.oracle):
                worker = worker_of(request.tuner_id)
                if worker == request.tuner_id:
                    self._requeue_stale_slots(worker)
                response = super().CreateTrial(request, context)
                stopped = trial_module.Trial.from_proto(response.trial).status == TrialStatus.STOPPED
                # Only other workers' trials can come back to this worker (its own would only if it were lost).
                wait = stopped and any(worker_of(i) != worker for i in self.oracle.ongoing_trials)
                if stopped and not wait:
                    # The search is over for this worker: its idle pack slots leave with it (its own
                    # id leaves when it asks under it, as in keras-tuner), or the chief would wait for them.
                    for i in _ids_of(list(self.oracle.tuner_ids), worker):
                        if i != worker and i not in self.oracle.ongoing_trials:
                            self.oracle.tuner_ids.discard(i)
                if wait:
                    # The search is full but other workers still run trials: this
                    # worker waits (keras-tuner's IDLE, asked again) so that a trial
                    # whose worker is lost can still be re-run instead of failed.
                    self.oracle.tuner_ids.add(request.tuner_id)
                    idle = trial_module.Trial(self.oracle.get_space(), status=TrialStatus.IDLE)
                    response = protos.get_service().CreateTrialResponse(trial=idle.to_proto())
                elif response.trial.trial_id:
                    # A new lease: a worker given back a trial it once lost owns it again.
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(fence_path(project_dir, worker, response.trial.trial_id))
            if wait:
                time.sleep(IDLE_WAIT)  # outside the lock: the worker's next request comes this much later
            return response

        def _requeue_stale_slots(self, worker: str) -> None:
            """A worker asks under its own id only to start a new pack, once every
            trial it asked for before has ended: a trial still held under one of its
            slot ids (an interrupted ``search()`` of that worker, maybe with a larger
            K) goes back to the retry queue, as ``_pack.requeue_slots`` does locally."""
            stale = [i for i in _ids_of(list(self.oracle.ongoing_trials), worker) if i != worker]
            moved = requeue_ongoing(self.oracle, stale)
            if moved:
                self.oracle.save()
                print(f"ktplus: worker {worker} started anew; the trials it still held under pack slots "
                      f"({', '.join(moved)}) go back to the retry queue", file=sys.stderr, flush=True)

        def UpdateTrial(self, request: Any, context: Any) -> Any:
            with oracle_lock(self.oracle):
                if self._owned(context, request.trial_id):
                    return super().UpdateTrial(request, context)
                trial = self.oracle.get_trial(request.trial_id)
                return protos.get_service().UpdateTrialResponse(trial=trial.to_proto())

        def EndTrial(self, request: Any, context: Any) -> Any:
            with oracle_lock(self.oracle):
                if self._owned(context, request.trial.trial_id):
                    response = super().EndTrial(request, context)
                    # keras-tuner saves oracle.json before it frees the worker's slot: saved
                    # again, the ended trial is no longer "ongoing" there (a resume would re-run it).
                    self.oracle.save()
                    return response
                return protos.get_service().EndTrialResponse()

    return FencedServicer(oracle)


def _serve(monitor: WorkerMonitor, poll: float = 0.5) -> Any:
    """keras-tuner's ``oracle_chief.start_server`` with the fenced servicer,
    polling every ``poll`` seconds instead of 20 once the search is over,
    stopping the gRPC server before returning, and stopping with an error
    when the monitor finds an unshared directory. The chief's marker says
    "done" (or "failed") before the server stops: a worker that finds no
    server then knows the search is over."""

    def serve(oracle: Any) -> None:
        from concurrent import futures

        import grpc

        protos, oracle_chief = grpc_parts()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        servicer = _fenced_servicer(oracle, monitor.project_dir)
        protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
        server.add_insecure_port(f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}")
        server.start()
        state = CHIEF_FAILED
        try:
            while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
                if monitor.error:
                    raise RuntimeError(monitor.error)
                time.sleep(poll)
            state = CHIEF_DONE
        finally:
            write_chief_marker(monitor.project_dir, state)
            server.stop(grace=1)

    return serve


class WorkerStub:
    """keras-tuner's ``OracleStub`` for a ktplus worker (its oracle client's
    ``stub``).

    Each call carries the worker's tuner id (the chief fences by it).
    keras-tuner's client waits for a chief it cannot reach (``wait_for_ready``,
    up to an hour); this stub tries again every ``RECONNECT_WAIT`` seconds
    until the same deadline, but raises `ChiefEndedError` as soon as the
    chief's marker says its search is over.

    Args:
        project_dir: The shared project directory.
        tuner_id: This worker's ``KERASTUNER_TUNER_ID``.
    """

    def __init__(self, project_dir: str, tuner_id: str, seen: float = 0.0) -> None:
        import grpc

        protos, _ = grpc_parts()
        address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
        # Reconnects within a second of the chief's server coming up (gRPC's backoff grows to 2 minutes).
        options = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", 1000)]
        self._stub = protos.get_service_grpc().OracleStub(grpc.insecure_channel(address, options=options))
        self._metadata = ((TUNER_ID_HEADER, tuner_id),)
        self.project_dir = project_dir
        #: The chief's time in the marker this worker saw when it started: an end state
        #: counts only when written later (a "done" left by an earlier search does not).
        self.seen = seen
        #: The chief marker's state once a call found the chief gone and its search over.
        self.chief_ended: str | None = None

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)
        call = getattr(self._stub, method)

        def invoke(request: Any, timeout: float | None = None, metadata: Any = None,
                   wait_for_ready: bool | None = None, **kwargs: Any) -> Any:
            return self._call(call, request, timeout, [*(metadata or ()), *self._metadata], **kwargs)

        return invoke

    def _call(self, call: Any, request: Any, timeout: float | None, metadata: list, **kwargs: Any) -> Any:
        import grpc

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.chief_ended is not None:
                raise ChiefEndedError(chief_marker(self.project_dir), self.chief_ended)
            left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            try:
                # Without wait_for_ready a chief that cannot be reached fails the call at once
                # (UNAVAILABLE: nothing was sent), instead of blocking until the deadline.
                return call(request, timeout=left, metadata=metadata, wait_for_ready=False, **kwargs)
            except grpc.RpcError as error:
                if getattr(error, "code", lambda: None)() != grpc.StatusCode.UNAVAILABLE:
                    raise
                record = chief_record(self.project_dir)
                state = record.get("state")
                if state in (CHIEF_DONE, CHIEF_FAILED) and float(record.get("time", 0.0)) > self.seen:
                    self.chief_ended = str(state)
                    continue
                if deadline is not None and time.monotonic() + RECONNECT_WAIT >= deadline:
                    raise
                time.sleep(RECONNECT_WAIT)


def _wait_for_chief(project_dir: str, timeout: float) -> float:
    """Waits for the marker of a running chief and returns the chief's time
    in it. A marker left "done" by an earlier search is waited past (this
    search's chief rewrites it); still "done" after ``timeout``, the worker
    goes on and asks the chief as keras-tuner's client does (until its
    deadline): only an end state the chief writes later ends its search."""
    marker = chief_marker(project_dir)
    deadline = time.monotonic() + timeout
    while (state := chief_state(project_dir)) in (None, CHIEF_DONE, CHIEF_FAILED):
        if state is not None and time.monotonic() > deadline:
            return float(chief_record(project_dir).get("time", 0.0))
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"ktplus: this worker cannot see the chief's marker {marker} after {timeout:.0f} s: the chief "
                "and the workers must share the project directory (the same `directory` and `project_name` "
                "on a shared file system), and the chief must be a ktplus tuner")
        time.sleep(min(0.2, timeout / 10))
    return float(chief_record(project_dir).get("time", 0.0))


@contextmanager
def session(tuner: Any) -> Iterator[None]:
    """The distributed side of one ``search()`` call (nothing when the
    search is not distributed)."""
    timeout = tuner.worker_timeout
    if is_chief():
        write_chief_marker(tuner.project_dir, "running")
        monitor = WorkerMonitor(tuner.oracle, tuner.project_dir, timeout, interval=min(2.0, timeout / 4))
        monitor.start()
        try:
            with chief_server(_serve(monitor)):
                yield
        except BaseException:
            if chief_state(tuner.project_dir) == "running":  # it failed before it served
                write_chief_marker(tuner.project_dir, CHIEF_FAILED)
            raise
        finally:
            monitor.stop()
    elif is_worker():
        tuner_id = os.environ["KERASTUNER_TUNER_ID"]
        seen = _wait_for_chief(tuner.project_dir, timeout)
        tuner.oracle.stub = WorkerStub(tuner.project_dir, tuner_id, seen)
        heartbeat = Heartbeat(tuner.project_dir, tuner_id, interval=min(5.0, timeout / 4))
        heartbeat.beat()
        heartbeat.start()
        try:
            yield
        except ChiefEndedError as error:
            if error.state != CHIEF_DONE:
                raise
            # Stalled past the end of the search (any trial it held was re-run by another
            # worker): its search ends as when the chief says "stop".
            print(f"ktplus: worker {tuner_id}: the chief has ended the search; this worker stops",
                  file=sys.stderr, flush=True)
        finally:
            heartbeat.stop()
    else:
        yield
