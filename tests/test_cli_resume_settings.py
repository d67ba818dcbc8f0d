"""Resuming a CLI search with another ``--seed`` or ``--validation-split``
is refused with one line before anything is written: its earlier trials were
validated on other rows (the seed draws the validation rows and the folds),
and one leaderboard must not mix them."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

import ktplus.cli

SEARCH = ["search", "--data", "iris", "--trials", "1", "--epochs", "1"]


def run(*argv):
    """``ktplus.cli.main(argv)`` -> (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ktplus.cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def listing(directory):
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None)
            for p in Path(directory).rglob("*")}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """Two finished searches: one with a validation split, one with --cv."""
    root = tmp_path_factory.mktemp("resume")
    for extra in ([], ["--cv", "2"]):
        out = root / ("cv" if extra else "split")
        code, _, err = run(*SEARCH, *extra, "--directory", out)
        assert code == 0, err
    return root


@pytest.mark.parametrize("kind, flags, needle", [
    ("split", ["--seed", "1"], "--seed 1"),
    ("split", ["--validation-split", "0.3"], "--validation-split 0.3"),
    ("cv", ["--cv", "2", "--seed", "1"], "--seed 1"),
])
def test_resuming_with_other_rows_is_refused_before_anything_changes(searched, kind, flags, needle):
    directory = searched / kind
    before = listing(directory)
    code, out, err = run(*SEARCH, *flags, "--directory", directory)
    assert code not in (0, None), out
    err = err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err and "--overwrite" in err, err
    assert listing(directory) == before


@pytest.mark.parametrize("kind, flags", [("split", ["--seed", "0", "--validation-split", "0.2"]),
                                         ("cv", ["--cv", "2"])])
def test_resuming_with_the_same_rows_still_resumes(searched, kind, flags):
    code, out, err = run(*SEARCH, *flags, "--directory", searched / kind)
    assert code == 0, err
    assert "Leaderboard (1 trials" in out
