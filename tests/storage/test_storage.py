"""`ktplus.OptunaSearch(storage=...)`: worker processes sharing one Optuna
study with no chief, on a real PostgreSQL server (``conftest.postgres``)
and on a journal file."""

from __future__ import annotations

import glob
import json
import os
import signal
import time
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

import ktplus
import ktplus.cli
from tests.storage.postgres_server import free_port
from tests.storage.processes import FINISHED
from tests.storage.processes import counted as _counted
from tests.storage.processes import finish as _finish
from tests.storage.processes import ran as _ran
from tests.storage.processes import start as _start
from tests.storage.worker import build_for_tests, make_tuner
from tests.storage.worker import data as worker_data


def _study(storage: str, name: str = "s") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def _record(project: Path, trial_id: str) -> dict:
    return json.loads((project / f"trial_{trial_id}" / "trial.json").read_text())


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x[:64], y[:64], (x[64:], y[64:])


def test_three_workers_share_one_postgresql_study(postgres, tmp_path):
    url = postgres.create_database("three_workers")
    workers = [_start(tmp_path, url, TRIALS="5", EPOCHS="1") for _ in range(3)]
    project = tmp_path / "p"
    deadline = time.time() + 300
    while not list(project.glob("trial_*/trial.json")):  # the search runs: a reader opens it (this process)
        assert time.time() < deadline and all(w.poll() is None for w in workers)
        time.sleep(0.2)
    reader = make_tuner(str(tmp_path), url, trials=5)
    results = [_finish(w) for w in workers]
    for code, _out, err in results:
        assert code == 0, err[-3000:]
    ran = [_ran(out) for _, out, _ in results]
    every = [t for ids in ran for t in ids]
    assert sorted(every) == ["0", "1", "2", "3", "4"]  # each trial run by exactly one worker
    study = _study(url)
    counted = _counted(study)
    assert [t.number for t in counted] == [0, 1, 2, 3, 4]
    assert all(t.state in FINISHED for t in counted)
    assert all(t.state == TrialState.FAIL for t in study.get_trials() if t not in counted)  # surplus asks only
    for t in counted:
        trial_id = t.user_attrs["keras_tuner_trial_id"]
        assert trial_id == str(t.number)
        assert t.intermediate_values  # every epoch's objective, told to the study
        record = _record(project, trial_id)
        assert record["status"] == "COMPLETED"
        assert (project / f"trial_{trial_id}" / "checkpoint.weights.h5").is_file()
        sessions = glob.glob(str(project / "tensorboard" / f"trial_{trial_id}" / "*ktplus-session"))
        assert len(sessions) == 1
    # The reader, opened while the search ran, reads every worker's trials once they ended.
    (x, y), (x_val, y_val) = worker_data()
    assert sorted(reader.results()["trial_id"]) == ["0", "1", "2", "3", "4"]
    best = max(counted, key=lambda t: (t.values[0], -t.number))
    assert reader.oracle.get_best_trials(1)[0].score == best.values[0]
    model = reader.get_best_models(1)[0]  # another worker's checkpoint, in the shared directory
    assert model.count_params() > 0
    assert list(reader.evaluate(x_val, y_val)["trial_id"]) == [reader.oracle.get_best_trials(1)[0].trial_id]
    assert reader.refit(x, y, epochs=1).count_params() == model.count_params()
    assert len(reader.pareto_front()) >= 1
    assert set(reader.importance()["hyperparameter"]) <= {"units", "lr"}
    html = tmp_path / "report.html"
    assert ktplus.cli.main(["report", str(project), "--html", str(html)]) == 0
    assert html.stat().st_size > 10_000


