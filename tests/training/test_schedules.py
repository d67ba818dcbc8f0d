"""Learning-rate decay: each schedule against Keras' own schedules and
ReduceLROnPlateau, warmup with every form of lr_decay, and bad input.

The callbacks are driven by hand here (epoch begin / end on a compiled
model); tests/training/test_schedules_fit.py runs them inside model.fit."""

from __future__ import annotations

import math

import keras
import keras_tuner
import pytest

from ktplus.training import LearningRateDecay, LRDecay
from ktplus.training._schedules import (
    SCHEDULES,
    TUNE_SPACE,
    TunedLRDecay,
    decay_from_hp,
    declare_tuned_decay,
    needs_single_metric,
    parse_lr_decay,
)

E = 9
LR0 = 0.02
S = keras.optimizers.schedules


def rate_of(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def drive(callback, values=None, epochs=E, initial_epoch=0, monitor="val_loss"):
    """Runs the callback's epoch hooks; returns the rate each epoch trains with."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(LR0), "mse")
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for i, epoch in enumerate(range(initial_epoch, epochs)):
        callback.on_epoch_begin(epoch, {})
        rates.append(rate_of(model.optimizer))
        callback.on_epoch_end(epoch, {} if values is None else {monitor: values[i]})
    return rates


def keras_rates(reference, warmup=0, epochs=E):
    """Keras' linear warmup (CosineDecay's, from 0 to LR0 over warmup + 1
    steps) for the first epochs, then ``reference`` at step epoch - warmup."""
    ramp = S.CosineDecay(0.0, decay_steps=1, warmup_target=LR0, warmup_steps=warmup + 1)
    return [float(ramp(e + 1)) if e < warmup else float(reference(e - warmup)) for e in range(epochs)]


def reference_schedule(schedule, params, warmup):
    """The Keras schedule that ``LRDecay(schedule, warmup, params)`` follows
    after its warmup, with the decay spanning the epochs left (E - warmup)."""
    steps = E - warmup
    if schedule == "exponential":
        return S.ExponentialDecay(LR0, decay_steps=1, decay_rate=params.get("decay_rate", 0.9))
    if schedule == "step" and "step_size" in params:
        return S.ExponentialDecay(LR0, decay_steps=params["step_size"],
                                  decay_rate=params.get("factor", 0.5), staircase=True)
    if schedule == "step":  # step_size 0: a third of the E - warmup epochs (3 for 9, 2 for 7)
        boundaries = {0: [2, 5, 8], 2: [1, 3, 5]}[warmup]
        return S.PiecewiseConstantDecay(boundaries, [LR0, LR0 / 2, LR0 / 4, LR0 / 8])
    if schedule == "cosine":
        return S.CosineDecay(LR0, decay_steps=steps, alpha=params.get("alpha", 0.0))
    if schedule == "polynomial":
        return S.PolynomialDecay(LR0, decay_steps=steps, power=params.get("power", 1.0),
                                 end_learning_rate=LR0 * params.get("end_factor", 0.01))
    raise AssertionError(schedule)


@pytest.mark.parametrize(("schedule", "params"), [
    ("exponential", {}), ("exponential", {"decay_rate": 0.7}),
    ("step", {}), ("step", {"factor": 0.1, "step_size": 3}),
    ("cosine", {}), ("cosine", {"alpha": 0.1}),
    ("polynomial", {}), ("polynomial", {"power": 2.0, "end_factor": 0.1}),
])
@pytest.mark.parametrize("warmup", [0, 2])
def test_schedule_matches_keras_schedule_each_epoch(schedule, params, warmup):
    rates = drive(LearningRateDecay(LRDecay(schedule, warmup, params), total_epochs=E))
    expected = keras_rates(reference_schedule(schedule, params, warmup), warmup)
    assert rates == pytest.approx(expected, rel=1e-5)


def test_cosine_warmup_matches_keras_cosine_with_warmup():
    # One Keras schedule covers both parts: its warmup_steps=3 ramp reaches
    # LR0 at step 3, i.e. our epoch 2 after 2 warmup epochs.
    keras_cosine = S.CosineDecay(0.0, decay_steps=E - 2, alpha=0.1, warmup_target=LR0, warmup_steps=3)
    rates = drive(LearningRateDecay(LRDecay("cosine", 2, {"alpha": 0.1}), total_epochs=E))
    assert rates == pytest.approx([float(keras_cosine(e + 1)) for e in range(E)], rel=1e-5)


def test_continuation_continues_the_schedule():
    # A Hyperband continuation starts at initial_epoch=5 with epochs counted
    # absolutely: it goes on where a full run would be.
    rates = drive(LearningRateDecay(LRDecay("cosine"), total_epochs=E), initial_epoch=5)
    keras_cosine = S.CosineDecay(LR0, decay_steps=E)
    assert rates == pytest.approx([float(keras_cosine(e)) for e in range(5, E)], rel=1e-5)


# -- "plateau" against keras.callbacks.ReduceLROnPlateau ------------------------------------------

def keras_plateau(values, mode="min", warmup=0, **params):
    """Rates from ReduceLROnPlateau given the same values (from epoch
    ``warmup`` on: the warmup epochs are not watched)."""
    cb = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", mode=mode, factor=params.get("factor", 0.5),
        patience=params.get("patience", 3), min_delta=params.get("min_delta", 1e-4),
        cooldown=params.get("cooldown", 0), min_lr=LR0 * params.get("min_factor", 1e-3))
    return drive(cb, values[warmup:], epochs=len(values) - warmup)


def ours(values, mode="min", warmup=0, **params):
    decay = LRDecay("plateau", warmup, params)
    return drive(LearningRateDecay(decay, total_epochs=len(values), mode=mode), values, epochs=len(values))


# Each sequence is chosen so that dropping the named feature changes the rates.
PLATEAU_CASES = {
    # Improvements smaller than min_delta=0.1 count as none.
    "min_delta": ("min", [1.0, 0.95, 0.92, 0.91, 0.7, 0.69, 0.68, 0.67, 0.5, 0.45, 0.44, 0.43],
                  {"patience": 2, "min_delta": 0.1}),
    # The default min_delta (1e-4): steps of 5e-5 are no improvement.
    "default_min_delta": ("min", [1.0 - 5e-5 * i for i in range(10)], {"patience": 2}),
    # After each reduction the wait counter rests for the cooldown epochs.
    "cooldown": ("min", [1.0] * 12, {"patience": 1, "cooldown": 2}),
    "cooldown_with_improvement": ("min", [1.0, 1.0, 0.5, 0.6, 0.6, 0.6, 0.6, 0.2, 0.3, 0.3, 0.3, 0.3],
                                  {"patience": 1, "cooldown": 2, "min_delta": 0.0}),
    # "max": larger is better, and must beat the best by min_delta.
    "max_mode": ("max", [0.5, 0.55, 0.58, 0.6, 0.8, 0.82, 0.83, 0.95, 0.9, 0.91, 0.92, 0.93],
                 {"patience": 2, "min_delta": 0.05, "factor": 0.2}),
    # The rate stops at lr0 * min_factor.
    "min_factor": ("min", [1.0] * 10, {"patience": 1, "min_factor": 0.2}),
    "defaults": ("min", [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9], {}),
}


@pytest.mark.parametrize("case", list(PLATEAU_CASES))
def test_plateau_matches_reduce_lr_on_plateau(case):
    mode, values, params = PLATEAU_CASES[case]
    expected = keras_plateau(values, mode, **params)
    assert ours(values, mode, **params) == pytest.approx(expected, rel=1e-5)
    assert min(expected) < LR0  # the case does reduce the rate


def test_plateau_does_not_watch_the_warmup_epochs():
    values = [5.0, 6.0, 7.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    params = {"patience": 1, "cooldown": 2}
    rates = ours(values, warmup=3, **params)
    ramp = S.CosineDecay(0.0, decay_steps=1, warmup_target=LR0, warmup_steps=4)
    assert rates[:3] == pytest.approx([float(ramp(e + 1)) for e in range(3)], rel=1e-5)
    assert rates[3:] == pytest.approx(keras_plateau(values, warmup=3, **params), rel=1e-5)


def test_plateau_state_restarts_with_each_fit():
    # The same callback in a second fit starts from the base rate again, as
    # ReduceLROnPlateau resets its counters in on_train_begin.
    cb = LearningRateDecay(LRDecay("plateau", params={"patience": 1}), total_epochs=6)
    first = drive(cb, [1.0] * 6, epochs=6)
    assert first[-1] < LR0
    assert drive(cb, [1.0] * 6, epochs=6) == pytest.approx(first)


# -- warmup with every form of lr_decay ------------------------------------------------------------

def test_warmup_applies_to_every_form():
    for form in ("cosine", {"schedule": "cosine"}, LRDecay("cosine")):
        assert parse_lr_decay(form, 2) == LRDecay("cosine", 2), form


def test_warmup_keeps_the_instance_parameters():
    decay = parse_lr_decay(LRDecay("step", params={"factor": 0.2, "step_size": 2}), 3)
    assert decay == LRDecay("step", 3, {"factor": 0.2, "step_size": 2})
    assert parse_lr_decay({"schedule": "step", "factor": 0.2, "warmup_epochs": 1}) == LRDecay(
        "step", 1, {"factor": 0.2})


def test_the_same_warmup_in_both_places_is_fine():
    for form in (LRDecay("cosine", 2), {"schedule": "cosine", "warmup_epochs": 2}, TunedLRDecay(2)):
        assert parse_lr_decay(form, 2).warmup_epochs == 2, form


def test_conflicting_warmups_are_an_error():
    for form in (LRDecay("cosine", 3), {"schedule": "cosine", "warmup_epochs": 3},
                 TunedLRDecay(3), TunedLRDecay(0)):
        with pytest.raises(ValueError, match=r"`lr_warmup`.*warmup_epochs.*lr_warmup=2"):
            parse_lr_decay(form, 2)


def test_warmup_without_decay_is_an_error():
    with pytest.raises(ValueError, match="`lr_warmup`"):
        parse_lr_decay(None, 2)


def space_of(hp):
    return {h.name: h for h in hp.space}


def trial_hp(tuned, **values):
    """A trial's hyperparameters: its values set, then the space declared
    (as a hypermodel build re-declares it over a trial's values)."""
    hp = keras_tuner.HyperParameters()
    hp.values.update(values)
    declare_tuned_decay(hp, tuned)
    return hp


def test_tune_with_a_warmup_fixes_it():
    tuned = parse_lr_decay("tune", 2)
    assert tuned == TunedLRDecay(2)
    hp = keras_tuner.HyperParameters()
    declare_tuned_decay(hp, tuned)
    warmup = space_of(hp)["lr_warmup_epochs"]
    assert type(warmup).__name__ == "Fixed" and warmup.value == 2
    assert warmup.conditions  # shown only for trials that pick a schedule
    for schedule in SCHEDULES:
        decay = decay_from_hp(trial_hp(tuned, lr_decay=schedule), tuned)
        assert decay is not None and decay.schedule == schedule and decay.warmup_epochs == 2
        assert set(decay.params) == set(TUNE_SPACE[schedule])
    assert decay_from_hp(trial_hp(tuned, lr_decay="none"), tuned) is None


def test_tune_without_a_warmup_tunes_it():
    tuned = parse_lr_decay("tune")
    assert tuned == TunedLRDecay(None)
    hp = keras_tuner.HyperParameters()
    declare_tuned_decay(hp, tuned)
    space = space_of(hp)
    assert {"lr_decay", "lr_warmup_epochs"} <= set(space)
    assert type(space["lr_warmup_epochs"]).__name__ == "Int"
    assert space["lr_decay"].values == ["none", *SCHEDULES]
    decay = decay_from_hp(trial_hp(tuned, lr_decay="exponential", lr_warmup_epochs=3,
                                   lr_decay_decay_rate=0.85), tuned)
    assert decay == LRDecay("exponential", 3, {"decay_rate": 0.85})


def test_needs_single_metric():
    assert needs_single_metric(LRDecay("plateau"))
    assert needs_single_metric(TunedLRDecay())
    assert needs_single_metric(TunedLRDecay(2))
    assert not needs_single_metric(LRDecay("cosine"))
    assert not needs_single_metric(None)


# -- bad input, before any trial ---------------------------------------------------------------------

def test_bad_lr_decay():
    for value in ("linear", 3, {"schedule": "step", "gamma": 2}, {"schedule": "tune"},
                  {"schedule": "exponential", "decay_rate": 1.5}):
        with pytest.raises(ValueError, match="`lr_decay`"):
            parse_lr_decay(value)


BAD_PARAMETERS = [
    ("step", "factor", "0.5"),
    ("exponential", "decay_rate", True),
    ("polynomial", "power", math.nan),
    ("polynomial", "power", math.inf),
    ("cosine", "alpha", None),
    ("plateau", "patience", "3"),
    ("plateau", "patience", 2.5),
    ("plateau", "patience", -1),
    ("plateau", "cooldown", 1.5),
    ("plateau", "cooldown", -1),
    ("plateau", "min_delta", -0.1),
    ("plateau", "min_delta", "0.01"),
    ("step", "step_size", 1.5),
]


def test_bad_parameter_values():
    # Checked at construction (before any trial), in both forms; the
    # message names the argument, the parameter and the bad value.
    for schedule, name, bad in BAD_PARAMETERS:
        for make, args in ((parse_lr_decay, ({"schedule": schedule, name: bad},)),
                           (LRDecay, (schedule, 0, {name: bad}))):
            with pytest.raises(ValueError, match="`lr_decay`") as info:
                make(*args)
            assert repr(name) in str(info.value) and repr(bad) in str(info.value), (name, bad)


def test_whole_parameters_accept_whole_floats():
    assert LRDecay("plateau", params={"patience": 2.0, "cooldown": 1.0}).param("patience") == 2


def test_bad_warmup():
    for bad in (True, 1.0, -1, "2", None):
        with pytest.raises(ValueError, match="`lr_warmup`"):
            parse_lr_decay("cosine", bad)
        for make, arg in ((LRDecay, ("cosine", bad)),
                          (parse_lr_decay, ({"schedule": "cosine", "warmup_epochs": bad},))):
            with pytest.raises(ValueError, match="`warmup_epochs`"):
                make(*arg)
        if bad is not None:  # None: tune the warmup
            with pytest.raises(ValueError, match="`warmup_epochs`"):
                TunedLRDecay(bad)


def test_callback_refuses_what_is_not_an_lr_decay():
    with pytest.raises(ValueError, match="`decay`.*decay_from_hp"):
        LearningRateDecay(TunedLRDecay(), total_epochs=3)
    with pytest.raises(ValueError, match="`mode`"):
        LearningRateDecay(LRDecay("plateau"), total_epochs=3, mode="auto")
