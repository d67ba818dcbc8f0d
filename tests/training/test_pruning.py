"""Pruning rules (Optuna's meanings), the curve store and the callback."""

from __future__ import annotations

import json
import math
import os

import keras
import keras_tuner
import numpy as np
import pytest

from ktplus.training import MedianPruner, PercentilePruner, Pruner, ThresholdPruner
from ktplus.training._pruning import CurveStore, PruningCallback, parse_pruning

NAN = float("nan")

# Five completed trials with 0.5 .. 0.9 at epochs 0-3.
FIVE = [{e: v for e in range(4)} for v in (0.5, 0.6, 0.7, 0.8, 0.9)]


# ---------------------------------------------------------------- median / percentile rules

@pytest.mark.parametrize("direction, low, high", [("max", 0.55, 0.85), ("min", 0.85, 0.55)])
def test_median_prunes_the_worse_half_and_keeps_the_better(direction, low, high):
    p = MedianPruner(n_startup_trials=1, n_warmup_epochs=0)
    assert p.prune(1, {0: low, 1: low}, FIVE, direction) is True
    assert p.prune(1, {0: high, 1: high}, FIVE, direction) is False


def test_median_uses_the_best_value_so_far_not_the_latest():
    p = MedianPruner(n_startup_trials=1, n_warmup_epochs=0)
    # Latest 0.55 is below the median (0.7), but epoch 0 reached 0.85.
    assert p.prune(1, {0: 0.85, 1: 0.55}, FIVE, "max") is False
    assert p.prune(1, {0: 0.55, 1: 0.55}, FIVE, "max") is True


def test_median_compares_with_the_values_at_the_same_epoch():
    others = [{0: 0.1, 1: 0.9}, {0: 0.2, 1: 0.95}, {0: 0.3, 1: 0.99}]
    p = MedianPruner(n_startup_trials=1, n_warmup_epochs=0)
    assert p.prune(0, {0: 0.5}, others, "max") is False  # above the epoch-0 median 0.2
    assert p.prune(1, {0: 0.5, 1: 0.5}, others, "max") is True  # below the epoch-1 median 0.95


@pytest.mark.parametrize("direction, mid", [("max", 0.75), ("min", 0.65)])
def test_percentile_25_keeps_the_best_quarter_75_prunes_only_the_worst(direction, mid):
    # "max": 25 compares with the 75th percentile (0.8), 75 with the 25th (0.6).
    # "min": 25 compares with the 25th percentile (0.6), 75 with the 75th (0.8).
    strict = PercentilePruner(25.0, n_startup_trials=1, n_warmup_epochs=0)
    lenient = PercentilePruner(75.0, n_startup_trials=1, n_warmup_epochs=0)
    assert strict.prune(0, {0: mid}, FIVE, direction) is True
    assert lenient.prune(0, {0: mid}, FIVE, direction) is False
    worst = 0.55 if direction == "max" else 0.85
    best = 0.85 if direction == "max" else 0.55
    assert lenient.prune(0, {0: worst}, FIVE, direction) is True
    assert strict.prune(0, {0: best}, FIVE, direction) is False


def test_percentile_ignores_nan_of_others_and_prunes_an_all_nan_trial():
    p = MedianPruner(n_startup_trials=1, n_warmup_epochs=0)
    others = [{0: 0.9}, {0: NAN}, {0: NAN}]  # median of the non-NaN values is 0.9
    assert p.prune(0, {0: 0.8}, others, "max") is True
    assert p.prune(0, {0: NAN}, FIVE, "max") is True
    assert p.prune(0, {0: NAN}, FIVE, "min") is True


# ---------------------------------------------------------------- warmup

@pytest.mark.parametrize("n_warmup_epochs", [1, 2, 5])
def test_warmup_boundary(n_warmup_epochs):
    bad = {e: 0.0 for e in range(6)}
    others = [{e: 1.0 for e in range(6)}] * 3
    p = MedianPruner(n_startup_trials=1, n_warmup_epochs=n_warmup_epochs)
    for epoch in range(n_warmup_epochs):
        assert p.prune(epoch, bad, others, "max") is False
    assert p.prune(n_warmup_epochs, bad, others, "max") is True


def test_zero_warmup_epochs_allows_pruning_after_the_first_epoch():
    others = [{0: 1.0}] * 3
    assert MedianPruner(n_startup_trials=1, n_warmup_epochs=0).prune(0, {0: 0.0}, others, "max")
    assert ThresholdPruner(lower=0.5, n_warmup_epochs=0).prune(0, {0: 0.0}, [], "max")


