"""A real keras-tuner chief and two workers on 127.0.0.1, with ktplus's
features, and a worker killed with SIGKILL mid-trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import ktplus
from tests.logging.tbserver import free_port

NODE = Path(__file__).with_name("node.py")
ROOT = Path(__file__).resolve().parents[2]


def start(directory, tuner_id, port, **env):
    environment = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
                   "KERASTUNER_ORACLE_PORT": str(port), **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen([sys.executable, str(NODE), str(directory)], env=environment, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_cluster(directory, worker_env=None, timeout=300, **env):
    port = free_port()
    chief = start(directory, "chief", port, **env)
    workers = [start(directory, f"tuner{i}", port, **env, **(worker_env or {}).get(i, {}))
               for i in range(2)]
    results = {}
    try:
        for name, proc in [("tuner0", workers[0]), ("tuner1", workers[1]), ("chief", chief)]:
            out, err = proc.communicate(timeout=timeout)
            results[name] = (proc.returncode, out, err)
    finally:
        for proc in [chief, *workers]:
            if proc.poll() is None:
                proc.kill()
    return results


def curves(project):
    return {json.loads(p.read_text())["trial_id"]: json.loads(p.read_text())
            for p in (project / "ktplus_curves").glob("trial_*.json")}


def sessions(run_dir):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    n = 0
    for f in run_dir.glob("events.out.tfevents*"):
        for event in EventFileLoader(str(f)).Load():
            n += sum(v.tag == "_hparams_/session_start_info" for v in event.summary.value)
    return n


def test_chief_and_two_workers_finish_with_every_feature(tmp_path):
    results = run_cluster(tmp_path)
    for name, (code, _, err) in results.items():
        assert code == 0, f"{name}: {err[-3000:]}"
    project = tmp_path / "d"
    frame = ktplus.load_results(project)
    assert len(frame) == 6 and frame["trial_id"].is_unique
    assert set(frame["status"]) <= {"completed", "pruned"}
    by_trial = curves(project)
    workers = {c["worker"] for c in by_trial.values()}
    assert workers == {"tuner0", "tuner1"}  # both workers ran trials
    pruned = [c for c in by_trial.values() if c["state"] == "pruned"]
    assert pruned, "no trial was pruned"
    # A pruning decision used the curves of trials run by the other worker.
    assert any(by_trial[other]["worker"] != c["worker"] for c in pruned for other in c["pruned_against"])
    tb = project / "tensorboard"
    for tid in frame["trial_id"]:
        assert sessions(tb / f"trial_{tid}") == 1
    # ktplus report reads the shared directory like any other search.
    report = subprocess.run([sys.executable, "-m", "ktplus.cli", "report", str(project), "--format", "json"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert report.returncode == 0 and len(json.loads(report.stdout)) == 6


def test_a_worker_killed_mid_trial_does_not_hang_the_search(tmp_path):
    results = run_cluster(tmp_path, worker_env={1: {"KILL_AT_EPOCH": 3}}, WORKER_TIMEOUT=4)
    assert results["tuner1"][0] == -signal.SIGKILL
    assert results["tuner0"][0] == 0, results["tuner0"][2][-3000:]
    assert results["chief"][0] == 0, results["chief"][2][-3000:]  # the chief exited
    assert "worker tuner1 stopped responding" in results["chief"][2]
    frame = ktplus.load_results(tmp_path / "d")
    assert len(frame) == 6 and frame["trial_id"].is_unique
    # The killed trial was re-run by the other worker (or failed, with the reason): never missing.
    assert set(frame["status"]) <= {"completed", "pruned", "failed"}
    assert not (frame["status"] == "running").any()
    failed = frame[frame["status"] == "failed"]
    assert all("stopped responding" in m for m in failed.get("message", []))


def test_cli_workers_runs_a_local_chief_and_workers(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ktplus.cli", "search", "--data", "iris", "--workers", "2",
                             "--trials", "4", "--epochs", "3", "--directory", "o"],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "a chief and 2 workers on 127.0.0.1" in out
    assert "trial 4/4" in out and "Leaderboard (4 trials" in out
    assert "tensorboard --logdir o/iris/tensorboard" in out
    by_trial = curves(tmp_path / "o" / "iris")
    assert len(by_trial) == 4 and {c["worker"] for c in by_trial.values()} <= {"tuner0", "tuner1"}
    logs = tmp_path / "o" / "iris" / "ktplus_workers"
    assert {"chief.log", "tuner0.log", "tuner1.log"} <= {p.name for p in logs.iterdir()}
