"""A pack's slot tuner ids on the chief (``<worker>-pack<k>``, the ids a
worker's fused trials are asked under): they are their worker's.

The chief here is keras-tuner's oracle behind ktplus's gRPC servicer,
served in this process; each worker is keras-tuner's ``OracleClient`` with
ktplus's stub, as in a worker process (no model is trained: the processes
of ``test_distributed.py`` train them)."""

from __future__ import annotations

import os
import socket
import time
import types
from concurrent import futures

import grpc
import keras_tuner
import pytest
from keras_tuner.src.distribute.oracle_chief import exit_chief
from keras_tuner.src.distribute.oracle_client import OracleClient

from ktplus._compat import TrialStatus, grpc_parts
from ktplus.tuners import _distributed
from ktplus.tuners._pack import slot_id


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _oracle(max_trials):
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_loss", max_trials=max_trials, seed=3)
    hp = keras_tuner.HyperParameters()
    hp.Int("x", 0, 10**6)
    oracle.update_space(hp)
    return oracle


@pytest.fixture
def chief(tmp_path, monkeypatch):
    """Serves a chief oracle of ``max_trials`` trials; returns (oracle, project dir, a worker's client)."""
    servers = []

    def serve(max_trials=6):
        oracle = _oracle(max_trials)
        oracle._set_project_dir(str(tmp_path), "p")
        project = str(tmp_path / "p")
        port = _free_port()
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
        monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")  # this process: worker tuner0's side
        protos, _ = grpc_parts()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        protos.get_service_grpc().add_OracleServicer_to_server(_distributed._fenced_servicer(oracle, project), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        servers.append(server)

        def client(tuner_id):
            worker = OracleClient(_oracle(max_trials))
            worker.stub = _distributed.WorkerStub(project, tuner_id)
            return worker

        return oracle, project, client

    yield serve
    for server in servers:
        server.stop(grace=None)


def _end(client, trial, status=TrialStatus.COMPLETED):
    client.update_trial(trial.trial_id, {"val_loss": 1.0}, step=0)
    trial.status = status
    client.end_trial(trial)


def test_a_worker_reports_on_the_trials_of_all_its_slots_and_leaves_with_them(chief):
    oracle, _, client = chief(max_trials=3)
    w0 = client("tuner0")
    trials = [w0.create_trial(slot_id("tuner0", k)) for k in range(3)]
    assert [t.status for t in trials] == [TrialStatus.RUNNING] * 3
    assert set(oracle.ongoing_trials) == {"tuner0", "tuner0-pack1", "tuner0-pack2"}
    # Its reports about the trials held under its slot ids are taken, not ignored as late.
    for t in trials:
        _end(w0, t)
    assert sorted(oracle.end_order) == sorted(t.trial_id for t in trials)
    assert all(oracle.trials[t.trial_id].status == TrialStatus.COMPLETED for t in trials)
    assert oracle.trials[trials[2].trial_id].metrics.get_last_value("val_loss") == 1.0
    # Told the search is over (asking under its own id for its next pack), it leaves with its
    # slots: the chief's keras-tuner loop may end.
    assert w0.create_trial("tuner0").status == TrialStatus.STOPPED
    assert oracle.tuner_ids == set() and exit_chief(oracle)


def test_only_other_workers_trials_keep_a_worker_waiting(chief):
    oracle, _, client = chief(max_trials=3)
    w0, w1 = client("tuner0"), client("tuner1")
    mine = [w0.create_trial("tuner0"), w0.create_trial("tuner0-pack1")]
    _end(w1, w1.create_trial("tuner1"))  # the budget is spent
    # tuner1 waits (IDLE, asked again): tuner0's trials may still come back to be re-run.
    assert w1.create_trial("tuner1").status == TrialStatus.IDLE
    # tuner0's own trials do not keep its next slot waiting (they come back only if it is lost).
    assert w0.create_trial("tuner0-pack2").status == TrialStatus.STOPPED
    for t in mine:
        _end(w0, t)
    assert w0.create_trial("tuner0").status == TrialStatus.STOPPED
    assert w1.create_trial("tuner1").status == TrialStatus.STOPPED
    assert oracle.tuner_ids == set() and exit_chief(oracle)


def test_a_lost_worker_frees_and_fences_the_trials_of_all_its_slots(chief):
    oracle, project, client = chief(max_trials=6)
    w0, w1 = client("tuner0"), client("tuner1")
    packed = [w0.create_trial(slot_id("tuner0", k)) for k in range(3)]
    w1.create_trial("tuner1")
    beats = {w: _distributed.Heartbeat(project, w, interval=60) for w in ("tuner0", "tuner1")}
    for beat in beats.values():
        beat.beat()
    monitor = _distributed.WorkerMonitor(oracle, project, timeout=0.3, interval=0.05)
    monitor.check()
    time.sleep(0.4)
    beats["tuner1"].beat()  # tuner0 (whose slots have no heartbeat of their own) stays silent
    monitor.check()
    # The slot ids never had a heartbeat: they are tuner0's, not workers of their own.
    assert monitor.error is None and monitor.lost == ["tuner0"]
    held = sorted(t.trial_id for t in packed)
    assert set(oracle.ongoing_trials) == {"tuner1"} and oracle.tuner_ids == {"tuner1"}
    assert sorted(oracle._retry_queue) == held  # tuner1 is still asking: each goes back to run again
    assert all(oracle.trials[t].status == TrialStatus.IDLE for t in held)
    fences = sorted(os.listdir(os.path.join(project, _distributed.WORKERS_DIR, _distributed.FENCE_DIR)))
    assert fences == [f"tuner0--trial_{t}" for t in held]
    # tuner0's own records stop for every trial of its pack (it checks the fences under its id).
    worker_side = types.SimpleNamespace(project_dir=project)
    assert not any(_distributed.owns_trial(worker_side, t) for t in held)
    # Its late report about a trial held under a slot id is ignored.
    _end(w0, packed[2])
    assert oracle.trials[packed[2].trial_id].status == TrialStatus.IDLE
    assert packed[2].trial_id not in oracle.end_order
    # The trials run again, each once, and the budget stays six.
    rerun = [w1.create_trial(slot_id("tuner1", k)) for k in range(1, 4)]
    assert sorted(t.trial_id for t in rerun) == held
    assert len(oracle.trials) == 4


def test_a_worker_starting_a_new_pack_hands_back_the_trials_its_slots_still_hold(chief):
    """A worker whose ``search()`` was interrupted holding a pack of three,
    searching again with K=2 (its heartbeat never stopped): the trial under
    its own id is its own again, as keras-tuner gives it back; those under
    its slot ids go back to the retry queue. Every trial runs to its end,
    none stays ongoing, and the budget holds."""
    oracle, _, client = chief(max_trials=3)
    w0 = client("tuner0")
    interrupted = [w0.create_trial(slot_id("tuner0", k)) for k in range(3)]
    again = w0.create_trial("tuner0")
    assert again.trial_id == interrupted[0].trial_id
    assert set(oracle.ongoing_trials) == {"tuner0"}
    assert sorted(oracle._retry_queue) == sorted(t.trial_id for t in interrupted[1:])
    second = w0.create_trial("tuner0-pack1")
    for t in (again, second):
        _end(w0, t)
    third = w0.create_trial("tuner0")
    _end(w0, third)
    assert sorted([again.trial_id, second.trial_id, third.trial_id]) == sorted(t.trial_id for t in interrupted)
    assert w0.create_trial("tuner0").status == TrialStatus.STOPPED
    assert oracle.ongoing_trials == {} and len(oracle.trials) == 3 and exit_chief(oracle)



def test_a_tuner_with_a_distribution_strategy_asks_for_one_trial_at_a_time(tmp_path):
    """keras-tuner's multi-worker mode has the processes of one cluster share
    a tuner id (and so its trials), and the fused model would not be built
    under the strategy: pack steps aside."""
    import tensorflow as tf

    import ktplus
    from ktplus.tuners._pack import pack_size

    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=[8, 16])
    settings = {"objective": "val_accuracy", "max_trials": 4, "pack": 2, "directory": tmp_path}
    assert pack_size(ktplus.RandomSearch(hm, project_name="alone", **settings)) == 2
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert pack_size(ktplus.RandomSearch(hm, project_name="strategy", distribution_strategy=strategy,
                                         **settings)) == 1