def test_threshold_warmup_boundary():
    p = ThresholdPruner(lower=0.5, n_warmup_epochs=2)
    bad = {0: 0.0, 1: 0.0, 2: 0.0}
    assert p.prune(0, bad, [], "max") is False
    assert p.prune(1, bad, [], "max") is False
    assert p.prune(2, bad, [], "max") is True


# ---------------------------------------------------------------- startup trials

def test_n_startup_trials_counts_completed_trials():
    p = MedianPruner(n_startup_trials=3, n_warmup_epochs=0)
    bad = {0: 0.0}
    assert p.prune(0, bad, [{0: 1.0}] * 2, "max") is False
    assert p.prune(0, bad, [{0: 1.0}] * 3, "max") is True
    # Completed trials count even where they stopped early: three completed
    # trials, one of which reached epoch 2, allow pruning at epoch 2.
    others = [{0: 1.0, 1: 1.0, 2: 1.0}, {0: 1.0}, {0: 1.0, 1: 1.0}]
    assert p.prune(2, {0: 0.0, 1: 0.0, 2: 0.0}, others, "max") is True


def test_n_startup_trials_zero_still_needs_one_completed_trial():
    p = MedianPruner(n_startup_trials=0, n_warmup_epochs=0)
    assert p.prune(0, {0: 0.0}, [], "max") is False
    assert p.prune(0, {0: 0.0}, [{0: 1.0}], "max") is True


def test_no_pruning_at_an_epoch_no_completed_trial_reached():
    # Three completed trials, each trained two epochs (e.g. early stopping).
    others = [{0: 1.0, 1: 1.0}] * 3
    p = MedianPruner(n_startup_trials=3, n_warmup_epochs=0)
    assert p.prune(1, {0: 0.0, 1: 0.0}, others, "max") is True
    assert p.prune(2, {0: 0.0, 1: 0.0, 2: 0.0}, others, "max") is False


class _Objective:
    """What PruningCallback uses of a keras_tuner.Objective."""

    def __init__(self, name="val_acc", direction="max"):
        self.name, self.direction = name, direction

    def get_value(self, logs):
        return logs[self.name]


def _callback(store, pruner, trial_id="new", initial_curve=None, objective=None):
    """A callback driven by hand (on_epoch_end with made-up logs)."""
    cb = PruningCallback(pruner, store, trial_id, objective or _Objective(), initial_curve=initial_curve)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False
    cb.set_model(model)
    return cb


def test_pruned_and_failed_trials_do_not_count_as_startup_trials(tmp_path):
    store = CurveStore(tmp_path)
    for tid in ("1", "2"):
        store.write(tid, {0: 1.0, 1: 1.0}, "completed")
    store.write("3", {0: 1.0, 1: 1.0}, "pruned")
    store.write("4", {0: 1.0, 1: 1.0}, "failed")
    store.write("5", {0: 1.0, 1: 1.0}, "running")
    pruner = MedianPruner(n_startup_trials=3, n_warmup_epochs=0)
    cb = _callback(store, pruner)
    cb.on_epoch_end(0, {"val_acc": 0.0})
    cb.on_epoch_end(1, {"val_acc": 0.0})
    assert cb.pruned_epoch is None and cb.model.stop_training is False

    store.write("6", {0: 1.0, 1: 1.0}, "completed")  # the third completed trial
    cb = _callback(store, pruner, trial_id="new2")
    cb.on_epoch_end(0, {"val_acc": 0.0})
    assert cb.pruned_epoch == 0 and cb.model.stop_training is True
    assert cb.pruned_against == ["1", "2", "6"]
    assert json.loads(store.path("new2").read_text())["state"] == "pruned"


# ---------------------------------------------------------------- threshold

def test_threshold_lower_upper_and_nan():
    lower, upper = ThresholdPruner(lower=0.5), ThresholdPruner(upper=2.0)
    assert lower.prune(0, {0: 0.4}, [], "max") is True
    assert lower.prune(0, {0: 0.6}, [], "max") is False
    assert upper.prune(0, {0: 2.1}, [], "min") is True
    assert upper.prune(0, {0: 1.9}, [], "min") is False
    assert lower.prune(0, {0: NAN}, [], "max") is True
    assert upper.prune(0, {0: NAN}, [], "min") is True
    # The latest value decides, not the best so far.
    assert lower.prune(1, {0: 0.9, 1: 0.4}, [], "max") is True
    both = ThresholdPruner(lower=0.0, upper=1.0)
    assert [both.prune(0, {0: v}, [], "max") for v in (-0.1, 0.5, 1.1)] == [True, False, True]


def _raises_invalid(arg, make):
    with pytest.raises(ValueError, match=f"Invalid value for argument `{arg}`.*Received: {arg}="):
        make()


