"""Every example runs, in quick mode, in a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted(p for p in (Path(__file__).resolve().parent.parent / "examples").glob("*.py")
                  if not p.name.startswith("_"))
#: Files an example promises to write (globs under its directory), by name.
WRITES = {
    # TensorBoard augmentation previews (the Images tab) of its trials.
    "05_data_preparation": "digits_data_prep/tensorboard/trial_*/*.ktplus-images",
}


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_in_quick_mode(script, tmp_path):
    env = {**os.environ, "KTPLUS_QUICK": "1", "KTPLUS_EXAMPLE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=600, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best" in result.stdout
    assert "Traceback" not in result.stderr
    if script.stem in WRITES:
        assert list(tmp_path.glob(WRITES[script.stem])), f"{script.name} wrote no {WRITES[script.stem]}"
