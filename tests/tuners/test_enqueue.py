"""tuner.enqueue_trial on every ktplus tuner: order, partial values,
validation at the call, and a queue kept across a resume."""

from __future__ import annotations

import json

import keras
import keras_tuner
import pytest

import ktplus


class Tiny(keras_tuner.HyperModel):
    def build(self, hp):
        units = hp.Choice("units", [4, 8, 16])
        hp.Float("dropout", 0.0, 0.5, step=0.1)
        kind = hp.Choice("kind", ["a", "b"])
        with hp.conditional_scope("kind", ["b"]):
            if kind == "b":
                hp.Int("extra", 1, 3)
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(units)])

    def fit(self, hp, model, *args, **kwargs):
        return {"loss": hp.get("units") * (1.0 + hp.get("dropout"))}


LOSS = keras_tuner.Objective("loss", "min")
TUNERS = {
    "random": lambda **kw: ktplus.RandomSearch(Tiny(), LOSS, max_trials=4, seed=1, **kw),
    "bayesian": lambda **kw: ktplus.BayesianOptimization(Tiny(), LOSS, max_trials=4, seed=1, **kw),
    "grid": lambda **kw: ktplus.GridSearch(Tiny(), LOSS, max_trials=5, **kw),
    "hyperband": lambda **kw: ktplus.Hyperband(Tiny(), LOSS, max_epochs=2, factor=2, seed=1, **kw),
    "optuna": lambda **kw: ktplus.OptunaSearch(Tiny(), LOSS, max_trials=4, sampler="tpe", seed=1, **kw),
}


def _ordered(tuner):
    trials = tuner.oracle.trials
    return [trials[t].hyperparameters.values for t in sorted(trials, key=int)]


@pytest.mark.parametrize("name", sorted(TUNERS))
def test_enqueued_trials_run_first_in_order(tmp_path, name):
    tuner = TUNERS[name](directory=tmp_path, tensorboard=False)
    tuner.enqueue_trial({"units": 16, "dropout": 0.3, "kind": "b", "extra": 2})
    tuner.enqueue_trial({"units": 8})  # partial
    tuner.search(verbose=0)
    values = _ordered(tuner)
    assert len(values) >= 3
    first = {k: v for k, v in values[0].items() if not k.startswith("tuner/")}
    assert first == {"units": 16, "dropout": pytest.approx(0.3), "kind": "b", "extra": 2}
    assert values[1]["units"] == 8
    if name != "optuna":  # keras-tuner's oracles take the defaults for the rest
        assert {k: v for k, v in values[1].items() if not k.startswith("tuner/")} == {
            "units": 8, "dropout": 0.0, "kind": "a"}
    if name == "optuna":  # the sampler chose the rest; the study holds the enqueued values
        params = tuner.oracle.study.trials[1].params
        assert params["units"] == 8 and set(params) >= {"dropout", "kind"}
    if name == "grid":  # the grid still walks its own grid after the queue, from its first point
        assert {k: values[2][k] for k in ("units", "dropout", "kind")} == {"units": 4, "dropout": 0.0, "kind": "a"}


@pytest.mark.parametrize("values, words", [
    ({"units": 5}, "'units' to be one of [4, 8, 16]; got 5"),
    ({"dropout": 0.05}, "'dropout' to be a number in [0.0, 0.5] on the grid 0.0 + k * 0.1; got 0.05"),
    ({"nope": 1}, "'nope' is not one of them"),
    ("units=4", "a dict of hyperparameter values by name"),
])
def test_bad_values_are_clear_errors_at_the_call(tmp_path, values, words):
    tuner = TUNERS["random"](directory=tmp_path, tensorboard=False)
    with pytest.raises(ValueError, match="`values`") as info:
        tuner.enqueue_trial(values)
    assert words in str(info.value)
    assert not (tuner.project_dir and (tmp_path / "untitled_project" / "ktplus_queue.json").exists())


def test_a_resumed_search_keeps_the_queue_and_does_not_enqueue_twice(tmp_path):
    first = TUNERS["random"](directory=tmp_path, tensorboard=False)
    first.enqueue_trial({"units": 16})
    first.enqueue_trial({"units": 4, "dropout": 0.5})
    queue = tmp_path / "untitled_project" / "ktplus_queue.json"
    assert [e["trial_id"] for e in json.loads(queue.read_text())["entries"]] == [None, None]
    # A new process (here: a new tuner on the same project) resumes before any trial ran,
    # running the same script: the same calls again, then one more.
    resumed = TUNERS["random"](directory=tmp_path, tensorboard=False, overwrite=False)
    resumed.enqueue_trial({"units": 16})
    resumed.enqueue_trial({"units": 4, "dropout": 0.5})
    resumed.enqueue_trial({"units": 8, "dropout": 0.1})
    resumed.search(verbose=0)
    values = _ordered(resumed)
    assert [(v["units"], v["dropout"]) for v in values[:3]] == [(16, 0.0), (4, 0.5), (8, pytest.approx(0.1))]
    assert [(v["units"], v["dropout"]) for v in values].count((16, 0.0)) == 1
    assert [e["trial_id"] for e in json.loads(queue.read_text())["entries"]] == ["0", "1", "2"]


def test_an_entry_whose_trial_was_never_saved_is_pending_again(tmp_path):
    tuner = TUNERS["random"](directory=tmp_path, tensorboard=False)
    tuner.enqueue_trial({"units": 16})
    queue = tmp_path / "untitled_project" / "ktplus_queue.json"
    # A kill after the queue recorded trial "0" but before keras-tuner saved it.
    queue.write_text(json.dumps({"entries": [{"values": {"units": 16}, "trial_id": "0"}]}))
    resumed = TUNERS["random"](directory=tmp_path, tensorboard=False, overwrite=False)
    resumed.search(verbose=0)
    assert _ordered(resumed)[0]["units"] == 16