def test_threshold_construction_errors():
    cases = [
        ({"lower": "0.5"}, "lower"),
        ({"upper": "1"}, "upper"),
        ({"lower": True}, "lower"),
        ({"upper": False}, "upper"),
        ({"lower": NAN}, "lower"),
        ({"lower": 0.1, "upper": NAN}, "upper"),
        ({}, "lower"),
        ({"lower": 2.0, "upper": 1.0}, "lower"),
        ({"lower": 0.5, "n_warmup_epochs": -1}, "n_warmup_epochs"),
        ({"lower": 0.5, "n_warmup_epochs": True}, "n_warmup_epochs"),
    ]
    for kwargs, arg in cases:
        _raises_invalid(arg, lambda kwargs=kwargs: ThresholdPruner(**kwargs))


def test_threshold_accepts_numpy_and_int_bounds():
    p = ThresholdPruner(lower=np.float32(0.5), upper=2)
    assert (p.lower, p.upper) == (0.5, 2.0)


def test_percentile_must_be_a_number_in_the_open_interval():
    for percentile in (0, 100, -5, 150, True, "50", NAN, None):
        _raises_invalid("percentile", lambda p=percentile: PercentilePruner(p))
    assert PercentilePruner(0.5).percentile == 0.5 and PercentilePruner(99).percentile == 99.0


def test_pruner_counts_must_be_integers():
    for arg in ("n_startup_trials", "n_warmup_epochs"):
        for value in (True, False, -1, 1.5, "2", None):
            _raises_invalid(arg, lambda a=arg, v=value: MedianPruner(**{a: v}))
            _raises_invalid(arg, lambda a=arg, v=value: PercentilePruner(25.0, **{a: v}))


def test_pruner_counts_accept_numpy_integers():
    assert MedianPruner(n_startup_trials=np.int64(4)).n_startup_trials == 4


def test_config_round_trip():
    for p in (MedianPruner(n_startup_trials=4, n_warmup_epochs=0),
              PercentilePruner(10.0, n_startup_trials=1, n_warmup_epochs=3),
              ThresholdPruner(upper=3.0, n_warmup_epochs=1)):
        clone = type(p).from_config(p.get_config())
        assert type(clone) is type(p) and clone.get_config() == p.get_config()
        assert repr(clone) == repr(p)


def test_parse_pruning_strings():
    assert parse_pruning(None) is None and parse_pruning(False) is None
    median = parse_pruning("median")
    assert type(median) is MedianPruner
    percentile = parse_pruning("percentile")
    assert type(percentile) is PercentilePruner and percentile.percentile == 25.0
    mine = ThresholdPruner(lower=0.0)
    assert parse_pruning(mine) is mine
    with pytest.raises(ValueError, match="`pruning`"):
        parse_pruning("hyperband")
    assert isinstance(median, Pruner)


# ---------------------------------------------------------------- curve store

def test_store_round_trip_with_inherited_epochs(tmp_path):
    store = CurveStore(tmp_path)
    store.write("1", {0: 0.1, 1: 0.2, 2: 0.3}, "completed")
    store.write("2", {3: 0.4, 4: 0.5}, "completed", inherited=store.read("1"))
    data = json.loads(store.path("2").read_text())
    assert data["trial_id"] == "2" and data["state"] == "completed"
    assert data["values"] == {"3": 0.4, "4": 0.5}
    assert data["inherited"] == {"0": 0.1, "1": 0.2, "2": 0.3}
    assert store.read("2") == {0: 0.1, 1: 0.2, 2: 0.3, 3: 0.4, 4: 0.5}
    assert store.finished() == {"1": {0: 0.1, 1: 0.2, 2: 0.3}, "2": {3: 0.4, 4: 0.5}}
    # A grandchild inherits the whole lineage.
    store.write("3", {5: 0.6}, "running", inherited=store.read("2"))
    assert store.read("3") == {0: 0.1, 1: 0.2, 2: 0.3, 3: 0.4, 4: 0.5, 5: 0.6}
    assert store.finished(states=("running",)) == {"3": {5: 0.6}}
    assert store.finished(exclude="1") == {"2": {3: 0.4, 4: 0.5}}


def test_store_reads_files_without_inherited_and_missing_ones(tmp_path):
    (tmp_path / "trial_7.json").write_text(json.dumps(
        {"trial_id": "7", "state": "completed", "values": {"0": 0.5, "1": None}}))
    store = CurveStore(tmp_path)
    assert store.finished()["7"][0] == 0.5 and math.isnan(store.finished()["7"][1])
    assert store.read("7")[0] == 0.5
    assert store.read("nope") == {}
    assert CurveStore(tmp_path / "missing").finished() == {}


