"""``ktplus search --tuner tpe|cmaes|gp|qmc|nsga2`` and ``--objective a,b``.

Searches run in this process (TensorFlow is loaded already); bad input runs
in subprocesses that must fail before importing TensorFlow.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ktplus
import ktplus.cli

IRIS = ["--data", "iris", "--epochs", "2"]
PARETO = ["--tuner", "nsga2", "--objective", "val_accuracy,num_params"]


def run(*args: str) -> tuple[int, str, str]:
    """``ktplus ARGS`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ktplus.cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def one_line(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and needle in err, err


@pytest.fixture(scope="module")
def tpe(tmp_path_factory) -> tuple[Path, str]:
    """A 2-trial TPE search of iris: (project directory, its output)."""
    root = tmp_path_factory.mktemp("tpe")
    code, out, err = run("search", *IRIS, "--tuner", "tpe", "--trials", "2", "--directory", str(root))
    assert code == 0, err
    return root / "iris", out


def test_tpe_runs_optuna_search_with_the_tpe_sampler(tpe):
    project, out = tpe
    assert "tpe search of dense models on iris" in out and "Leaderboard (2 trials" in out
    assert json.loads((project / "ktplus.json").read_text())["tuner"] == "OptunaSearch"
    assert json.loads((project / "ktplus_data.json").read_text())["tuner"] == "tpe"


def test_resuming_with_another_sampler_tuner_or_objective_is_refused(tpe):
    project, _ = tpe
    before = (project / "trial_0" / "trial.json").read_bytes()
    for args, needle in ((["--tuner", "cmaes"], "(--tuner tpe), not OptunaSearch (--tuner cmaes)"),
                         (["--tuner", "random"], "(--tuner tpe), not RandomSearch (--tuner random)"),
                         (["--tuner", "tpe", "--objective", "val_loss"], "--objective val_accuracy, not val_loss")):
        code, _, err = run("search", *IRIS, *args, "--trials", "2", "--directory", str(project.parent))
        one_line(code, err, needle)
    assert (project / "trial_0" / "trial.json").read_bytes() == before


def test_tpe_search_resumes(tpe):
    project, _ = tpe
    before = (project / "trial_0" / "trial.json").read_bytes()
    code, out, err = run("search", *IRIS, "--tuner", "tpe", "--trials", "3", "--directory", str(project.parent))
    assert code == 0, err
    assert "trial 3/3" in out and "trial 1/3" not in out and "Leaderboard (3 trials" in out
    assert (project / "trial_0" / "trial.json").read_bytes() == before
    code, out, err = run("report", str(project))
    assert code == 0 and "3 trials in" in out and "objective val_accuracy (max)" in out, err


@pytest.mark.parametrize("sampler", ["cmaes", "gp", "qmc"])
def test_every_other_sampler_runs(sampler, tmp_path):
    code, out, err = run("search", "--data", "iris", "--epochs", "1", "--trials", "2", "--tuner", sampler,
                         "--directory", str(tmp_path))
    assert code == 0, err
    assert f"{sampler} search of dense models" in out and "Leaderboard (2 trials" in out
    assert json.loads((tmp_path / "iris" / "ktplus_data.json").read_text())["tuner"] == sampler


def _printed_front(text: str) -> dict[str, tuple[float, float]]:
    """Trial id -> (val_accuracy, num_params) of the Pareto table printed in ``text``."""
    lines = text.split("\nPareto front (")[1].splitlines()
    assert lines[1].split()[:3] == ["trial_id", "val_accuracy", "num_params"], lines[1]
    rows = [line.split() for line in lines[3:lines.index("", 3) if "" in lines[3:] else None]]
    return {r[0]: (float(r[1]), float(r[2])) for r in rows}


def test_several_objectives_print_the_pareto_front(tmp_path):
    code, out, err = run("search", *IRIS, *PARETO, "--trials", "4", "--directory", str(tmp_path))
    assert code == 0, err
    assert "objectives val_accuracy, num_params" in out and "Pareto front 1 trial" in out
    assert out.index("Leaderboard (4 trials") < out.index("\nPareto front (")
    front = _printed_front(out)
    # Brute force: the completed trials no other completed trial beats in both objectives.
    frame = ktplus.load_results(tmp_path / "iris")
    done = frame[frame["status"] == "completed"]
    points = {t: (float(a), float(p)) for t, a, p in zip(done["trial_id"], done["best/val_accuracy"],
                                                         done["num_params"])}
    expected = {t for t, (a, p) in points.items()
                if not any(b >= a and q <= p and (b > a or q < p) for b, q in points.values())}
    assert set(front) == expected and front
    for t, (a, p) in front.items():
        assert np.isclose(a, points[t][0], atol=1e-4) and p == points[t][1]
    assert [a for a, _ in front.values()] == sorted((a for a, _ in front.values()), reverse=True)
    code, report, err = run("report", str(tmp_path / "iris"))
    assert code == 0, err
    assert "objectives val_accuracy, num_params" in report and _printed_front(report) == front


NO_TENSORFLOW = ("import sys, ktplus.cli; code = ktplus.cli.main(sys.argv[1:]); "
                 "assert not [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')], "
                 "'TensorFlow was imported'; sys.exit(code)")
LIST = ["--objective", "val_accuracy,num_params"]
BAD = [
    (["--tuner", "tpee"], "argument --tuner: invalid choice: 'tpee'"),
    (["--objective", ""], "expected a metric name or a comma list"),
    (["--objective", "val_accuracy,"], "expected a metric name or a comma list"),
    (["--objective", "val_accuracy, val_accuracy"], "val_accuracy listed more than once"),
    (["--tuner", "nsga2"], "--tuner nsga2 optimizes several objectives"),
    (["--tuner", "nsga2", "--objective", "val_accuracy"], "--tuner nsga2 optimizes several objectives"),
    (["--tuner", "cmaes", *LIST], "--tuner cmaes optimizes one objective"),
    ([*LIST, "--early-stopping", "3"], "--early-stopping 3 watches one metric"),
    ([*LIST, "--pruning", "median"], "--pruning median watches one metric"),
    ([*LIST, "--lr-decay", "plateau"], "--lr-decay plateau watches one metric"),
    ([*LIST, "--lr-decay", "tune", "--pruning", "percentile"], "--pruning percentile and --lr-decay tune watch"),
    ([*LIST, "--export", "model.keras"], "--export needs one best model"),
    ([*LIST, "--test-split", "0.2"], "--test-split needs one best model"),
    (["--data", "iris", "--task", "regression", "--objective", "val_accuracy"],
     "val_accuracy cannot be measured in a regression search"),
    (["--data", "iris", "--objective", "val_accuracy,val_mae"], "val_mae cannot be measured in a classification"),
    (["--data", "iris", "--objective", "val_f1"], "val_f1 cannot be measured"),
]


@pytest.mark.parametrize(("args", "needle"), BAD, ids=[f"{i}-{b[1][:24]}" for i, b in enumerate(BAD)])
def test_bad_input_is_one_line_before_tensorflow(args, needle, tmp_path):
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, "search", *args, "--directory", "o"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    one_line(result.returncode, result.stderr, needle)
    assert os.listdir(tmp_path) == []  # nothing written
