"""keras-tuner hyperparameters as Optuna distributions, and enqueued values' checks."""

from __future__ import annotations

import keras_tuner
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from ktplus.oracles import distribution
from ktplus.oracles._space import active_params, check_values, contains, with_defaults


def _hp(register):
    hps = keras_tuner.HyperParameters()
    register(hps)
    return hps.space[-1]


@pytest.mark.parametrize("register, expected", [
    (lambda h: h.Int("a", 1, 9), IntDistribution(1, 9, step=1)),
    (lambda h: h.Int("a", 2, 10, step=2), IntDistribution(2, 10, step=2)),
    (lambda h: h.Int("a", 1, 64, sampling="log"), IntDistribution(1, 64, log=True)),
    (lambda h: h.Int("a", 8, 100, step=2, sampling="log"), CategoricalDistribution((8, 16, 32, 64))),
    (lambda h: h.Int("a", 1, 9, sampling="reverse_log"), IntDistribution(1, 9)),
    (lambda h: h.Float("a", 0.0, 1.0), FloatDistribution(0.0, 1.0)),
    (lambda h: h.Float("a", 0.0, 1.0, step=0.3), FloatDistribution(0.0, 0.9, step=0.3)),
    (lambda h: h.Float("a", 1e-4, 1e-1, sampling="log"), FloatDistribution(1e-4, 1e-1, log=True)),
    (lambda h: h.Float("a", 0.1, 1.0, step=10.0, sampling="log"), CategoricalDistribution((0.1, 1.0))),
    (lambda h: h.Choice("a", ["relu", "tanh"]), CategoricalDistribution(("relu", "tanh"))),
    (lambda h: h.Choice("a", [16, 32, 64]), CategoricalDistribution((16, 32, 64))),
    (lambda h: h.Boolean("a"), CategoricalDistribution((False, True))),
    (lambda h: h.Fixed("a", "adam"), CategoricalDistribution(("adam",))),
])
def test_every_hyperparameter_type_has_its_optuna_distribution(register, expected):
    got = distribution(_hp(register))
    assert type(got) is type(expected)
    if isinstance(expected, CategoricalDistribution):
        assert tuple(got.choices) == pytest.approx(tuple(expected.choices)) if all(
            isinstance(c, float) for c in expected.choices) else tuple(got.choices) == tuple(expected.choices)
    else:
        assert (got.low, got.high, got.log, got.step) == pytest.approx(
            (expected.low, expected.high, expected.log, expected.step))


@settings(max_examples=60, deadline=None)
@given(low=st.integers(-50, 50), span=st.integers(0, 60), step=st.integers(1, 7), value=st.integers(-80, 120))
def test_an_int_value_is_in_the_domain_exactly_when_keras_tuner_could_draw_it(low, span, step, value):
    hp = _hp(lambda h: h.Int("a", low, low + span, step=step))
    could_draw = low <= value <= low + span and (value - low) % step == 0
    assert contains(distribution(hp), value) == could_draw


def test_contains_tells_bools_from_numbers():
    assert not contains(CategoricalDistribution((0, 1)), True)
    assert not contains(CategoricalDistribution((True, False)), 1)
    assert contains(CategoricalDistribution((16, 32)), 32.0)
    assert not contains(IntDistribution(0, 5), True)


def _conditional_space():
    hps = keras_tuner.HyperParameters()
    hps.Choice("kind", ["a", "b"])
    with hps.conditional_scope("kind", ["a"]):
        hps.Float("lr", 1e-4, 1e-1, sampling="log")
    hps.Int("units", 8, 64, step=8)
    return hps


def test_only_active_values_reach_the_sampler():
    space = _conditional_space()
    params, dists = active_params(space, {"kind": "b", "lr": 0.01, "units": 16})
    assert params == {"kind": "b", "units": 16} and set(dists) == {"kind", "units"}
    params, _ = active_params(space, {"kind": "a", "lr": 0.01, "units": 17})  # 17 is off the grid
    assert params == {"kind": "a", "lr": 0.01}


def test_a_partial_dict_takes_the_defaults_of_the_active_rest():
    space = _conditional_space()
    assert with_defaults(space, {"kind": "b"}) == {"kind": "b", "units": 8}
    assert with_defaults(space, {"units": 32}) == {"kind": "a", "lr": 1e-4, "units": 32}


@pytest.mark.parametrize("values, words", [
    ({"unknown": 1}, "'unknown' is not one of them"),
    ({"units": 12}, "'units' to be an integer in [8, 64] on the grid 8 + k * 8; got 12"),
    ({"kind": "c"}, "'kind' to be one of ['a', 'b']; got 'c'"),
    ({"lr": 1.0}, "'lr' to be a number in [0.0001, 0.1]; got 1.0"),
    ({"tuner/epochs": 2}, "is not one of them"),
    (["kind"], "a dict of hyperparameter values by name"),
])
def test_bad_enqueued_values_are_clear_errors(values, words):
    with pytest.raises(ValueError, match="`values`") as info:
        check_values(_conditional_space(), values)
    assert words in str(info.value)
