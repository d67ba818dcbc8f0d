"""tuner.results() and ktplus.load_results(DIR): one row per trial."""

from __future__ import annotations

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus


def build(hp):
    mode = hp.Choice("mode", ["good", "bad", "nan"])
    with hp.conditional_scope("mode", ["good"]):
        units = hp.Int("units", 4, 8, step=4)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units or 4, activation="relu")])
    if mode == "nan":
        model.add(keras.layers.Rescaling(float("inf")))
    model.add(keras.layers.Dense(2, activation="softmax"))
    model.compile(keras.optimizers.Adam(0.0 if mode == "bad" else 0.05), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def tuner(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    t = ktplus.GridSearch(build, objective="val_accuracy", max_trials=10,
                          pruning=ktplus.MedianPruner(n_startup_trials=2, n_warmup_epochs=1),
                          directory=tmp_path_factory.mktemp("res"), project_name="p")
    t.search(x[:60], y[:60], validation_data=(x[60:], y[60:]), epochs=4, verbose=0)
    return t


def test_results_frame(tuner):
    frame = tuner.results()
    assert len(frame) == len(tuner.oracle.trials) == 4
    assert {"trial_id", "status", "score", "epochs", "best_epoch", "mode", "units",
            "best/val_accuracy", "best/loss"} <= set(frame.columns)
    assert set(frame["status"]) == {"completed", "pruned", "failed"}
    scored = frame["score"].dropna().tolist()
    assert scored == sorted(scored, reverse=True)  # best first for a max objective
    assert frame["score"].isna().tolist()[-1]  # the failed trial last
    good = frame[frame["mode"] == "good"]
    assert sorted(good["units"]) == [4, 8]
    assert frame[frame["mode"] != "good"]["units"].isna().all()  # inactive: empty
    failed = frame[frame["status"] == "failed"].iloc[0]
    assert "nan" in failed["message"].lower()
    assert frame.attrs == {"objective": "val_accuracy", "direction": "max"}


def test_load_results_matches_the_tuner(tuner):
    loaded = ktplus.load_results(tuner.project_dir)
    live = tuner.results()
    assert loaded["trial_id"].tolist() == live["trial_id"].tolist()
    assert loaded["status"].tolist() == live["status"].tolist()
    np.testing.assert_allclose(loaded["score"].to_numpy(dtype=float), live["score"].to_numpy(dtype=float))
    # The parent directory holds exactly one project: accepted too.
    assert len(ktplus.load_results(tuner.directory)) == 4


def test_load_results_of_a_plain_keras_tuner_search(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")

    def plain(hp):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(hp.Choice("u", [2, 4])),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    t = keras_tuner.GridSearch(plain, objective="val_loss", max_trials=2, directory=tmp_path, project_name="k")
    t.search(x, y, validation_split=0.25, epochs=1, verbose=0)
    frame = ktplus.load_results(tmp_path / "k")
    assert len(frame) == 2 and frame.attrs["direction"] == "min"
    assert frame["score"].tolist() == sorted(frame["score"].tolist())


@pytest.mark.parametrize("bad", ["missing", "empty"])
def test_load_results_bad_directory(bad, tmp_path):
    path = tmp_path / "x"
    if bad == "empty":
        path.mkdir()
    with pytest.raises(ValueError, match="`directory`"):
        ktplus.load_results(path)
