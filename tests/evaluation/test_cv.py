"""Cross-validation on ktplus tuners: folds, scores, TensorBoard runs,
pruning per fold, and every refusal before a trial runs."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

import ktplus
from ktplus.evaluation._cv import make_folds
from ktplus.training import ThresholdPruner
from ktplus.training._pruning import CurveStore


def _data(n=90, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = ((x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5)).astype("int64")
    return x, y


def _hm(**kwargs):
    return ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, layers=1, units=[8, 16], **kwargs)


@pytest.fixture(scope="module")
def cv_search(tmp_path_factory):
    keras.utils.set_random_seed(0)
    x, y = _data()
    tuner = ktplus.RandomSearch(_hm(), objective="val_accuracy", max_trials=2, cv=3, seed=1,
                                directory=tmp_path_factory.mktemp("cv"), project_name="p")
    tuner.search(x, y, epochs=2, verbose=0)
    return tuner


def _fold_bests(tuner, trial_id):
    curves = Path(tuner.project_dir) / "ktplus_curves"
    bests = []
    for k in range(3):
        data = json.loads((curves / f"trial_{trial_id}_fold_{k}.json").read_text())
        assert data["fold"] == k and data["state"] == "completed"
        bests.append(max(data["values"].values()))
    return bests


def test_score_is_the_mean_over_folds_with_std(cv_search):
    frame = cv_search.results()
    assert {"score_std", "folds", "gap"} <= set(frame.columns)
    assert (frame["folds"] == 3).all()
    for _, row in frame.iterrows():
        bests = _fold_bests(cv_search, row["trial_id"])
        assert row["score"] == pytest.approx(np.mean(bests), abs=1e-6)
        assert row["score_std"] == pytest.approx(np.std(bests), abs=1e-6)
        assert row["gap"] == pytest.approx(row["best/accuracy"] - row["best/val_accuracy"])


def test_each_fold_is_a_tensorboard_run_and_the_session_has_mean_and_std(cv_search):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    trial_id = cv_search.results()["trial_id"][0]
    run = Path(cv_search.tensorboard_dir) / f"trial_{trial_id}"
    for k in range(3):
        assert list((run / f"fold_{k}").glob("events.out.tfevents*")), f"fold_{k} has no scalars"
    session: dict[str, float] = {}
    for f in run.glob("events.out.tfevents*.ktplus-session"):
        for event in EventFileLoader(str(f)).Load():
            for value in event.summary.value:
                if value.HasField("tensor") and value.tensor.float_val:
                    session[value.tag] = value.tensor.float_val[0]
    trial = cv_search.oracle.get_trial(trial_id)
    assert session["score"] == pytest.approx(trial.score, rel=1e-5)
    assert session["score_std"] == pytest.approx(cv_search.results()["score_std"][0], rel=1e-5)


def test_refit_uses_the_mean_best_epoch_and_is_reproducible(cv_search):
    x, y = _data()
    best = cv_search.results().iloc[0]
    first = cv_search.refit(x, y, batch_size=30)
    second = cv_search.refit(x, y, batch_size=30)
    steps = int(np.ceil(len(x) / 30))
    assert int(first.optimizer.iterations.numpy()) == steps * max(1, round(best["best_epoch"]))
    np.testing.assert_allclose(first.predict(x, verbose=0), second.predict(x, verbose=0), rtol=1e-6)


class _Recording(keras_tuner.HyperModel):
    """Records the sample ids (column 0) each fit trains and validates on."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[set, set]] = []

    def build(self, hp):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, x, y, validation_data=None, **kwargs):
        self.seen.append((set(x[:, 0].astype(int)), set(validation_data[0][:, 0].astype(int))))
        return model.fit(x, y, validation_data=validation_data, **kwargs)


