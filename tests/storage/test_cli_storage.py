"""``ktplus search --workers N`` with an Optuna sampler (workers sharing the
project directory's journal file, no chief), ``--storage URL --study NAME``
(joining a study from any terminal), ``ktplus report`` on such a search,
and their bad input: one line, a non-zero exit, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend

from tests.test_cli import main, one_line_error

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--data", "iris", "--tuner", "tpe", "--epochs", "1", "--directory", "runs"]


def _journal_study(path: Path, name: str) -> optuna.Study:
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    return optuna.load_study(study_name=name, storage=storage)


def test_workers_share_the_embedded_journal_with_no_chief_and_report_reads_it(tmp_path, capfd, monkeypatch):
    result = subprocess.run([sys.executable, "-m", "ktplus.cli", "search", *TINY, "--trials", "4", "--workers", "2"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    project = tmp_path / "runs" / "iris"
    assert "2 workers sharing study 'iris' in runs/iris/optuna-journal.log, no chief" in result.stdout
    assert "Leaderboard (4 trials" in result.stdout
    assert not (project / "ktplus_workers" / "chief.log").exists()
    assert sorted(p.name for p in (project / "ktplus_workers").iterdir()) == ["worker0.log", "worker1.log"]
    study = _journal_study(project / "optuna-journal.log", "iris")  # the documented embedded storage
    assert [t.number for t in study.trials if "ktplus:surplus" not in t.system_attrs] == [0, 1, 2, 3]
    assert sorted(p.name for p in project.glob("trial_*")) == ["trial_0", "trial_1", "trial_2", "trial_3"]
    monkeypatch.chdir(tmp_path)
    report = main(capfd, "report", "runs/iris", "--html", "report.html")
    assert report.returncode == 0, report.stderr
    assert sum(line.split()[0] in "0123" for line in report.stdout.splitlines() if line.strip()) >= 4
    assert (tmp_path / "report.html").stat().st_size > 10_000


def test_storage_joins_one_study_from_any_terminal(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / "shared.log"
    first = main(capfd, "search", *TINY, "--trials", "2", "--storage", str(journal), "--study", "st")
    assert first.returncode == 0, first.stderr
    # Another terminal, a larger budget: it joins the same study and runs only what is left.
    second = main(capfd, "search", *TINY, "--trials", "3", "--storage", str(journal), "--study", "st")
    assert second.returncode == 0, second.stderr
    assert "Leaderboard (3 trials" in second.stdout
    assert len(_journal_study(journal, "st").trials) == 3


def test_bad_storage_input_is_one_line(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(main(capfd, "search", "--data", "iris", "--storage", "s.log"),
                   "--storage shares an Optuna study between workers, which --tuner random has not")
    one_line_error(main(capfd, "search", "--data", "iris", "--tuner", "tpe", "--study", "x"),
                   "--study needs --storage")
    one_line_error(main(capfd, "search", "--data", "iris", "--tuner", "tpe", "--storage", "s.log", "--overwrite"),
                   "--overwrite would delete the records of every other worker")
    one_line_error(main(capfd, "search", "--data", "iris", "--tuner", "tpe", "--storage", "s.log", "--role",
                        "chief"), "--role chief")
    one_line_error(main(capfd, "search", "--data", "iris", "--tuner", "tpe", "--heartbeat", "0"),
                   "--heartbeat: expected a positive integer")
    err = one_line_error(main(capfd, "search", *TINY, "--storage", "postgresql://u:pw-secret@127.0.0.1:1/db"),
                         "ktplus search: --storage: ")
    assert "connecting failed" in err and "pw-secret" not in err
    one_line_error(main(capfd, "search", *TINY, "--storage", str(tmp_path / "no" / "j.log")),
                   "the journal file's folder")
    assert not (tmp_path / "runs").exists()  # nothing written
    # A study made by another search (another objective) is refused before any trial.
    journal = tmp_path / "other.log"
    first = main(capfd, "search", *TINY, "--trials", "1", "--storage", str(journal), "--study", "o",
                 "--project", "a")
    assert first.returncode == 0, first.stderr
    err = one_line_error(main(capfd, "search", *TINY, "--trials", "1", "--storage", str(journal), "--study", "o",
                              "--project", "b", "--objective", "val_loss"), "ktplus search: --study: ")
    assert "val_accuracy (max)" in err
    assert not list((tmp_path / "runs" / "b").glob("trial_*"))


def test_workers_with_a_bad_storage_are_refused_before_any_process_starts(tmp_path, capfd, monkeypatch):
    """``--workers N`` with a storage the workers could not use: the supervisor opens it first, so
    the error is one line, before any worker process starts or the project directory is made."""
    monkeypatch.chdir(tmp_path)
    workers = [*TINY, "--trials", "2", "--workers", "2"]
    err = one_line_error(main(capfd, "search", *workers, "--storage", "postgresql://u:pw-secret@127.0.0.1:1/db"),
                         "ktplus search: --storage: ")
    assert "connecting failed" in err and "pw-secret" not in err and "***" in err
    one_line_error(main(capfd, "search", *workers, "--storage", str(tmp_path / "no" / "j.log")),
                   "the journal file's folder")
    # A study of that name made by another objective (here: minimized), in --storage...
    journal = tmp_path / "other.log"
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    optuna.create_study(storage=storage, study_name="iris", direction="minimize")
    err = one_line_error(main(capfd, "search", *workers, "--storage", str(journal)), "ktplus search: --study: ")
    assert "val_accuracy (max)" in err
    assert not (tmp_path / "runs").exists()  # no worker started: nothing written
    # ... and in the project directory's own journal file (the --workers default), which is kept.
    project = tmp_path / "runs" / "iris"
    project.mkdir(parents=True)
    optuna.create_study(storage=optuna.storages.JournalStorage(JournalFileBackend(str(project / "optuna-journal.log"))),
                        study_name="iris", direction="minimize")
    before = (project / "optuna-journal.log").read_bytes()
    one_line_error(main(capfd, "search", *workers), "ktplus search: --study: ")
    assert sorted(p.name for p in project.iterdir()) == ["optuna-journal.log"]  # no ktplus_workers/ logs
    assert (project / "optuna-journal.log").read_bytes() == before
