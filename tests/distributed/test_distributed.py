"""A real keras-tuner chief and two workers on 127.0.0.1, with ktplus's
features, and a worker killed with SIGKILL mid-trial. Each worker trains
its trials fused ("pack": K trials asked at once, under slot tuner ids);
a lost worker's packed trials are all fenced and re-queued.

Each cluster costs three processes that import TensorFlow, so each run
serves several tests: ``cluster`` (GridSearch, keras-tuner's own oracle, every
process finishing, beside a stray worker on another directory) and
``optuna_cluster`` (OptunaSearch, a worker killed mid-trial) and
``guide_cluster`` (keras-tuner's guide as written, ``overwrite=True`` in every
process, with a worker stalled until the chief has ended); the stalled-worker
test runs GridSearch again."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ktplus
from tests.logging.tbserver import free_port

NODE = Path(__file__).with_name("node.py")
ROOT = Path(__file__).resolve().parents[2]


def start(directory, tuner_id, port, **env):
    environment = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
                   "KERASTUNER_ORACLE_PORT": str(port), **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen([sys.executable, str(NODE), str(directory)], env=environment, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_cluster(directory, worker_env=None, timeout=300, port=None, **env):
    port = port or free_port()
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


def start_logged(directory, tuner_id, port, logs, **env):
    """`start`, with the process's stdout and stderr in files under ``logs``
    (a process the test does not read from while it runs cannot fill a pipe)."""
    environment = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
                   "KERASTUNER_ORACLE_PORT": str(port), **{k: str(v) for k, v in env.items()}}
    with open(logs / f"{tuner_id}.out", "w") as out, open(logs / f"{tuner_id}.err", "w") as err:
        return subprocess.Popen([sys.executable, str(NODE), str(directory)], env=environment, cwd=ROOT,
                                stdout=out, stderr=err, text=True)


def finish(proc, logs, name, timeout):
    """``(code, stdout, stderr)`` once ``proc`` has exited, or None if it is
    still running after ``timeout`` seconds (a hang fails the test, it does
    not hang the suite)."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return proc.returncode, (logs / f"{name}.out").read_text(), (logs / f"{name}.err").read_text()


def process_state(proc):
    """The state letter of a running process ("T": stopped), None once it has exited."""
    if proc.poll() is not None:
        return None
    return Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def wait_for(condition, what, timeout=240):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.2)


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


def packed(stdout):
    """A finished node's ``packed_trials`` (trial id -> members of its fused model), as it printed them."""
    line = next(line for line in stdout.splitlines() if line.startswith("packed "))
    return json.loads(line[len("packed "):])


def requeued_trials(chief_stderr, worker):
    """The trials the chief re-queued after losing ``worker``."""
    return re.findall(rf"worker {worker} stopped responding .* during trial (\d+); the trial is re-queued",
                      chief_stderr)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """GridSearch: the chief and workers tuner0 and tuner1 (each training
    two trials at a time, fused), plus a stray worker whose directory is
    not the chief's. Returns the project, each process's (code, stdout,
    stderr) and the stray worker's directory."""
    root = tmp_path_factory.mktemp("grid")
    port = free_port()
    stray = start(root / "other", "tuner2", port, WORKER_TIMEOUT=3)
    try:
        results = run_cluster(root, port=port, PACK=2)
        out, err = stray.communicate(timeout=120)
        results["stray"] = (stray.returncode, out, err)
    finally:
        if stray.poll() is None:
            stray.kill()
    return root / "d", results, root / "other"


@pytest.fixture(scope="module")
def optuna_cluster(tmp_path_factory):
    """OptunaSearch: the chief and two workers, each asking for three trials
    at once (6 in all), tuner1 SIGKILLed at its 3rd member epoch (mid-way
    through its three fused trials). Returns the project and each process's
    results."""
    root = tmp_path_factory.mktemp("optuna")
    results = run_cluster(root, worker_env={1: {"KILL_AT_EPOCH": 3}}, WORKER_TIMEOUT=4, TUNER="optuna", PACK=3)
    return root / "d", results


