"""Package-level checks: a quiet import, the public API, lint and types."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import ktplus

ROOT = Path(__file__).resolve().parent.parent


def test_import_prints_nothing():
    result = subprocess.run([sys.executable, "-c", "import ktplus"], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == "", result.stderr


def test_public_api():
    for name in ktplus.__all__:
        assert hasattr(ktplus, name), name
    assert ktplus.__version__
    assert issubclass(ktplus.DenseHyperModel, ktplus.BaseHyperModel)
    import keras_tuner

    for cls in (ktplus.DenseHyperModel, ktplus.ConvHyperModel, ktplus.ResidualHyperModel,
                ktplus.AutoHyperModel, ktplus.RandomSearch, ktplus.BayesianOptimization,
                ktplus.Hyperband, ktplus.GridSearch):
        assert issubclass(cls, (keras_tuner.HyperModel, keras_tuner.Tuner))
        assert "Args:" in cls.__doc__ and "Example:" in cls.__doc__


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_lint_and_types(tool):
    if tool == "ruff":
        cmd = [sys.executable, "-m", "ruff", "check", "ktplus", "tests", "examples", "benchmarks"]
    else:
        cmd = [sys.executable, "-m", "mypy", "--config-file", "setup.cfg"]
    assert importlib.util.find_spec(tool) is not None, f"{tool} is a test requirement"
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
