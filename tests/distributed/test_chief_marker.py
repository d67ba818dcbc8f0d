"""A worker's stub and the chief's marker: only an end the chief marks after
the marker the worker saw when it started ends the worker's search; a "done"
left by an earlier search (a resumed project whose workers start first) is
waited past, as keras-tuner's client waits for its chief."""

from __future__ import annotations

import socket
import time

import grpc
import pytest

from ktplus._compat import grpc_parts
from ktplus.tuners import _distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stub(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(_free_port()))  # nobody serves there
    _distributed.write_chief_marker(str(tmp_path), _distributed.CHIEF_DONE)  # an earlier search's end
    seen = _distributed.chief_record(str(tmp_path))["time"]
    return _distributed.WorkerStub(str(tmp_path), "tuner0", seen), tmp_path


def _ask(stub):
    protos, _ = grpc_parts()
    return stub.GetSpace(protos.get_service().GetSpaceRequest(), timeout=1.5)


def test_a_done_marker_the_worker_saw_at_start_does_not_end_its_search(stub):
    worker, _ = stub
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        _ask(worker)
    assert error.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert time.monotonic() - start >= 1.0  # it kept asking for the chief until its deadline
    assert worker.chief_ended is None


def test_a_done_marker_written_after_the_worker_started_ends_its_search(stub):
    worker, directory = stub
    time.sleep(0.01)
    _distributed.write_chief_marker(str(directory), _distributed.CHIEF_DONE)  # this search's end
    with pytest.raises(_distributed.ChiefEndedError):
        _ask(worker)
    assert worker.chief_ended == _distributed.CHIEF_DONE