@pytest.fixture(scope="module")
def guide_cluster(tmp_path_factory):
    """keras-tuner's distributed guide as written: ``overwrite=True`` in the
    chief and in both workers, the workers started once the chief's search
    runs (its marker exists). Both workers build their tuners, then search
    together; tuner1, asking for two trials at once (tuner0 for one: the
    three trials), is SIGSTOPped at its 2nd member epoch (mid-way through
    its two fused trials) and stays stopped until tuner0 (slow epochs) and
    the chief have exited, far longer than ``worker_timeout``, then gets
    SIGCONT. Returns the project and each
    process's ``(code, stdout, stderr)``, None for a process still running
    at its deadline."""
    root = tmp_path_factory.mktemp("guide")
    logs = tmp_path_factory.mktemp("guide_logs")
    gate = logs / "gate"
    port = free_port()
    env = {"OVERWRITE": 1, "WORKER_TIMEOUT": 3, "TRIALS": 3, "EPOCHS": 3}
    marker = root / "d" / "ktplus_workers" / "_chief.json"
    procs = {"chief": start_logged(root, "chief", port, logs, **env)}
    results = {}
    try:
        wait_for(lambda: marker.exists() or procs["chief"].poll() is not None, "the chief's search to start")
        procs["tuner0"] = start_logged(root, "tuner0", port, logs, GATE=gate, SLOW_EPOCH=1, PACK=1, **env)
        procs["tuner1"] = start_logged(root, "tuner1", port, logs, GATE=gate, STOP_AT_EPOCH=2, PACK=2, **env)
        wait_for(lambda: all(Path(f"{gate}.{w}").exists() or procs[w].poll() is not None
                             for w in ("tuner0", "tuner1")), "the workers to build their tuners")
        gate.touch()
        wait_for(lambda: process_state(procs["tuner1"]) in ("T", None), "tuner1 to stop mid-trial (or exit)")
        results["tuner0"] = finish(procs["tuner0"], logs, "tuner0", 300)
        results["chief"] = finish(procs["chief"], logs, "chief", 120)
        results["tuner1_stopped_until_the_chief_ended"] = process_state(procs["tuner1"]) == "T"
        procs["tuner1"].send_signal(signal.SIGCONT)
        results["tuner1"] = finish(procs["tuner1"], logs, "tuner1", 120)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return root / "d", results


def test_chief_and_two_workers_finish_with_every_feature(cluster):
    project, results, _ = cluster
    for name in ("chief", "tuner0", "tuner1"):
        code, _, err = results[name]
        assert code == 0, f"{name}: {err[-3000:]}"
    frame = ktplus.load_results(project)
    assert len(frame) == 6 and frame["trial_id"].is_unique
    assert set(frame["status"]) <= {"completed", "pruned"}
    by_trial = curves(project)
    workers = {c["worker"] for c in by_trial.values()}
    assert workers == {"tuner0", "tuner1"}  # both workers ran trials
    # Each worker trained trials fused, two at a time (one ask under its id and one under a
    # slot id), and only its own; every record is as unfused (above and below).
    for name in ("tuner0", "tuner1"):
        mine = packed(results[name][1])
        assert mine and set(mine.values()) == {2}, mine
        assert {by_trial[t]["worker"] for t in mine} == {name}
    oracle = json.loads((project / "oracle.json").read_text())
    assert oracle["ongoing_trials"] == {} and sorted(oracle["end_order"]) == sorted(frame["trial_id"])
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


def test_a_worker_killed_mid_trial_does_not_hang_the_search(optuna_cluster):
    project, results = optuna_cluster
    assert results["tuner1"][0] == -signal.SIGKILL
    assert results["tuner0"][0] == 0, results["tuner0"][2][-3000:]
    assert results["chief"][0] == 0, results["chief"][2][-3000:]  # the chief exited
    # The three trials tuner1 trained fused were all re-queued, each once.
    requeued = requeued_trials(results["chief"][2], "tuner1")
    assert len(requeued) == 3 and len(set(requeued)) == 3, results["chief"][2][-3000:]
    frame = ktplus.load_results(project)
    assert len(frame) == 6 and frame["trial_id"].is_unique
    assert set(frame["status"]) <= {"completed", "pruned"}
    # The killed trials were re-run to the end by the other worker, itself fused.
    for killed in requeued:
        assert curves(project)[killed]["worker"] == "tuner0"
        assert curves(project)[killed]["state"] in ("completed", "pruned")
    rerun = packed(results["tuner0"][1])
    assert set(requeued) < set(rerun) and len(rerun) == 6, rerun