def test_continuation_is_not_counted_twice_at_its_parents_epochs(tmp_path):
    store = CurveStore(tmp_path)
    store.write("parent", {0: 0.9, 1: 0.9}, "completed")
    child = _callback(store, None, trial_id="child", initial_curve=store.read("parent"))
    child.on_epoch_end(2, {"val_acc": 0.95})
    child.finish("completed")
    store.write("other", {0: 0.1, 1: 0.1}, "completed")
    at_epoch_1 = [c[1] for c in store.finished().values() if 1 in c]
    assert sorted(at_epoch_1) == [0.1, 0.9]  # the parent once, the child not at all
    assert store.read("child") == {0: 0.9, 1: 0.9, 2: 0.95}
    # The median at epoch 1 is now 0.5 (not 0.9, as it would be with the parent twice).
    p = MedianPruner(n_startup_trials=1, n_warmup_epochs=0)
    cb = _callback(store, p)
    cb.on_epoch_end(0, {"val_acc": 0.5})
    cb.on_epoch_end(1, {"val_acc": 0.6})
    assert cb.pruned_epoch is None


def test_inherited_epochs_count_toward_the_best_so_far(tmp_path):
    store = CurveStore(tmp_path)
    for tid in ("a", "b", "c"):
        store.write(tid, {0: 0.5, 1: 0.5, 2: 0.5}, "completed")
    p = MedianPruner(n_startup_trials=1, n_warmup_epochs=0)
    good_parent = _callback(store, p, trial_id="x", initial_curve={0: 0.3, 1: 0.9})
    good_parent.on_epoch_end(2, {"val_acc": 0.4})
    assert good_parent.pruned_epoch is None  # best so far 0.9 (inherited) > 0.5
    assert store.finished(states=("running",))["x"] == {2: 0.4}
    bad_parent = _callback(store, p, trial_id="y", initial_curve={0: 0.3, 1: 0.3})
    bad_parent.on_epoch_end(2, {"val_acc": 0.4})
    assert bad_parent.pruned_epoch == 2


def test_cache_does_not_parse_an_unchanged_file_again(tmp_path):
    store = CurveStore(tmp_path)
    store.write("1", {0: 0.25}, "completed")
    assert store.finished() == {"1": {0: 0.25}}
    path = store.path("1")
    st = os.stat(path)
    text = path.read_text()
    with open(path, "w") as f:  # same inode, same size; mtime put back
        f.write(text.replace("0.25", "0.75"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.finished() == {"1": {0: 0.25}}  # served from the cache
    assert CurveStore(tmp_path).finished() == {"1": {0: 0.75}}  # a new store parses it


def test_cache_rereads_a_changed_file_and_skips_a_corrupt_one(tmp_path):
    store = CurveStore(tmp_path)
    store.write("1", {0: 0.25}, "running")
    store.write("2", {0: 0.5}, "completed")
    assert store.finished() == {"2": {0: 0.5}}
    store.write("1", {0: 0.25, 1: 0.3}, "completed")
    assert store.finished() == {"1": {0: 0.25, 1: 0.3}, "2": {0: 0.5}}
    store.path("2").write_text('{"trial_id": "2", "state": "compl')  # torn write
    assert store.finished() == {"1": {0: 0.25, 1: 0.3}}
    assert store.read("2") == {}
    store.write("2", {0: 0.5, 1: 0.6}, "completed")  # repaired
    assert store.finished()["2"] == {0: 0.5, 1: 0.6}
    store.path("1").unlink()
    assert store.finished() == {"2": {0: 0.5, 1: 0.6}}


# ---------------------------------------------------------------- in a real fit

def _fit(callback, epochs=6):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=[callback])
    return model, history


def test_callback_stops_a_real_fit(tmp_path):
    store = CurveStore(tmp_path)
    objective = keras_tuner.Objective("accuracy", "max")
    cb = PruningCallback(ThresholdPruner(lower=1.5, n_warmup_epochs=2), store, "t", objective)
    model, history = _fit(cb)
    assert model.stop_training is True
    assert len(history.history["loss"]) == 3  # epochs 0, 1 (warmup) and 2
    assert cb.pruned_epoch == 2 and cb.pruned_against == []
    data = json.loads(store.path("t").read_text())
    assert data["state"] == "pruned" and sorted(data["values"]) == ["0", "1", "2"]


def test_callback_lets_a_good_fit_run(tmp_path):
    store = CurveStore(tmp_path)
    objective = keras_tuner.Objective("loss", "min")
    cb = PruningCallback(ThresholdPruner(upper=1e6), store, "t", objective)
    model, history = _fit(cb)
    assert model.stop_training is False and len(history.history["loss"]) == 6
    cb.finish("completed")
    assert cb.pruned_epoch is None
    assert store.finished() == {"t": {e: pytest.approx(v) for e, v in enumerate(history.history["loss"])}}
