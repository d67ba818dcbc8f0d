"""Worker processes for the storage tests: start `worker.py` on a storage,
wait for it, read which trials it ran; the study's trials that count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker.py")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def start(directory: Path, storage: str, **env: str) -> subprocess.Popen:
    """`worker.py` on ``storage`` in ``directory``, configured by ``env``."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen([sys.executable, str(WORKER), str(directory), storage], env=environment, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 500) -> tuple[int, str, str]:
    """Its exit code, stdout and stderr (the test fails if it outlives ``timeout``)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"worker timed out:\n{out}\n{err[-3000:]}")
    return process.returncode, out, err


def ran(out: str) -> list[str]:
    """The trial ids a worker ran (its last line: ``done <ids>``)."""
    lines = [line for line in out.splitlines() if line.startswith("done")]
    assert lines, out
    return lines[-1].split()[1:]


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's trials that count toward max_trials: no retry copy, no surplus ask."""
    return [t for t in study.get_trials(deepcopy=False)
            if "failed_trial" not in t.system_attrs and not t.system_attrs.get("ktplus:surplus")]
