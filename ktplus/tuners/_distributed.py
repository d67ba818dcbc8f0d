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
  running trials whose curves and logs nobody else would see.
* Fencing: a worker declared lost may only have been stalled (SIGSTOP,
  swapping, a slow NFS). Each ktplus worker sends its tuner id with every
  call to the chief; the chief ignores ``update_trial``/``end_trial`` calls
  for a trial the calling worker no longer owns, so a late report can neither
  end another worker's trial nor count twice. The chief also leaves a fence
  file for the (worker, trial) pair, and the worker checks it before writing
  the trial's checkpoint, curve and TensorBoard session.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ktplus._atomic import atomic_write_json
from ktplus._compat import TrialStatus, chief_server, dist_utils, grpc_parts, oracle_lock, trial_module

WORKERS_DIR = "ktplus_workers"
CHIEF_MARKER = "_chief.json"
FENCE_DIR = "fenced"
#: gRPC metadata key carrying a ktplus worker's tuner id.
TUNER_ID_HEADER = "ktplus-tuner-id"
#: A trial may lose this many workers and still be re-queued.
LOST_WORKER_REQUEUES = 1
#: Seconds a worker waits before asking again while the search is full but other workers still run trials.
IDLE_WAIT = 0.2


def is_worker() -> bool:
    return bool(dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle())


def is_chief() -> bool:
    return bool(dist_utils.has_chief_oracle() and dist_utils.is_chief_oracle())


def heartbeat_path(project_dir: str, tuner_id: str) -> str:
    return os.path.join(project_dir, WORKERS_DIR, f"{tuner_id}.json")


def fence_path(project_dir: str, tuner_id: str, trial_id: str) -> str:
    return os.path.join(project_dir, WORKERS_DIR, FENCE_DIR, f"{tuner_id}--trial_{trial_id}")


def owns_trial(tuner: Any, trial_id: str) -> bool:
    """Whether this process may still write the records of ``trial_id``
    (always, outside a distributed search)."""
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
        for tuner_id in ids:
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
        with oracle_lock(self.oracle):
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
            # Fence first: from now on the worker's late writes and reports are ignored.
            try:
                atomic_write_json(fence_path(self.project_dir, tuner_id, trial.trial_id),
                                  {"tuner_id": tuner_id, "trial_id": trial.trial_id, "time": time.time()})
            except OSError as e:
                print(f"ktplus: could not write the fence file for worker {tuner_id}: {e}", file=sys.stderr)
            self._lost_by_trial[trial.trial_id] += 1
            others = set(self.oracle.tuner_ids) - {tuner_id}
            if not others:
                reason += "; no other worker is left to re-run it"
            trial.message = reason
            # Recorded by hand rather than through end_trial, which may raise on
            # the consecutive-failure limit before it frees the ongoing slot.
            self.oracle.ongoing_trials.pop(tuner_id, None)
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
            self.oracle.save()
        print(f"ktplus: {reason}; the trial is {action}", file=sys.stderr, flush=True)


def _caller(context: Any) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == TUNER_ID_HEADER:
            return str(value)
    return None


def _fenced_servicer(oracle: Any, project_dir: str) -> Any:
    """keras-tuner's OracleServicer that ignores a worker's reports about a
    trial it no longer owns (calls without ktplus's header: as keras-tuner)."""
    protos, oracle_chief = grpc_parts()

    class FencedServicer(oracle_chief.OracleServicer):  # type: ignore[misc, name-defined]
        fenced_calls = 0

        def _owned(self, context: Any, trial_id: str) -> bool:
            tuner_id = _caller(context)
            if tuner_id is None:
                return True
            ongoing = self.oracle.ongoing_trials.get(tuner_id)
            if ongoing is not None and ongoing.trial_id == trial_id:
                return True
            FencedServicer.fenced_calls += 1
            print(f"ktplus: ignored a late report from worker {tuner_id} about trial {trial_id}, which it "
                  "no longer owns", file=sys.stderr, flush=True)
            return False

        def CreateTrial(self, request: Any, context: Any) -> Any:
            with oracle_lock(self.oracle):
                response = super().CreateTrial(request, context)
                stopped = trial_module.Trial.from_proto(response.trial).status == TrialStatus.STOPPED
                wait = stopped and bool(set(self.oracle.ongoing_trials) - {request.tuner_id})
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
                        os.unlink(fence_path(project_dir, request.tuner_id, response.trial.trial_id))
            if wait:
                time.sleep(IDLE_WAIT)  # outside the lock: the worker's next request comes this much later
            return response

        def UpdateTrial(self, request: Any, context: Any) -> Any:
            with oracle_lock(self.oracle):
                if self._owned(context, request.trial_id):
                    return super().UpdateTrial(request, context)
                trial = self.oracle.get_trial(request.trial_id)
                return protos.get_service().UpdateTrialResponse(trial=trial.to_proto())

        def EndTrial(self, request: Any, context: Any) -> Any:
            with oracle_lock(self.oracle):
                if self._owned(context, request.trial.trial_id):
                    return super().EndTrial(request, context)
                return protos.get_service().EndTrialResponse()

    return FencedServicer(oracle)


