"""A real TensorBoard server on 127.0.0.1 for tests, queried over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TensorBoardServer:
    """``tensorboard --logdir DIR --host 127.0.0.1 --port P`` in a subprocess."""

    def __init__(self, logdir: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
             "--port", str(self.port), "--load_fast=false", "--reload_interval", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict) -> Any:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def session_groups(self) -> list[dict]:
        statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
        return self.post("/data/plugin/hparams/session_groups", {
            "experimentName": "", "allowedStatuses": statuses, "colParams": [],
            "startIndex": 0, "sliceSize": 1000})["sessionGroups"]

    def wait_until(self, check: Any, timeout: float = 90.0) -> Any:
        """Polls ``check()`` until it returns a truthy value."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tensorboard exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                value = check()
                if value:
                    return value
            except Exception as e:  # not up yet, or not loaded yet
                last = e
            time.sleep(0.5)
        raise TimeoutError(f"tensorboard did not serve the expected data in {timeout}s: {last!r}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
