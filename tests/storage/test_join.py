"""Joining a storage-backed search (issue 23), on the embedded journal file:
workers that join a running search or die in it, a worker with another
search space (refused before it writes anything, in the same project
directory too), and `ktplus.Tuner` over an `OptunaOracle` with a storage
(the same fencing and readers as `ktplus.OptunaSearch`)."""

from __future__ import annotations

import glob
import hashlib
import signal
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

import ktplus
from ktplus.oracles import OptunaOracle
from tests.storage.processes import FINISHED
from tests.storage.processes import counted as _counted
from tests.storage.processes import finish as _finish
from tests.storage.processes import ran as _ran
from tests.storage.processes import start as _start
from tests.storage.worker import build_for_tests, data


def _study(journal: Path, name: str = "s") -> optuna.Study:
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=name, storage=storage)


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: its content's hash and its modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _search(tuner, epochs: int = 1) -> None:
    (x, y), validation = data()
    tuner.search(x, y, validation_data=validation, epochs=epochs, verbose=0)


def test_journal_workers_one_killed_mid_trial_and_one_joining_the_running_search(tmp_path):
    """Two workers on the embedded journal file: one SIGKILLed in its first trial, the other still
    training when a third joins the running search. The killed worker's trial is failed as stale and
    re-run once; the joining worker runs part of the budget; the counts are exact and the two live
    workers exit 0."""
    journal = tmp_path / "optuna-journal.log"
    project = tmp_path / "p"
    env = {"TRIALS": "6", "EPOCHS": "2", "PACK": "1"}
    killed = _start(tmp_path, str(journal), KILL_AT_EPOCH="1", **env)
    steady = _start(tmp_path, str(journal), SLOW_EPOCH="2.5", **env)  # still training when the third joins
    deadline = time.time() + 300
    while not (killed.poll() is not None and glob.glob(str(project / "trial_*" / "trial.json"))):
        assert time.time() < deadline and steady.poll() is None, steady.stderr.read() if steady.stderr else ""
        time.sleep(0.2)
    assert steady.poll() is None  # the search is running: a new worker joins it
    joining = _start(tmp_path, str(journal), **env)
    code_steady, out_steady, err_steady = _finish(steady)
    code_joining, out_joining, err_joining = _finish(joining)
    assert killed.wait() == -signal.SIGKILL
    assert code_steady == 0, err_steady[-3000:]
    assert code_joining == 0, err_joining[-3000:]
    ran_steady, ran_joining = _ran(out_steady), _ran(out_joining)
    assert ran_joining, "the joining worker ran none of the budget"
    assert not set(ran_steady) & set(ran_joining)  # each trial run by exactly one worker
    study = _study(journal)
    trials = study.get_trials()
    counted = _counted(study)
    assert len(counted) == 6  # max_trials, the lost trial included
    lost = [t for t in counted if t.state == TrialState.FAIL]
    assert len(lost) == 1  # the killed worker's, failed as stale
    assert all(t.state in FINISHED for t in counted if t not in lost)
    retries = [t for t in trials if "failed_trial" in t.system_attrs]
    assert [t.system_attrs["failed_trial"] for t in retries] == [lost[0].number]  # re-queued once...
    assert retries[0].params == lost[0].params and retries[0].state in FINISHED  # ... and re-run
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    finished = sorted(str(t.number) for t in trials if t.state in FINISHED)
    assert sorted(ran_steady + ran_joining) == finished
    assert len(finished) == 6  # five of the budget and the retry
    for t in trials:
        if t.state in FINISHED or t is lost[0]:
            record = (project / f"trial_{t.number}" / "trial.json").read_text()
            assert ('"COMPLETED"' if t.state in FINISHED else '"FAILED"') in record, (t.number, record)


def _other_space(hp):
    hp.Choice("units", [32, 64])  # the study's "units" is a choice of 4, 8 or 16
    return build_for_tests(hp)


