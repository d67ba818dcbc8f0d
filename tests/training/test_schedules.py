"""Learning-rate schedules checked epoch by epoch against their formulas."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from ktplus.training import LearningRateDecay, LRDecay, parse_lr_decay

E = 8
LR0 = 0.02


def formula(schedule, e, warmup=0, **p):
    if e < warmup:
        return LR0 * (e + 1) / (warmup + 1)
    t, total = e - warmup, max(1, E - warmup)
    if schedule == "exponential":
        return LR0 * p.get("decay_rate", 0.9) ** t
    if schedule == "step":
        return LR0 * p.get("factor", 0.5) ** (t // p.get("step_size", max(1, total // 3)))
    if schedule == "cosine":
        a = p.get("alpha", 0.0)
        return LR0 * (a + (1 - a) * 0.5 * (1 + math.cos(math.pi * t / total)))
    if schedule == "polynomial":
        end = LR0 * p.get("end_factor", 0.01)
        return (LR0 - end) * (1 - t / total) ** p.get("power", 1.0) + end
    raise AssertionError(schedule)


def fit_with(decay, epochs=E, monitor="loss", lr=LR0, optimizer=None, y_scale=1.0):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer or keras.optimizers.Adam(lr), "mse")
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = (x.sum(axis=1, keepdims=True) * y_scale).astype("float32")
    cb = LearningRateDecay(decay, total_epochs=E, monitor=monitor, mode="min")
    return model.fit(x, y, epochs=epochs, verbose=0, callbacks=[cb]).history


@pytest.mark.parametrize(("schedule", "params"), [
    ("exponential", {}), ("exponential", {"decay_rate": 0.7}),
    ("step", {}), ("step", {"factor": 0.1, "step_size": 3}),
    ("cosine", {}), ("cosine", {"alpha": 0.1}),
    ("polynomial", {}), ("polynomial", {"power": 2.0, "end_factor": 0.1}),
])
@pytest.mark.parametrize("warmup", [0, 2])
def test_schedule_matches_formula_each_epoch(schedule, params, warmup):
    logged = fit_with(LRDecay(schedule, warmup, params))["learning_rate"]
    expected = [formula(schedule, e, warmup, **params) for e in range(E)]
    np.testing.assert_allclose(logged, expected, rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop", "adamw"])
def test_schedule_scales_any_optimizer(optimizer):
    opt = keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": LR0}})
    logged = fit_with(LRDecay("exponential"), optimizer=opt)["learning_rate"]
    np.testing.assert_allclose(logged, [formula("exponential", e) for e in range(E)], rtol=1e-5)


def test_plateau_reduces_when_the_monitor_stops_improving():
    # A zero learning-rate model cannot improve: every epoch after the first
    # is a plateau, so the rate halves every `patience` epochs.
    decay = LRDecay("plateau", params={"factor": 0.5, "patience": 2})
    cb = LearningRateDecay(decay, total_epochs=E, monitor="loss", mode="min")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(LR0), "mse")
    x = np.zeros((8, 3), "float32")
    y = np.ones((8, 1), "float32")
    model.layers[0].trainable = False  # loss stays constant
    logged = model.fit(x, y, epochs=E, verbose=0, callbacks=[cb]).history["learning_rate"]
    assert logged == pytest.approx([LR0, LR0, LR0, LR0 / 2, LR0 / 2, LR0 / 4, LR0 / 4, LR0 / 8])


def test_continuation_continues_the_schedule():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(LR0), "mse")
    x = np.ones((8, 3), "float32")
    cb = LearningRateDecay(LRDecay("cosine"), total_epochs=E)
    history = model.fit(x, x[:, :1], epochs=E, initial_epoch=5, verbose=0, callbacks=[cb]).history
    np.testing.assert_allclose(history["learning_rate"], [formula("cosine", e) for e in (5, 6, 7)],
                               rtol=1e-5)


@pytest.mark.parametrize(("value", "arg"), [
    ("linear", "lr_decay"), (3, "lr_decay"), ({"schedule": "step", "gamma": 2}, "lr_decay"),
    ({"schedule": "exponential", "decay_rate": 1.5}, "lr_decay"),
])
def test_bad_lr_decay(value, arg):
    with pytest.raises(ValueError, match=f"`{arg}`"):
        parse_lr_decay(value)


def test_bad_warmup():
    with pytest.raises(ValueError, match="`lr_warmup`"):
        parse_lr_decay("cosine", -1)
    with pytest.raises(ValueError, match="`lr_warmup`"):
        parse_lr_decay(None, 2)