def test_folds_partition_the_data_and_groups_reach_the_splitter(tmp_path):
    n = 24
    x = np.stack([np.arange(n), np.zeros(n)], axis=1).astype("float32")
    y = np.arange(n) % 2
    groups = np.arange(n) // 4  # six groups of four
    hm = _Recording()
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, cv=GroupKFold(3),
                                directory=tmp_path, tensorboard=False)
    tuner.search(x, y, epochs=1, groups=groups, verbose=0)
    assert len(hm.seen) == 3
    for train, val in hm.seen:
        assert not train & val and train | val == set(range(n))  # no leakage, nothing lost
        assert not {i // 4 for i in train} & {i // 4 for i in val}  # groups never split
    assert set().union(*(val for _, val in hm.seen)) == set(range(n))


def test_int_cv_is_stratified_for_labels_and_plain_for_numbers():
    x, y = _data(60)
    folds = make_folds(3, x, y, None, seed=0)
    expected = list(StratifiedKFold(3, shuffle=True, random_state=0).split(x, y))
    assert [f.test.tolist() for f in folds] == [t.tolist() for _, t in expected]
    target = x[:, 0].astype("float32")
    folds = make_folds(3, x, target, None, seed=0)
    expected = list(KFold(3, shuffle=True, random_state=0).split(x))
    assert [f.test.tolist() for f in folds] == [t.tolist() for _, t in expected]


def test_pruning_compares_the_same_fold(tmp_path):
    store = CurveStore(tmp_path)
    store.write("1", {0: 0.9, 1: 0.9}, "completed", fold=0)
    store.write("1", {0: 0.1, 1: 0.1}, "completed", fold=1)
    store.write("2", {0: 0.5}, "running", fold=0)
    assert store.finished(fold=0) == {"1": {0: 0.9, 1: 0.9}}
    assert store.finished(fold=1) == {"1": {0: 0.1, 1: 0.1}}
    assert store.finished() == {}  # curves without folds only
    assert store.best_values("max") == {"1": pytest.approx(0.5)}


def test_a_pruned_fold_ends_the_trial(tmp_path):
    x, y = _data(60)
    tuner = ktplus.RandomSearch(_hm(), objective="val_accuracy", max_trials=1, cv=3,
                                pruning=ThresholdPruner(lower=2.0), directory=tmp_path, project_name="p")
    tuner.search(x, y, epochs=3, verbose=0)
    row = tuner.results().iloc[0]
    assert row["status"] == "pruned" and row["folds"] == 1 and row["epochs"] == 1
    curves = sorted(p.name for p in (Path(tuner.project_dir) / "ktplus_curves").iterdir())
    assert curves == [f"trial_{row['trial_id']}_fold_0.json"]  # folds 1 and 2 never trained


def test_gap_follows_a_min_objective(tmp_path):
    x, _ = _data(40)
    target = (x[:, 0] * 2).astype("float32")
    hm = ktplus.DenseHyperModel(input_shape=(4,), task="regression", layers=1, units=8)
    tuner = ktplus.RandomSearch(hm, objective="val_loss", max_trials=1, cv=2, directory=tmp_path,
                                tensorboard=False)
    tuner.search(x, target, epochs=1, verbose=0)
    row = tuner.results().iloc[0]
    assert row["gap"] == pytest.approx(row["best/val_loss"] - row["best/loss"])
    assert row["folds"] == 2


@pytest.mark.parametrize("cv", [1, 0, -2, 2.5, True, "5", KFold])
def test_bad_cv_is_refused_at_construction(cv, tmp_path):
    with pytest.raises(ValueError, match="Invalid value for argument `cv`"):
        ktplus.RandomSearch(_hm(), objective="val_accuracy", max_trials=1, cv=cv, directory=tmp_path)
    assert not list(tmp_path.iterdir())


def test_hyperband_with_cv_is_refused(tmp_path):
    with pytest.raises(ValueError, match="None with Hyperband"):
        ktplus.Hyperband(_hm(), objective="val_accuracy", max_epochs=3, cv=3, directory=tmp_path)
    oracle = keras_tuner.oracles.HyperbandOracle(objective="val_accuracy", max_epochs=3)
    with pytest.raises(ValueError, match="None with Hyperband"):
        ktplus.Tuner(oracle=oracle, hypermodel=_hm(), cv=3, directory=tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("case, match", [
    ("validation_data", "`validation_data` cannot be used together with `cv`"),
    ("validation_split", "`validation_split` cannot be used together with `cv`"),
    ("rare_class", "rarest class"),
    ("groups_length", "Invalid value for argument `groups`"),
    ("dataset", "needs the data as arrays"),
])
def test_bad_search_inputs_with_cv_fail_before_any_trial(case, match, tmp_path):
    import tensorflow as tf

    x, y = _data(30)
    kwargs: dict = {"epochs": 1, "verbose": 0}
    args: tuple = (x, y)
    if case == "validation_data":
        kwargs["validation_data"] = (x, y)
    elif case == "validation_split":
        kwargs["validation_split"] = 0.2
    elif case == "rare_class":
        y = y.copy()
        y[:] = 0
        y[:2] = 1
        args = (x, y)
    elif case == "groups_length":
        kwargs["groups"] = np.arange(5)
    else:
        args = (tf.data.Dataset.from_tensor_slices((x, y)).batch(8),)
    tuner = ktplus.RandomSearch(_hm(), objective="val_accuracy", max_trials=1, cv=3, directory=tmp_path,
                                project_name="p")
    with pytest.raises(ValueError, match=match):
        tuner.search(*args, **kwargs)
    assert tuner.oracle.trials == {}
    assert not list(Path(tuner.project_dir).glob("trial_*"))


def test_groups_without_cv_is_refused(tmp_path):
    x, y = _data(30)
    tuner = ktplus.RandomSearch(_hm(), objective="val_accuracy", max_trials=1, directory=tmp_path)
    with pytest.raises(ValueError, match="Invalid value for argument `groups`"):
        tuner.search(x, y, validation_data=(x, y), groups=np.arange(30), epochs=1)
    assert tuner.oracle.trials == {}


class _CacheProbe(keras.callbacks.Callback):
    """Records which tensor each fit's training data comes from (the tuner is
    a class attribute: keras-tuner deep-copies callbacks, not classes)."""

    tuner = None
    seen: list = []

    def on_train_begin(self, logs=None):
        cache = type(self).tuner._fast._data
        # the tensor itself, held: an id could be reused once a tensor is freed
        type(self).seen.append(cache._train[0] if cache is not None and cache._train else None)


def test_the_fast_path_converts_each_fold_once_per_search(tmp_path):
    x, y = _data(40)
    tuner = ktplus.RandomSearch(_hm(), objective="val_accuracy", max_trials=2, cv=2, directory=tmp_path,
                                tensorboard=False)
    _CacheProbe.tuner, _CacheProbe.seen = tuner, []
    tuner.search(x, y, epochs=1, verbose=0, callbacks=[_CacheProbe()])
    seen = _CacheProbe.seen  # two trials x two folds (trial by trial, or fold by fold when the trials pack)
    assert len(seen) == 4 and all(t is not None for t in seen)
    distinct = {id(t) for t in seen}
    assert len(distinct) == 2  # each fold its own data, reused by the other trial
    assert all(sum(t is s for s in seen) == 2 for t in seen)


def test_int_cv_with_groups_never_splits_a_group():
    x, y = _data(60)
    groups = np.arange(60) // 5
    for fold in make_folds(3, x, y, groups, seed=0):
        assert not set(groups[fold.train]) & set(groups[fold.test])


def test_a_stratified_splitter_needs_the_rarest_class_in_every_fold():
    x, y = _data(30)
    y = np.zeros(30, "int64")
    y[:2] = 1
    with pytest.raises(ValueError, match="rarest class"):
        make_folds(StratifiedKFold(3), x, y, None, seed=0)
    assert len(make_folds(KFold(3), x, y, None, seed=0)) == 3  # not stratified: allowed