def test_a_worker_with_another_search_space_is_refused_before_it_writes(tmp_path):
    """keras-tuner reloads a project's saved search space instead of building the given hypermodel:
    a worker with another space joining the same project directory is refused all the same, from a
    fresh build of its hypermodel, before it writes anything (there, or in a fresh directory) and
    before any trial; with `ktplus.Tuner` over an `OptunaOracle` as with `ktplus.OptunaSearch`."""
    journal = str(tmp_path / "j.log")
    options = dict(objective="val_accuracy", max_trials=1, storage=journal, study_name="s",
                   directory=str(tmp_path / "d"), project_name="p", pack=1)
    _search(ktplus.OptunaSearch(build_for_tests, **options))
    project = tmp_path / "d" / "p"
    before = _snapshot(project)
    assert "tuner0.json" in before and "oracle.json" in before  # what keras-tuner reloads the space from
    trials = len(_study(Path(journal)).trials)
    refused = "argument `study_name`.*search space.*'units'"
    with pytest.raises(ValueError, match=refused):  # the same project directory
        ktplus.OptunaSearch(_other_space, **options)
    with pytest.raises(ValueError, match=refused):
        ktplus.Tuner(oracle=OptunaOracle(objective="val_accuracy", max_trials=1, storage=journal, study_name="s"),
                     hypermodel=_other_space, directory=str(tmp_path / "d"), project_name="p")
    assert _snapshot(project) == before  # nothing written, nothing changed
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match=refused):  # a directory of its own
        ktplus.OptunaSearch(_other_space, **{**options, "directory": str(fresh)})
    assert not fresh.exists()
    assert len(_study(Path(journal)).trials) == trials  # refused before any trial
    # The same space joins (its hypermodel built the same way): nothing refused, the budget was spent.
    joined = ktplus.OptunaSearch(build_for_tests, **{**options, "directory": str(fresh)})
    _search(joined)
    assert len(_study(Path(journal)).trials) == trials


def test_a_tuner_over_an_optuna_oracle_with_a_storage_reads_and_fences_as_optuna_search(tmp_path):
    """`ktplus.Tuner(oracle=OptunaOracle(storage=...))`: a reader opened before another process ran the
    search sees that process's trials (results, best models); a trial failed in the storage by
    another worker is no longer this tuner's to write; a search that raised leaves no trial running."""
    journal = tmp_path / "optuna-journal.log"

    def tuner(**kwargs):
        oracle = OptunaOracle(objective="val_accuracy", max_trials=2, storage=str(journal), study_name="s",
                              heartbeat_interval=1, grace_period=3)
        return ktplus.Tuner(oracle=oracle, hypermodel=build_for_tests, directory=str(tmp_path),
                            project_name="p", pack=1, **kwargs)

    reader = tuner()
    assert len(reader.results()) == 0
    code, out, err = _finish(_start(tmp_path, str(journal), TRIALS="2", EPOCHS="1", PACK="1"))
    assert code == 0, err[-3000:]
    assert sorted(_ran(out)) == ["0", "1"]
    frame = reader.results()  # another process's trials, read from the shared directory
    assert sorted(frame["trial_id"]) == ["0", "1"]
    assert set(frame["status"]) <= {"completed", "pruned"}
    assert reader.get_best_models(1)[0].count_params() > 0  # its checkpoint

    # Fencing: a trial this tuner asked, then failed in the storage by another worker (as a stale one).
    other = tmp_path / "other"
    worker = ktplus.Tuner(oracle=OptunaOracle(objective="val_accuracy", max_trials=1,
                                              storage=str(tmp_path / "other.log"), study_name="s",
                                              heartbeat_interval=1, grace_period=3),
                          hypermodel=build_for_tests, directory=str(other), project_name="p", pack=1)
    trial = worker.oracle.create_trial("tuner0")
    assert worker._owns_trial(trial.trial_id)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "other.log")))
    study = optuna.load_study(study_name="s", storage=storage)
    storage.set_trial_state_values(study.trials[0]._trial_id, state=TrialState.FAIL)  # another worker's doing
    assert not worker._owns_trial(trial.trial_id)
    worker.oracle.release_held()

    # A search that raises (here: in its first trial's callbacks) tells its trial failed on the way out.
    import keras

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    raising = ktplus.Tuner(oracle=OptunaOracle(objective="val_accuracy", max_trials=1,
                                               storage=str(tmp_path / "raising.log"), study_name="s",
                                               heartbeat_interval=1, grace_period=3),
                           hypermodel=build_for_tests, directory=str(tmp_path / "raising"), project_name="p",
                           pack=1)
    (x, y), validation = data()
    with pytest.raises(KeyboardInterrupt):
        raising.search(x, y, validation_data=validation, epochs=2, verbose=0, callbacks=[Boom()])
    held = _study(tmp_path / "raising.log").trials
    assert [t.state for t in held] == [TrialState.FAIL]  # nothing left RUNNING for other workers to wait on
    assert not raising.oracle._keepers
