"""``keep_checkpoints=``: only the k best trials' checkpoints stay on disk,
and nothing a later load or a Hyperband continuation needs is deleted."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import ktplus
from ktplus._ranking import tier
from ktplus.tuners import _keep
from ktplus.tuners._keep import prune_checkpoints

PARENT = "tuner/trial_id"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4)).astype("float32")
    y = np.digitize(x[:, 0] + x[:, 1], [-0.5, 0.5]).astype("int64")
    return (x[:70], y[:70]), (x[70:], y[70:])


def hypermodel():
    return ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)


def random_search(directory, **kwargs):
    kwargs.setdefault("max_trials", 5)
    return ktplus.RandomSearch(hypermodel(), objective="val_accuracy", directory=directory,
                               project_name="p", seed=0, tensorboard=False, **kwargs)


def hyperband(directory, **kwargs):
    return ktplus.Hyperband(hypermodel(), objective="val_accuracy", max_epochs=2, factor=2,
                            directory=directory, project_name="p", seed=0, tensorboard=False, **kwargs)


def search(tuner, data, **kwargs):
    (x, y), val = data
    tuner.search(x, y, validation_data=val, verbose=0, **kwargs)
    return tuner


def on_disk(tuner):
    """The ids of the trials whose checkpoint file exists."""
    return {tid for tid in tuner.oracle.trials if os.path.exists(tuner._checkpoint_path(tid))}


def best_ids(tuner, n):
    return [t.trial_id for t in tuner.oracle.get_best_trials(n)]


def parent_of(trial):
    return trial.hyperparameters.values.get(PARENT)


def assert_models_are_the_best(tuner, models, data):
    """Each loaded model scores its trial's best value: the right weights were kept."""
    _, (xv, yv) = data
    for trial, model in zip(tuner.oracle.get_best_trials(len(models)), models, strict=True):
        accuracy = model.evaluate(xv, yv, verbose=0, return_dict=True)["accuracy"]
        assert accuracy == pytest.approx(trial.score, abs=1e-6)


def touch_all(tuner):
    """A checkpoint file for every trial (the rules are checked on files, not weights)."""
    for tid in tuner.oracle.trials:
        with open(tuner._checkpoint_path(tid), "wb") as f:
            f.write(b"weights")


def reloaded(make, project, tmp_path, **kwargs):
    """A tuner over a copy of ``project`` (so the shared search stays as it was)."""
    shutil.copytree(project, tmp_path / "p")
    return make(tmp_path, overwrite=False, **kwargs)


@pytest.fixture(scope="module")
def kept_two(tmp_path_factory, data):
    """A random search with keep_checkpoints=2: 3 trials, then resumed to 5.

    Returns the tuner, its project directory and the checkpoints on disk and
    the best 2 trials after the first 3 trials.
    """
    directory = tmp_path_factory.mktemp("kept_two")
    first = search(random_search(directory, max_trials=3, keep_checkpoints=2), data, epochs=1)
    after_first = (on_disk(first), set(best_ids(first, 2)))
    tuner = search(random_search(directory, keep_checkpoints=2, overwrite=False), data, epochs=1)
    return tuner, directory / "p", after_first


@pytest.fixture(scope="module")
def hyperband_kept_one(tmp_path_factory, data):
    directory = tmp_path_factory.mktemp("hyperband")
    tuner = search(hyperband(directory, keep_checkpoints=1), data)
    return tuner, directory / "p"