def _serve(monitor: WorkerMonitor, poll: float = 0.5) -> Any:
    """keras-tuner's ``oracle_chief.start_server`` with the fenced servicer,
    polling every ``poll`` seconds instead of 20 once the search is over,
    stopping the gRPC server before returning, and stopping with an error
    when the monitor finds an unshared directory."""

    def serve(oracle: Any) -> None:
        from concurrent import futures

        import grpc

        protos, oracle_chief = grpc_parts()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        servicer = _fenced_servicer(oracle, monitor.project_dir)
        protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
        server.add_insecure_port(f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}")
        server.start()
        try:
            while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
                if monitor.error:
                    raise RuntimeError(monitor.error)
                time.sleep(poll)
        finally:
            server.stop(grace=1)

    return serve


def _tuner_id_interceptor(tuner_id: str) -> Any:
    """A gRPC client interceptor adding ``tuner_id`` to each call's metadata."""
    import grpc

    fields = ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")

    class Details(collections.namedtuple("Details", fields), grpc.ClientCallDetails):  # type: ignore[misc]
        pass

    class Interceptor(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            values = {f: getattr(details, f, None) for f in fields}
            values["metadata"] = [*(details.metadata or ()), (TUNER_ID_HEADER, tuner_id)]
            return continuation(Details(**values), request)

    return Interceptor()


def _identify_worker(oracle: Any, tuner_id: str) -> None:
    """Sends ``tuner_id`` with every call of this worker's oracle client."""
    import grpc

    protos, _ = grpc_parts()
    channel = grpc.insecure_channel(f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}")
    oracle.stub = protos.get_service_grpc().OracleStub(
        grpc.intercept_channel(channel, _tuner_id_interceptor(tuner_id)))


def _wait_for_chief(project_dir: str, timeout: float) -> None:
    marker = os.path.join(project_dir, WORKERS_DIR, CHIEF_MARKER)
    deadline = time.monotonic() + timeout
    while not os.path.exists(marker):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"ktplus: this worker cannot see the chief's marker {marker} after {timeout:.0f} s: the chief "
                "and the workers must share the project directory (the same `directory` and `project_name` "
                "on a shared file system), and the chief must be a ktplus tuner")
        time.sleep(min(0.2, timeout / 10))


@contextmanager
def session(tuner: Any) -> Iterator[None]:
    """The distributed side of one ``search()`` call (nothing when the
    search is not distributed)."""
    timeout = tuner.worker_timeout
    if is_chief():
        atomic_write_json(os.path.join(tuner.project_dir, WORKERS_DIR, CHIEF_MARKER),
                          {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()})
        monitor = WorkerMonitor(tuner.oracle, tuner.project_dir, timeout, interval=min(2.0, timeout / 4))
        monitor.start()
        try:
            with chief_server(_serve(monitor)):
                yield
        finally:
            monitor.stop()
    elif is_worker():
        tuner_id = os.environ["KERASTUNER_TUNER_ID"]
        _wait_for_chief(tuner.project_dir, timeout)
        _identify_worker(tuner.oracle, tuner_id)
        heartbeat = Heartbeat(tuner.project_dir, tuner_id, interval=min(5.0, timeout / 4))
        heartbeat.beat()
        heartbeat.start()
        try:
            yield
        finally:
            heartbeat.stop()
    else:
        yield
