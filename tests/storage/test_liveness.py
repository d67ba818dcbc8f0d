"""Liveness of a shared Optuna study (`ktplus.OptunaSearch(storage=...)`):
trials nobody beats for, trials a process lets go of, a project of one
mode resumed in the other, and what the study holds of each trial."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

import ktplus
from tests.storage.test_storage import FINISHED, _counted, _finish, _record, _start
from tests.storage.worker import build_for_tests, data, make_tuner


def _journal(path: Path) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(path)))


@pytest.mark.parametrize("kind", ["postgresql", "journal"])
def test_a_trial_asked_but_never_beaten_is_failed_as_stale(kind, request, tmp_path):
    """A trial asked by a process that died before its first heartbeat (here a
    plain Optuna client's ask, which never beats): it is failed as stale once
    it started a grace period ago (Optuna's own rule skips trials with no
    heartbeat) and re-run once, instead of the worker waiting for it for
    ever once the budget is spent."""
    if kind == "postgresql":
        url = request.getfixturevalue("postgres").create_database("never_beaten")
        storage: optuna.storages.BaseStorage = optuna.storages.RDBStorage(url)  # (no heartbeats)
    else:
        url = str(tmp_path / "search.log")
        storage = _journal(tmp_path / "search.log")
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    orphan = study.ask()
    worker = _start(tmp_path, url, TRIALS="2", EPOCHS="1", PACK="1")  # heartbeat 1 s, grace period 3 s
    code, out, err = _finish(worker, timeout=150)
    assert code == 0, err[-3000:]
    trials = study.get_trials()
    assert trials[orphan.number].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == orphan.number]
    assert len(retries) == 1 and retries[0].state in FINISHED  # re-run once, by the worker
    counted = _counted(study)
    assert len(counted) == 2 and counted[0].number == orphan.number  # max_trials, the orphan among them
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_a_waiting_worker_says_so_and_is_freed_when_the_holder_lets_go(tmp_path, caplog):
    """Worker b finds the budget spent while worker a holds the last trial: b waits, with a log line,
    and returns as soon as a lets go of its trials (`release_held`: the trial told failed, not left
    RUNNING until its grace period, here 180 s, runs out)."""
    journal = str(tmp_path / "search.log")
    a, b = (make_tuner(str(tmp_path), journal, trials=1, heartbeat=60) for _ in range(2))
    assert a.oracle.create_trial("a0").trial_id == "0"
    asked: dict[str, object] = {}
    caplog.set_level(logging.WARNING, logger="ktplus")
    thread = threading.Thread(target=lambda: asked.update(b=b.oracle.create_trial("b0")), daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not any("waiting for the 1 that other workers run" in r.getMessage() for r in caplog.records):
        assert time.time() < deadline and thread.is_alive(), caplog.text
        time.sleep(0.1)
    a.oracle.release_held()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the waiting worker was not freed by release_held"
    assert asked["b"].status == "STOPPED"
    assert optuna.load_study(study_name="s", storage=_journal(Path(journal))).trials[0].state == TrialState.FAIL
    record = _record(tmp_path / "p", "0")
    assert record["status"] == "FAILED" and "ended" in record["message"]
    a.oracle.release_held()  # idempotent
    assert not a.oracle._keepers


class _Interrupt(keras.callbacks.Callback):
    """A KeyboardInterrupt (a notebook's stop button) at the first epoch's end."""

    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


def test_a_search_that_raises_mid_trial_leaves_no_running_trial(tmp_path):
    journal = tmp_path / "search.log"
    tuner = make_tuner(str(tmp_path), str(journal), trials=3, heartbeat=60, pack=1)
    (x, y), validation = data()
    with pytest.raises(KeyboardInterrupt):
        tuner.search(x, y, validation_data=validation, epochs=2, verbose=0, callbacks=[_Interrupt()])
    trials = optuna.load_study(study_name="s", storage=_journal(journal)).trials
    assert [t.state for t in trials] == [TrialState.FAIL]  # told failed: no other worker waits 120 s for it
    assert not tuner.oracle._keepers  # no heartbeat thread left beating for it
    project = tmp_path / "p"
    assert _record(project, "0")["status"] == "FAILED"
    assert json.loads((project / "ktplus_curves" / "trial_0.json").read_text())["state"] == "failed"


def test_oversized_trials_waiting_for_a_completed_one_are_told_when_the_search_ends(tmp_path):
    """Every model is over max_model_size: each trial waits, RUNNING and beating, for a completed trial's
    values to be told with; when the search ends they are told failed (there are none), not left running
    for the other workers to wait on."""
    journal = tmp_path / "search.log"
    tuner = ktplus.OptunaSearch(build_for_tests, objective="val_accuracy", max_trials=2, storage=str(journal),
                                study_name="s", heartbeat_interval=60, directory=str(tmp_path), project_name="p",
                                pack=1, max_model_size=10)
    (x, y), validation = data()
    with pytest.raises(RuntimeError, match="every one of the 2 trials built a model over max_model_size"):
        tuner.search(x, y, validation_data=validation, epochs=1, verbose=0)
    trials = optuna.load_study(study_name="s", storage=_journal(journal)).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert all(t.system_attrs.get("constraints:max_model_size") == 1.0 for t in trials)
    assert not tuner.oracle._keepers and not tuner.oracle._waiting_infeasible


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_project_is_not_resumed_in_the_other_storage_mode(tmp_path):
    """A project whose study lives in a storage is not resumed in memory, nor an in-memory project joined
    by a shared study, nor a shared project by another study: their trial numbers would collide over the
    same trial_<id> records. One clear error, naming the storage and what to do; nothing written."""
    (x, y), validation = data()
    journal = str(tmp_path / "search.log")
    options = dict(objective="val_accuracy", max_trials=1, directory=str(tmp_path), pack=1)
    ktplus.OptunaSearch(build_for_tests, storage=journal, study_name="s", project_name="shared",
                        **options).search(x, y, validation_data=validation, epochs=1, verbose=0)
    ktplus.OptunaSearch(build_for_tests, project_name="alone", **options).search(
        x, y, validation_data=validation, epochs=1, verbose=0)
    before = _files(tmp_path)
    with pytest.raises(ValueError, match=r"argument `storage`.*shared Optuna study.*search\.log.*'s'"):
        ktplus.OptunaSearch(build_for_tests, project_name="shared", **options)
    with pytest.raises(ValueError, match=r"argument `storage`.*None for the project .*alone.*in memory"):
        ktplus.OptunaSearch(build_for_tests, storage=str(tmp_path / "other.log"), study_name="s",
                            project_name="alone", **options)
    with pytest.raises(ValueError, match=r"argument `study_name`.*'s', the shared study"):
        ktplus.OptunaSearch(build_for_tests, storage=journal, study_name="t", project_name="shared", **options)
    after = _files(tmp_path)
    project = {"shared", "alone"}  # (the journals, outside the projects, may hold the refused run's empty study)
    assert {f: v for f, v in after.items() if Path(f).relative_to(tmp_path).parts[0] in project} == {
        f: v for f, v in before.items() if Path(f).relative_to(tmp_path).parts[0] in project}
    assert len(before) > 10
    # The same mode resumes as before.
    ktplus.OptunaSearch(build_for_tests, storage=journal, study_name="s", project_name="shared", **options)
    ktplus.OptunaSearch(build_for_tests, project_name="alone", **options)


def test_cv_intermediate_values_end_as_the_final_fold_means(tmp_path):
    """With cv, a step's value is the mean over the folds that reached it: the heartbeat thread reports
    the first fold's value while the second trains (the callback waits for that report), and the trial's
    end rewrites it with the mean over both folds, so the study holds the final curve."""
    journal = tmp_path / "search.log"
    reader = _journal(journal)
    fits = {"n": 0}

    class WaitForTheFirstFoldsReport(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            fits["n"] += 1
            if fits["n"] != 2:
                return
            deadline = time.time() + 30  # the second fold starts once the study shows the first fold's value
            while not optuna.load_study(study_name="s", storage=reader).trials[0].intermediate_values:
                assert time.time() < deadline, "the heartbeat thread reported no intermediate value"
                time.sleep(0.05)

    tuner = ktplus.OptunaSearch(build_for_tests, objective="val_loss", max_trials=1, storage=str(journal),
                                study_name="s", heartbeat_interval=5, directory=str(tmp_path), project_name="p",
                                pack=1, cv=2)
    (x, y), _ = data()
    tuner.search(x, y, epochs=1, verbose=0, callbacks=[WaitForTheFirstFoldsReport()])
    assert fits["n"] == 2
    folds = [json.loads((tmp_path / "p" / "ktplus_curves" / f"trial_0_fold_{k}.json").read_text())["values"]
             for k in (0, 1)]
    assert folds[0]["0"] != folds[1]["0"]
    trial = optuna.load_study(study_name="s", storage=_journal(journal)).trials[0]
    assert trial.intermediate_values == {0: pytest.approx(float(np.mean([folds[0]["0"], folds[1]["0"]])))}


def test_a_trial_failed_as_stale_before_its_tell_keeps_the_record_the_other_worker_wrote(tmp_path):
    """end_trial tells the study first (the storage ends a trial once) and writes the trial's record only
    if the tell succeeded: a worker that stalled past its grace period does not write COMPLETED over
    the FAILED record of the worker that failed its trial as stale."""
    journal = str(tmp_path / "search.log")
    worker, other = (make_tuner(str(tmp_path), journal, trials=2, heartbeat=60) for _ in range(2))
    trial = worker.oracle.create_trial("w0")

    class OtherWorkerFailsIt(type(worker.oracle._display)):  # type: ignore[misc]
        """keras-tuner's display, whose end-of-trial line comes after the oracle checked that the trial
        is still its own and before it tells the study: there another worker fails the trial as stale
        (this one stalled), as a worker that asks after the grace period would."""

        def on_trial_end(self, ended):
            storage = other.oracle.storage
            optuna_id = worker.oracle._optuna_ids[ended.trial_id]
            assert storage.set_trial_state_values(optuna_id, state=TrialState.FAIL)
            other.oracle._mark_stale(storage.get_trial(optuna_id))

    worker.oracle._display = OtherWorkerFailsIt(worker.oracle, verbose=0)
    worker.oracle.update_trial(trial.trial_id, {"val_accuracy": 0.75}, step=0)
    trial.status = "COMPLETED"
    with pytest.warns(RuntimeWarning, match="failed as stale by another worker"):
        worker.oracle.end_trial(trial)
    record = _record(tmp_path / "p", trial.trial_id)
    assert record["status"] == "FAILED" and "Worker lost" in record["message"]
    assert worker.oracle.lost_trials == {trial.trial_id}
    assert worker.oracle.trials[trial.trial_id].status == "FAILED"  # its readers show what the study says
    assert worker.oracle.create_trial("w1").status == "STOPPED"  # it asks no more


def test_tpe_runs_with_the_constant_liar_on_a_shared_study(tmp_path):
    """Optuna's advice for parallel workers: the other workers' running trials count as bad results."""
    tuner = make_tuner(str(tmp_path), str(tmp_path / "search.log"))
    assert isinstance(tuner.oracle.sampler, optuna.samplers.TPESampler)
    assert tuner.oracle.sampler._constant_liar is True
    assert os.path.isfile(tmp_path / "search.log")
