"""A killed OptunaSearch resumed with overwrite=False: exact trial count,
the sampler knowing every finished trial, the queue kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras_tuner
import pytest
from optuna.trial import TrialState

import ktplus
from tests.oracles.synthetic import Synthetic

CHILD = Path(__file__).with_name("child.py")
ROOT = Path(__file__).resolve().parents[2]


def run_child(directory, **env):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **{k: str(v) for k, v in env.items()}}
    return subprocess.run([sys.executable, str(CHILD), str(directory)], env=environment, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def trial_values(project):
    out = {}
    for path in sorted(project.glob("trial_*/trial.json")):
        state = json.loads(path.read_text())
        out[state["trial_id"]] = (state["status"], state["hyperparameters"]["values"])
    return out


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """Both samplers' searches, killed after their 4th trial and resumed,
    in three processes: [tpe killed], [tpe resumed, cmaes killed], [cmaes
    resumed]. Returns the directory, each project's trials when its search
    was killed, and each resumed search's line of output."""
    directory = tmp_path_factory.mktemp("resume")
    before, state = {}, {}

    def killed(sampler):
        before[sampler] = trial_values(directory / f"p_{sampler}")
        state[sampler] = json.loads((directory / f"p_{sampler}" / "oracle.json").read_text())["optuna"]

    runs = [run_child(directory, SEARCHES="tpe:4", TRIALS=9)]
    assert runs[-1].returncode == -signal.SIGKILL, runs[-1].stderr[-2000:]
    killed("tpe")
    runs.append(run_child(directory, SEARCHES="tpe,cmaes:4", TRIALS=9))
    assert runs[-1].returncode == -signal.SIGKILL, runs[-1].stderr[-2000:]
    killed("cmaes")
    runs.append(run_child(directory, SEARCHES="cmaes", TRIALS=9))
    assert runs[-1].returncode == 0, runs[-1].stderr[-3000:]
    lines = {sampler: [line for run in runs[1:] for line in run.stdout.splitlines()
                       if line.startswith(f"trials {sampler} ")] for sampler in ("tpe", "cmaes")}
    return directory, before, state, lines


@pytest.mark.parametrize("sampler", ["tpe", "cmaes"])
def test_a_killed_search_resumes_with_the_sampler_knowing_every_trial(resumed, sampler):
    directory, killed_before, killed_state, lines = resumed
    project = directory / f"p_{sampler}"
    before = killed_before[sampler]
    assert len(before) == 4 and all(status == "COMPLETED" for status, _ in before.values())
    assert set(killed_state[sampler]["trial_system_attrs"]) == set(before)

    assert lines[sampler] == [f"trials {sampler} 9 9"]  # exactly max_trials, one Optuna trial each
    after = trial_values(project)
    assert len(after) == 9 and all(status == "COMPLETED" for status, _ in after.values())
    assert {t: after[t] for t in before} == before  # finished trials untouched
    # The queue ran once, first, although the resumed script enqueued it again.
    assert [v["x"] for _, v in after.values()].count(1.0) == 1
    assert after["0"][1]["x"] == 1.0 and after["0"][1]["y"] == -0.5 and after["1"][1]["x"] == -2.0
    # The resumed sampler did not replay its first draws.
    points = [(v["x"], v["y"]) for _, v in after.values()]
    assert len(set(points)) == len(points)

    # A tuner reloading the finished project rebuilds the study from the records.
    tuner = ktplus.OptunaSearch(Synthetic(), objective=keras_tuner.Objective("loss", "min"), max_trials=9,
                                sampler=sampler, seed=5, directory=directory, project_name=f"p_{sampler}",
                                tensorboard=False)
    study = tuner.oracle.study
    assert len(study.trials) == 9 and all(f.state == TrialState.COMPLETE for f in study.trials)
    assert [f.user_attrs["keras_tuner_trial_id"] for f in study.trials] == sorted(after, key=int)
    for frozen in study.trials:
        values = after[frozen.user_attrs["keras_tuner_trial_id"]][1]
        assert frozen.values[0] == pytest.approx((values["x"] - 1) ** 2 + (values["y"] + 0.5) ** 2)
    if sampler == "cmaes":  # CMA-ES's own state came back with its trials
        assert any(any(k.startswith("cma:") for k in f.system_attrs) for f in study.trials)