def test_only_the_best_k_checkpoints_stay_and_load_also_after_a_resume(kept_two, data):
    tuner, project, (first_on_disk, first_best) = kept_two
    assert len(first_best) == 2 and first_on_disk == first_best

    # Resumed (overwrite=False) up to 5 trials: still the best 2 of all of them.
    assert len(tuner.oracle.trials) == 5
    assert all(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
    # The best 2, and any trial tied with the 2nd (a resume may rank a tie above it: module docstring).
    last = tuner.oracle.get_best_trials(2)[-1]
    ties = {t.trial_id for t in tuner.oracle.trials.values() if t.score == last.score and tier(t) == tier(last)}
    assert set(best_ids(tuner, 2)) <= on_disk(tuner) <= set(best_ids(tuner, 2)) | ties
    assert len(on_disk(tuner)) < 5  # something was deleted: the check can tell
    trial_dirs = [entry for entry in project.iterdir() if entry.name.startswith("trial_")]
    assert len(trial_dirs) == 5  # only the weights go: trial.json and build_config.json stay
    assert all((d / "trial.json").exists() and (d / "build_config.json").exists() for d in trial_dirs)
    assert not [f for d in trial_dirs for f in os.listdir(d) if f.startswith(".tmp-")]

    models = tuner.get_best_models(2)
    assert len(models) == 2
    assert_models_are_the_best(tuner, models, data)
    with pytest.raises(ValueError, match=r"num_models.*keep_checkpoints=2"):
        tuner.get_best_models(3)


def test_none_keeps_every_checkpoint_and_does_nothing(kept_two, data, tmp_path, monkeypatch):
    tuner = reloaded(random_search, kept_two[1], tmp_path, max_trials=6)
    assert tuner.options.keep_checkpoints is None
    touch_all(tuner)
    search(tuner, data, epochs=1)  # one more trial, as keras-tuner: every checkpoint stays
    assert len(tuner.oracle.trials) == 6
    assert on_disk(tuner) == set(tuner.oracle.trials)

    def refuse(*args, **kwargs):
        raise AssertionError("keep_checkpoints=None must not look at the trials")

    monkeypatch.setattr(tuner.oracle, "get_best_trials", refuse)
    monkeypatch.setattr(_keep, "saved_trials", refuse)
    monkeypatch.setattr(_keep, "promotable_trials", refuse)
    assert prune_checkpoints(tuner) == []


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_bad_values_fail_at_construction(value, tmp_path):
    with pytest.raises(ValueError, match="keep_checkpoints"):
        random_search(tmp_path, keep_checkpoints=value)
    assert not (tmp_path / "p").exists()


def test_hyperband_keeps_what_continuations_load(hyperband_kept_one, data):
    tuner, _ = hyperband_kept_one
    trials = tuner.oracle.trials
    # Every bracket ran to its end: no continuation missed its parent's checkpoint.
    assert len(trials) == 5
    assert [t.trial_id for t in trials.values() if t.status != "COMPLETED"] == []
    assert any(parent_of(t) for t in trials.values())  # a continuation did run
    (best,) = tuner.oracle.get_best_trials(1)
    # The best trial's model is rebuilt from its parent's weights, then its own; a trial tied with it
    # (same score) is kept too, as a resume may rank it first.
    ties = {t.trial_id for t in trials.values() if t.score == best.score}
    assert on_disk(tuner) == ties | ({parent_of(best)} if parent_of(best) else set())
    models = tuner.get_best_models(1)
    assert_models_are_the_best(tuner, models, data)


def test_running_trials_their_parents_and_promotable_trials_are_kept(hyperband_kept_one, tmp_path):
    tuner = reloaded(hyperband, hyperband_kept_one[1], tmp_path, keep_checkpoints=1)
    oracle = tuner.oracle
    touch_all(tuner)
    (best,) = oracle.get_best_trials(1)
    promotable, running, continued, parent, *others = sorted(set(oracle.trials) - {best.trial_id})

    # The best trial continued `parent`: rebuilding it loads that checkpoint first.
    best.hyperparameters.values[PARENT] = parent
    # `promotable` waits in round 0 of a bracket whose round 1 has a free place.
    oracle._brackets = [{"bracket_num": 1, "rounds": [[{"past_id": None, "id": promotable}], []]}]
    # `running` (a retry, say) continues `continued`: it will load that checkpoint.
    oracle.trials[running].status = "RUNNING"
    oracle.trials[running].hyperparameters.values[PARENT] = continued
    assert prune_checkpoints(tuner) == sorted(others)
    assert on_disk(tuner) == {best.trial_id, parent, promotable, running, continued}

    # Round 1 is full: round 0 can no longer be continued; `running` has finished.
    oracle._brackets = [{"bracket_num": 1, "rounds": [[{"past_id": None, "id": promotable}],
                                                      [{"past_id": promotable, "id": running}]]}]
    oracle.trials[running].status = "COMPLETED"
    assert prune_checkpoints(tuner) == sorted([promotable, running, continued])
    assert on_disk(tuner) == {best.trial_id, parent}
    assert prune_checkpoints(tuner) == []  # nothing left to delete, nothing reported


def test_a_worker_reads_the_chiefs_records_and_spares_hyperband(kept_two, hyperband_kept_one,
                                                               tmp_path, monkeypatch):
    class OracleClient:
        """Like keras-tuner's gRPC client: the ranking, no trials."""

        def __init__(self, oracle):
            self._oracle = oracle
            self.get_best_trials = oracle.get_best_trials

    monkeypatch.setattr(_keep, "is_worker", lambda: True)

    tuner = reloaded(random_search, kept_two[1], tmp_path / "rs", keep_checkpoints=1)
    touch_all(tuner)
    (best,) = best_ids(tuner, 1)
    running, *finished = sorted(set(tuner.oracle.trials) - {best})
    record = tmp_path / "rs" / "p" / f"trial_{running}" / "trial.json"
    state = json.loads(record.read_text())
    record.write_text(json.dumps({**state, "status": "RUNNING"}))  # another worker's trial
    tuner.oracle = OracleClient(tuner.oracle)
    assert prune_checkpoints(tuner) == finished
    assert {tid for tid in (best, running, *finished)
            if os.path.exists(tuner._checkpoint_path(tid))} == {best, running}

    tuner = reloaded(hyperband, hyperband_kept_one[1], tmp_path / "hb", keep_checkpoints=1)
    touch_all(tuner)
    ids = set(tuner.oracle.trials)
    tuner.oracle = OracleClient(tuner.oracle)
    assert prune_checkpoints(tuner) == []
    assert all(os.path.exists(tuner._checkpoint_path(tid)) for tid in ids)


def test_the_best_fully_trained_trial_keeps_its_checkpoint_not_a_pruned_leader(tmp_path):
    from keras_tuner.engine.trial import Trial

    from ktplus.tuners._keep import prune_checkpoints

    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=3, keep_checkpoints=1,
                                directory=tmp_path, tensorboard=False)
    for trial_id, score, pruned in [("0", 0.95, 1.0), ("1", 0.80, 0.0), ("2", 0.85, 0.0)]:
        trial = Trial(tuner.oracle.get_space(), trial_id=trial_id, status="COMPLETED")
        trial.score = score
        trial.metrics.register("pruned", direction="min")
        trial.metrics.update("pruned", pruned)
        tuner.oracle.trials[trial_id] = trial
        path = tuner._checkpoint_path(trial_id)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()
    # One ranking: get_best_models(), evaluate() and refit() all take trial 2 (fully trained)
    # before the pruned leader, whose checkpoint goes.
    assert [t.trial_id for t in tuner.oracle.get_best_trials(1)] == ["2"]
    assert prune_checkpoints(tuner) == ["0", "1"]
    assert not os.path.exists(tuner._checkpoint_path("0")) and os.path.exists(tuner._checkpoint_path("2"))