def test_a_stalled_worker_that_resumes_cannot_end_a_trial_it_lost(tmp_path):
    """SIGSTOP one worker (two fused trials) for longer than worker_timeout, then SIGCONT."""
    port = free_port()
    env = {"WORKER_TIMEOUT": 3, "SLOW_EPOCH": 0.4}
    chief = start(tmp_path, "chief", port, **env)
    good = start(tmp_path, "tuner0", port, **env)
    stalled = start(tmp_path, "tuner1", port, STOP_AT_EPOCH=2, PACK=2, **env)
    fences = tmp_path / "d" / "ktplus_workers" / "fenced"
    try:
        deadline = time.monotonic() + 240
        while not (fences.is_dir() and any(fences.iterdir())):  # the chief declared tuner1 lost
            assert time.monotonic() < deadline, "tuner1 was never declared lost"
            assert chief.poll() is None, chief.communicate()[1][-3000:]
            time.sleep(0.2)
        settle = time.monotonic() + 5  # the chief fences the trials of a lost worker one after the other
        def fence_files() -> list[str]:  # a fence being written is a hidden temporary file until renamed
            return sorted(p.name for p in fences.iterdir() if not p.name.startswith("."))

        while len(fence_files()) < 2 and time.monotonic() < settle:
            time.sleep(0.05)
        fenced = fence_files()  # before tuner1 may get one back to re-run
        assert Path(f"/proc/{stalled.pid}/stat").read_text().split(")")[1].split()[0] == "T"  # still stopped
        stalled.send_signal(signal.SIGCONT)
        outputs = {name: proc.communicate(timeout=300) for name, proc in
                   [("tuner1", stalled), ("tuner0", good), ("chief", chief)]}
    finally:
        for proc in (chief, good, stalled):
            if proc.poll() is None:
                proc.kill()
    for name, proc in [("chief", chief), ("tuner0", good), ("tuner1", stalled)]:
        assert proc.returncode == 0, f"{name}: {outputs[name][1][-3000:]}"
    chief_err = outputs["chief"][1]
    # Both trials tuner1 held (one under its id, one under a slot id) were fenced and freed,
    # each once, and its late reports about each were ignored.
    lost = re.findall(r"worker tuner1 stopped responding .* during trial (\d+)", chief_err)
    assert len(lost) == 2 and len(set(lost)) == 2, chief_err[-3000:]
    assert fenced == sorted(f"tuner1--trial_{t}" for t in lost)
    for t in lost:
        assert f"ignored a late report from worker tuner1 about trial {t}," in chief_err
    assert packed(outputs["tuner1"][0]).keys() >= set(lost)  # it trained them fused, then was fenced
    project = tmp_path / "d"
    oracle = json.loads((project / "oracle.json").read_text())
    assert len(oracle["end_order"]) == 6 and len(set(oracle["end_order"])) == 6  # each trial ended once
    assert oracle["ongoing_trials"] == {}  # a resume must not re-run a finished trial
    frame = ktplus.load_results(project)
    assert len(frame) == 6 and set(frame["status"]) <= {"completed", "pruned"}
    # The re-runs (by whichever worker got them) wrote the curves and checkpoints, not the stale run.
    for lost_trial in lost:
        assert curves(project)[lost_trial]["state"] in ("completed", "pruned")
        assert (project / f"trial_{lost_trial}" / "checkpoint.weights.h5").exists()
    for tid in frame["trial_id"]:
        assert sessions(project / "tensorboard" / f"trial_{tid}") == 1


