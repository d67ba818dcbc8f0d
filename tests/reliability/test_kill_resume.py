"""SIGKILL the search at several points, run the same code again: it
finishes with exactly max_trials trials, the finished ones untouched, the
interrupted one run again, TensorBoard without duplicates, the best model
loads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import ktplus

CHILD = Path(__file__).with_name("child.py")


def run_child(directory, mode="none", at=1):
    env = {**os.environ, "KILL_MODE": mode, "KILL_AT": str(at)}
    return subprocess.run([sys.executable, str(CHILD), str(directory)], capture_output=True, text=True,
                          timeout=600, env=env, cwd=Path(__file__).resolve().parents[2])


def finished_trials(project: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(project.glob("trial_*/trial.json")):
        try:
            state = json.loads(path.read_text())
        except ValueError:
            continue
        if state["status"] == "COMPLETED":
            out[state["trial_id"]] = path.read_bytes()
    return out


def tensorboard_files(project: Path, trial_ids) -> dict[str, bytes]:
    files = {}
    for tid in trial_ids:
        for f in (project / "tensorboard" / f"trial_{tid}").rglob("*"):
            if f.is_file():
                files[str(f)] = f.read_bytes()
    return files


def count_tags(run_dir: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps = []
    for f in sorted(run_dir.glob("events.out.tfevents*")):
        for event in EventFileLoader(str(f)).Load():
            steps += [event.step for v in event.summary.value if v.tag == tag]
    return steps


# One project, killed four times at four different points, each run resuming
# what the previous one left (a resumed run re-runs the interrupted trial
# first), then a last run that finishes: five processes instead of eight,
# and every resume also starts from another kind of wreck.
KILLS = [
    # (mode, at, the trial it dies in, the trials finished when it dies)
    ("json", 3, "0", []),                      # inside trial 0's trial.json write, after the data, before the rename
    ("epoch", 5, "1", ["0"]),                  # mid-trial: the 2nd epoch of the 2nd trial it runs
    ("checkpoint", 2, "2", ["0", "1"]),        # while trial 2's weights file is half written
    # after the re-run trial 2 ended, when trial 3's trial.json is written and oracle.json is not yet:
    # keras-tuner's reload would count trial 3 and never run it
    ("created", 1, "2", ["0", "1", "2"]),
]


def test_kill_and_resume(tmp_path):
    project = tmp_path / "p"
    snapshots: dict[str, bytes] = {}
    tb_snapshots: dict[str, bytes] = {}
    for mode, at, trial, finished in KILLS:
        killed = run_child(tmp_path, mode, at)
        assert killed.returncode == -signal.SIGKILL, (mode, killed.stderr[-2000:])
        assert f"killed in trial {trial}" in killed.stdout, (mode, killed.stdout)
        before = finished_trials(project)
        assert sorted(before) == finished, mode
        for tid, content in snapshots.items():  # what an earlier run finished is still untouched
            assert before[tid] == content, (mode, tid)
        tb_snapshots.update(tensorboard_files(project, before.keys() - snapshots.keys()))
        snapshots.update(before)

    resumed = run_child(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "best model loaded" in resumed.stdout and "trials 4" in resumed.stdout

    after = finished_trials(project)
    assert sorted(after) == ["0", "1", "2", "3"]
    for tid, content in snapshots.items():  # finished trials untouched
        assert after[tid] == content
    for path, content in tb_snapshots.items():
        assert Path(path).read_bytes() == content
    frame = ktplus.load_results(project)
    assert len(frame) == 4 and frame["trial_id"].is_unique
    assert set(frame["status"]) <= {"completed", "pruned"}
    tb = project / "tensorboard"
    for tid in after:
        assert count_tags(tb / f"trial_{tid}", "_hparams_/session_start_info") == [0]
    overview = count_tags(tb / "search_overview", "objective")
    assert sorted(overview) == [0, 1, 2, 3]  # one point per trial, none duplicated
    # the report of the resumed search: every trial once, each with its curve
    html = Path(ktplus.report(project, str(tmp_path / "report.html"))).read_text()
    assert "<dt>Trials</dt><dd>4: " in html and "running" not in html.split("<dt>Trials</dt>")[1][:80]
    assert 'data-figure="history"' in html and 'data-figure="curves"' in html
    assert len(ktplus.reporting.load_search(project).curves()) == 4
