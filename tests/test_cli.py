"""The `ktplus` command, driven for real in subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def ktplus(*args, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "ktplus.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def test_search_writes_logs_and_prints_leaderboard(tmp_path):
    result = ktplus("search", "--trials", "2", "--epochs", "2", "--directory", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Leaderboard (2 trials" in out
    assert "tensorboard --logdir out/digits/tensorboard" in out
    lines = out.split("Leaderboard")[1].splitlines()
    assert sum(1 for line in lines if line.split()[:1] in (["0"], ["1"])) == 2
    events = list(Path(tmp_path, "out", "digits", "tensorboard").rglob("events.out.tfevents*"))
    assert len(events) >= 2
    assert "Traceback" not in result.stderr
    # Running it again resumes: the finished trials are reused, not re-run.
    again = ktplus("search", "--trials", "2", "--epochs", "2", "--directory", "out", cwd=tmp_path)
    assert again.returncode == 0 and "Leaderboard (2 trials" in again.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["search", "--data", "mnist"], "--data"),
        (["search", "--trials", "0"], "--trials"),
        (["search", "--family", "transformer"], "--family"),
        (["search", "--data", "wine", "--family", "conv"], "--family conv"),
        (["search", "--validation-split", "1.5"], "--validation-split"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, needle, tmp_path):
    result = ktplus(*args, cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert needle in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written before the error