def test_a_heartbeat_never_seen_is_not_a_lost_worker_but_an_unshared_directory(tmp_path):
    from keras_tuner.oracles import RandomSearchOracle

    from ktplus.tuners._distributed import WorkerMonitor

    oracle = RandomSearchOracle(objective="loss", max_trials=2)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.tuner_ids.add("tuner7")  # asked for trials, but no heartbeat file ever appeared
    monitor = WorkerMonitor(oracle, str(tmp_path / "p"), timeout=0.2, interval=0.05)
    monitor.check()
    time.sleep(0.3)
    monitor.check()
    assert monitor.lost == [] and "tuner7" in oracle.tuner_ids
    assert monitor.error and "never appeared" in monitor.error and "share the project directory" in monitor.error


def test_a_worker_on_another_directory_stops_with_a_clear_error(cluster):
    _, results, other = cluster
    code, _, err = results["stray"]
    assert code != 0
    assert "cannot see the chief's marker" in err and "share the project directory" in err
    assert not list((other / "d").glob("trial_*"))  # it ran no trial


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


def test_optuna_on_the_chief_with_two_workers_and_a_lost_one(optuna_cluster):
    """OptunaSearch: the sampler lives on the chief, a killed worker's trial
    is re-queued and told once it ends, every trial reaches the study."""
    project, results = optuna_cluster
    assert results["tuner1"][0] == -signal.SIGKILL
    assert results["tuner0"][0] == 0, results["tuner0"][2][-3000:]
    assert results["chief"][0] == 0, results["chief"][2][-3000:]
    assert len(set(requeued_trials(results["chief"][2], "tuner1"))) == 3, results["chief"][2][-3000:]
    frame = ktplus.load_results(project)
    assert len(frame) == 6 and frame["trial_id"].is_unique
    assert set(frame["status"]) <= {"completed", "pruned"}
    # Only the chief's oracle holds a study: its state names every trial.
    state = json.loads((project / "oracle.json").read_text())
    assert set(state["optuna"]["trial_states"]) == set(frame["trial_id"])
    # The chief told its sampler how every trial ended, the re-run one included.
    assert set(state["optuna"]["trial_states"].values()) <= {"COMPLETE", "PRUNED"}, state["optuna"]


def test_the_guide_with_overwrite_in_every_process_runs_the_trials_and_the_chief_exits(guide_cluster):
    """keras-tuner's distributed guide passes ``overwrite=True`` to every
    process: only the chief starts the project afresh; a worker never
    deletes the shared directory (the chief's marker, trials and curves)."""
    project, results = guide_cluster
    assert results["tuner0"] is not None and results["tuner0"][0] == 0, results["tuner0"]
    assert results["chief"] is not None, "the chief never exited"
    assert results["chief"][0] == 0, results["chief"][2][-3000:]
    assert (project / "ktplus_workers" / "_chief.json").exists()
    frame = ktplus.load_results(project)
    assert len(frame) == 3 and frame["trial_id"].is_unique
    assert set(frame["status"]) <= {"completed", "pruned"}
    assert {c["worker"] for c in curves(project).values()} == {"tuner0"}  # tuner1 stalled in its first pack


def test_a_worker_resumed_after_the_chief_ended_exits_and_no_trial_stays_ongoing(guide_cluster):
    """A worker stalled (SIGSTOP) for longer than the whole rest of the
    search: its trial was re-run by the other worker, the chief ended, and
    on SIGCONT it stops at once instead of waiting for a chief that is gone."""
    project, results = guide_cluster
    assert results["chief"] is not None and results["chief"][0] == 0, results["chief"]
    chief_err = results["chief"][2]
    lost = requeued_trials(chief_err, "tuner1")
    assert len(lost) == 2 and len(set(lost)) == 2, chief_err[-3000:]  # both trials of its pack
    assert results["tuner1_stopped_until_the_chief_ended"]
    assert results["tuner1"] is not None, "the resumed worker never exited"
    code, out, err = results["tuner1"]
    assert code == 0, err[-3000:]
    assert "the chief has ended the search" in err
    assert packed(out) == dict.fromkeys(lost, 2)  # it trained the two fused, its records fenced
    oracle = json.loads((project / "oracle.json").read_text())
    assert oracle["ongoing_trials"] == {}
    assert sorted(oracle["end_order"]) == ["0", "1", "2"]  # each trial ended once
    for trial_id in lost:
        assert curves(project)[trial_id]["worker"] == "tuner0"  # the re-run's curve, not the stale run's