def test_killed_and_stalled_workers_lose_their_trials_once(postgres, tmp_path):
    """One worker SIGKILLed and one SIGSTOPped mid-trial: with no worker left, this process resumes the
    search, fails both trials as stale, re-runs each once and CONTinues the stalled one, which cannot
    end the trial taken from it and exits cleanly; the counts stay exact."""
    url = postgres.create_database("liveness")
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {"TRIALS": "3", "PACK": "1", "MARK": str(marks), "EPOCHS": "2"}
    killed = _start(tmp_path, url, KILL_AT_EPOCH="1", **env)
    stalled = _start(tmp_path, url, STOP_AT_EPOCH="1", **env)
    deadline = time.time() + 300
    while not (killed.poll() is not None and glob.glob(str(marks / f"{stalled.pid}.1"))):
        assert time.time() < deadline and stalled.poll() is None, stalled.stderr.read() if stalled.stderr else ""
        time.sleep(0.2)
    study = _study(url)
    assert sorted(t.state for t in study.get_trials()) == [TrialState.RUNNING] * 2  # one trial each, unended

    class ContinueTheStalled(keras.callbacks.Callback):
        """SIGCONT to the stalled worker once both lost trials are failed as stale (no heartbeat for 3 s)."""

        def on_train_begin(self, logs=None):
            states = {t.number: t.state for t in study.get_trials(deepcopy=False) if t.number < 2}
            if states == {0: TrialState.FAIL, 1: TrialState.FAIL} and stalled.returncode is None:
                os.kill(stalled.pid, signal.SIGCONT)
                stalled.returncode = 0  # (sent once; the real exit status is read below)

    survivor = make_tuner(str(tmp_path), url, trials=3, pack=1)
    (x, y), validation = worker_data()
    survivor.search(x, y, validation_data=validation, epochs=2, verbose=0, callbacks=[ContinueTheStalled()])
    stalled.returncode = None
    code_stalled, out_stalled, err_stalled = _finish(stalled)
    assert killed.wait() == -signal.SIGKILL
    assert code_stalled == 0, err_stalled[-3000:]
    assert "was failed as stale by another worker" in err_stalled
    assert _ran(out_stalled) in (["0"], ["1"])  # what it held; it asked for nothing more
    trials = _study(url).get_trials()
    counted = _counted(_study(url))
    assert len(counted) == 3  # max_trials: the two lost ones (failed) and one more
    assert [t.state for t in counted[:2]] == [TrialState.FAIL, TrialState.FAIL]
    assert all(t.state in FINISHED for t in counted[2:])
    retries = {t.system_attrs["failed_trial"]: t for t in trials if "failed_trial" in t.system_attrs}
    assert sorted(retries) == [0, 1]  # each lost trial re-queued once...
    survived = sorted(survivor.oracle._optuna_ids)
    for number, retry in retries.items():
        assert retry.params == trials[number].params  # ...with its hyperparameters
        assert retry.state in FINISHED  # and run by the survivor
        assert str(retry.number) in survived
    assert sorted(survived) == sorted(str(t.number) for t in trials if t.number >= 2)  # 3 trials, nothing more
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    project = tmp_path / "p"
    for lost in ("0", "1"):  # the stalled worker did not overwrite the record of the trial it lost
        record = _record(project, lost)
        assert record["status"] == "FAILED" and "Worker lost" in record["message"], (lost, record)
    for t in trials:
        if t.state in FINISHED:
            assert _record(project, str(t.number))["status"] == "COMPLETED"
    # Nor did it write the lost trial's curve, checkpoint or TensorBoard session after it came back; the
    # worker that failed the trial as stale marked its curve failed (readers show no trial running).
    lost = _ran(out_stalled)[0]
    curve = json.loads((project / "ktplus_curves" / f"trial_{lost}.json").read_text())
    assert curve["state"] == "failed" and list(curve["values"]) == ["0"], curve
    killed_trial = "1" if lost == "0" else "0"
    assert json.loads((project / "ktplus_curves" / f"trial_{killed_trial}.json").read_text())["state"] == "failed"
    assert not glob.glob(str(project / "tensorboard" / f"trial_{lost}" / "*ktplus-session"))
    # The resumed search's readers show every trial: the lost ones FAILED, the rest as they ended.
    frame = survivor.results().set_index("trial_id")
    assert sorted(frame.index) == [str(t.number) for t in trials]
    assert list(frame.loc[["0", "1"], "status"]) == ["failed", "failed"]


def test_a_journal_search_fails_a_dead_workers_trial_and_is_joined_later(tmp_path):
    journal = str(tmp_path / "search.log")
    x, y, validation = _data()
    options = dict(objective="val_accuracy", storage=journal, study_name="s", heartbeat_interval=1,
                   grace_period=2, directory=str(tmp_path), project_name="p", pack=1)
    tuner = ktplus.OptunaSearch(build_for_tests, max_trials=2, **options)
    # A worker that died long ago while its trial ran: ktplus's heartbeat attribute is stale.
    storage = optuna.storages.JournalStorage(JournalFileBackend(journal))
    study = optuna.load_study(study_name="s", storage=storage)
    import datetime

    long_ago = datetime.datetime.now() - datetime.timedelta(seconds=60)
    study.add_trial(optuna.trial.FrozenTrial(
        number=0, state=TrialState.RUNNING, value=None, datetime_start=long_ago, datetime_complete=None,
        params={"units": 8, "lr": 0.01}, user_attrs={}, intermediate_values={}, trial_id=0,
        distributions={"units": optuna.distributions.CategoricalDistribution([4, 8, 16]),
                       "lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)},
        system_attrs={"ktplus:heartbeat": long_ago.timestamp()}))
    tuner.search(x, y, validation_data=validation, epochs=1, verbose=0)
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    assert trials[1].system_attrs["failed_trial"] == 0 and trials[1].params == trials[0].params
    assert [t.state in FINISHED for t in trials[1:]] == [True, True]
    assert sorted(tuner.oracle.trials) == ["1", "2"]
    # Another process joins (here: another tuner) with a larger budget: it runs one more trial.
    joined = ktplus.OptunaSearch(build_for_tests, max_trials=3, **options)
    joined.search(x, y, validation_data=validation, epochs=1, verbose=0)
    assert sorted(joined.oracle._optuna_ids) == ["3"]
    assert [t.number for t in _counted(study)] == [0, 2, 3]
    assert sorted(joined.results()["trial_id"]) == ["1", "2", "3"]


def test_bad_storage_input_is_refused_before_any_trial(postgres, tmp_path):
    x, y, validation = _data()
    directory = tmp_path / "d"

    def search(storage, build=build_for_tests, objective="val_accuracy", **kwargs):
        return ktplus.OptunaSearch(build, objective=objective, max_trials=2, storage=storage, study_name="s",
                                   directory=str(directory), project_name="p", **kwargs)

    closed = postgres.url().replace(f":{postgres.port}/", f":{free_port()}/")  # nothing listens there
    with pytest.raises(ValueError, match="argument `storage`.*connecting failed") as error:
        search(closed)
    assert "s3cret" not in str(error.value) and "***" in str(error.value)
    with pytest.raises(ValueError, match="argument `storage`.*password authentication failed") as error:
        search(postgres.url(password="wrong-pw"))
    assert "wrong-pw" not in str(error.value)
    assert not directory.exists()

    url = postgres.create_database("bad_input")
    search(url).search(x, y, validation_data=validation, epochs=1, verbose=0)
    before = len(_study(url).trials)
    shutil_rmtree(directory)
    with pytest.raises(ValueError, match="argument `study_name`.*val_accuracy \\(max\\).*val_loss \\(min\\)"):
        search(url, objective="val_loss")
    with pytest.raises(ValueError, match="argument `study_name`.*accuracy \\(max\\)"):
        search(url, objective="accuracy")
    assert not directory.exists()

    def other_space(hp):
        hp.Choice("units", [32, 64])
        return build_for_tests(hp)

    with pytest.raises(ValueError, match="argument `study_name`.*search space.*'units'"):
        search(url, build=other_space)  # (refused by the tuner, before anything is written)
    assert len(_study(url).trials) == before
    assert not directory.exists()
    with pytest.raises(ValueError, match="argument `overwrite`"):
        search(url, overwrite=True)
    # The same oracle given to ktplus.Tuner: overwrite=True would delete the other workers' records too.
    from ktplus.oracles import OptunaOracle

    search(url)  # a worker of the search joins: its tuner's state is written
    oracle = OptunaOracle(objective="val_accuracy", max_trials=2, storage=url, study_name="s")
    written = sorted(str(f) for f in (directory / "p").rglob("*"))
    assert written
    with pytest.raises(ValueError, match="argument `overwrite`.*shared storage"):
        ktplus.Tuner(oracle, build_for_tests, directory=str(directory), project_name="p", overwrite=True)
    assert sorted(str(f) for f in (directory / "p").rglob("*")) == written


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def test_workers_started_at_once_on_an_empty_database_all_open_it(postgres, tmp_path):
    """Workers open a new database at the same moment (threads here, each with its own connection, as
    processes would): all create Optuna's tables at once, and the ones that lose that race open the
    database again instead of failing (ktplus's retry around Optuna's schema creation)."""
    import threading

    from ktplus.oracles._storage import open_storage

    failures: list[str] = []
    for round_ in range(6):  # PostgreSQL, then SQLite (its "table ... already exists" is an OperationalError)
        url = postgres.create_database(f"race_{round_}") if round_ < 3 else f"sqlite:///{tmp_path}/race_{round_}.db"
        start = threading.Barrier(6)

        def open_it(url=url, start=start):
            start.wait()
            try:
                optuna.create_study(storage=open_storage(url, 1, 3), study_name="s", load_if_exists=True)
            except Exception as e:  # noqa: BLE001 (collected for the assertion)
                failures.append(f"{type(e).__name__}: {str(e).splitlines()[0]}")

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["s"]
    assert failures == []


def test_a_worker_holding_trials_does_not_wait_for_the_others_when_the_budget_is_spent(tmp_path):
    """Two workers each hold one trial of a budget of two, and each asks for more (a pack being
    gathered): the ask ends at once instead of waiting for the other's trial (which would deadlock
    workers that each wait for the other); a worker holding nothing still waits for a retry."""
    import threading

    journal = str(tmp_path / "search.log")
    a, b = (make_tuner(str(tmp_path), journal, trials=2, heartbeat=60) for _ in range(2))
    assert a.oracle.create_trial("a0").trial_id == "0"
    assert b.oracle.create_trial("b0").trial_id == "1"
    asked: dict[str, object] = {}
    thread = threading.Thread(target=lambda: asked.update(a=a.oracle.create_trial("a1")), daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the ask waited for the other worker's trial while holding its own"
    assert asked["a"].status == "STOPPED"
    for tuner in (a, b):  # (the heartbeat threads)
        for trial_id in list(tuner.oracle._keepers):
            tuner.oracle._stop_keeper(trial_id)



def test_staleness_counts_from_a_trials_start_when_it_has_no_newer_heartbeat(tmp_path):
    """A journal study: a trial whose worker died before its first heartbeat
    goes stale from its start; a retry's copy, which carries the heartbeat of
    the trial it replaces, is not stale once a worker has started it."""
    import datetime

    from optuna.storages import JournalStorage

    from ktplus.oracles import _storage

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "j.log")))
    study = optuna.create_study(storage=storage, study_name="s")
    dist = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    old = datetime.datetime.now() - datetime.timedelta(seconds=600)

    def add(state, x, start, attrs):
        study.add_trial(optuna.trial.FrozenTrial(
            number=0, state=state, value=None, datetime_start=start, datetime_complete=None, params={"x": x},
            distributions=dist, user_attrs={}, system_attrs=attrs, intermediate_values={}, trial_id=0))
        return study.trials[-1]._trial_id

    silent = add(TrialState.RUNNING, 0.1, old, {})  # started 600 s ago, never beat
    copy = add(TrialState.WAITING, 0.2, None, {_storage.HEARTBEAT_ATTR: old.timestamp()})
    assert storage.set_trial_state_values(copy, state=TrialState.RUNNING)  # a worker starts it now
    failed = _storage.fail_stale_trials(study, grace_period=60, on_failed=lambda t: None)
    assert [t._trial_id for t in failed] == [silent]
    assert storage.get_trial(silent).state == TrialState.FAIL
    assert storage.get_trial(copy).state == TrialState.RUNNING


def test_other_workers_failures_do_not_stop_a_worker(tmp_path):
    """keras-tuner stops a search after max_consecutive_failed_trials
    failures in a row; with a shared study only this worker's own trials
    count (a lost worker's trials, failed as stale, are read back from the
    shared directory but are not this worker's failures)."""
    from keras_tuner.engine.trial import Trial

    from ktplus.oracles import OptunaOracle

    oracle = OptunaOracle(objective="val_accuracy", max_trials=10, storage=str(tmp_path / "j.log"), study_name="s",
                          max_consecutive_failed_trials=3)
    for i in range(3):
        trial = Trial(oracle.get_space(), trial_id=f"other{i}", status="FAILED")
        oracle.trials[trial.trial_id] = trial
        oracle.end_order.append(trial.trial_id)
    oracle._check_consecutive_failures()  # three failures in a row, none of them this worker's
    assert oracle.end_order == ["other0", "other1", "other2"]
    oracle._optuna_ids.update({f"other{i}": i for i in range(3)})  # the same three, had this worker asked them
    with pytest.raises(RuntimeError, match="consecutive failures"):
        oracle._check_consecutive_failures()
