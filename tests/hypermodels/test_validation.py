"""Bad arguments fail at construction with a ValueError that names the
argument, shows the bad value and says what is allowed."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ktplus
from ktplus.hypermodels import _knobs

IMG = (8, 8, 1)

BAD = [
    # (class, kwargs, argument named in the message)
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, units=-5), "units"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, units=0), "units"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, units=(64, 32)), "units"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, units=[]), "units"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, units=()), "units"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, units=(1, 2, 3)), "units"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, units=32.5), "units"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, units="big"), "units"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, layers=0), "layers"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, layers=True), "layers"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, dropout=1.0), "dropout"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, dropout=1.5), "dropout"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, dropout=-0.1), "dropout"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, dropout=(0.5, 0.1)), "dropout"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, dropout=(0.0, 1.0)), "dropout"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, dropout=float("nan")), "dropout"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, regularizer="l3"), "regularizer"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, regularizer=["l2", "x"]), "regularizer"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, regularizer=[]), "regularizer"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, regularizer_strength=0.0),
     "regularizer_strength"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, optimizer="adagrad"), "optimizer"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, optimizer=["adam", 3]), "optimizer"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, learning_rate=0), "learning_rate"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, learning_rate=(1e-2, 1e-4)),
     "learning_rate"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, batch_size=0), "batch_size"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, activation="wiggle"), "activation"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, batch_norm="yes"), "batch_norm"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=1), "num_classes"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=0), "num_classes"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,)), "num_classes"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=2.5), "num_classes"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, task="ranking"), "task"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, task="regression"), "num_classes"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), task="regression", num_outputs=0), "num_outputs"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, output_activation="sigmoid"),
     "output_activation"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, metrics="accuracy"), "metrics"),
    (ktplus.DenseHyperModel, dict(input_shape=(4,), num_classes=3, metrics=["no_such_metric"]), "metrics"),
    (ktplus.DenseHyperModel, dict(input_shape=(), num_classes=3), "input_shape"),
    (ktplus.DenseHyperModel, dict(input_shape=(0,), num_classes=3), "input_shape"),
    (ktplus.DenseHyperModel, dict(input_shape=(None, 3), num_classes=3), "input_shape"),
    (ktplus.DenseHyperModel, dict(input_shape=64, num_classes=3), "input_shape"),
    (ktplus.ConvHyperModel, dict(input_shape=(64,), num_classes=3), "input_shape"),
    (ktplus.ConvHyperModel, dict(input_shape=(2, 2, 2, 2, 2), num_classes=3), "input_shape"),
    (ktplus.ConvHyperModel, dict(input_shape=(4, 4, 4, 1), num_classes=3, separable=True), "separable"),
    (ktplus.ConvHyperModel, dict(input_shape=IMG, num_classes=3, pooling="median"), "pooling"),
    (ktplus.ConvHyperModel, dict(input_shape=IMG, num_classes=3, reduction_type="mean"), "reduction_type"),
    (ktplus.ConvHyperModel, dict(input_shape=IMG, num_classes=3, filters=0), "filters"),
    (ktplus.ConvHyperModel, dict(input_shape=IMG, num_classes=3, kernel_size=0), "kernel_size"),
    (ktplus.ConvHyperModel, dict(input_shape=IMG, num_classes=3, conv_blocks=(3, 1)), "conv_blocks"),
    (ktplus.ConvHyperModel, dict(input_shape=IMG, num_classes=3, dense_units=-1), "dense_units"),
    (ktplus.ResidualHyperModel, dict(input_shape=(4, 4, 4, 1), num_classes=3), "input_shape"),
    (ktplus.ResidualHyperModel, dict(input_shape=(16,), num_classes=3), "input_shape"),
    (ktplus.ResidualHyperModel, dict(input_shape=IMG, num_classes=3, block_type="dense"), "block_type"),
    (ktplus.ResidualHyperModel, dict(input_shape=IMG, num_classes=3, preactivation="no"), "preactivation"),
    (ktplus.ResidualHyperModel, dict(input_shape=IMG, num_classes=3, stages=0), "stages"),
    (ktplus.ResidualHyperModel, dict(input_shape=IMG, num_classes=3, blocks_per_stage=[]), "blocks_per_stage"),
    (ktplus.AutoHyperModel, dict(input_shape=(16,), num_classes=3, families=["conv"]), "families"),
    (ktplus.AutoHyperModel, dict(input_shape=IMG, num_classes=3, families=["transformer"]), "families"),
    (ktplus.AutoHyperModel, dict(input_shape=IMG, num_classes=3, families=[]), "families"),
    (ktplus.AutoHyperModel, dict(input_shape=IMG, num_classes=3, families="conv"), "families"),
    (ktplus.AutoHyperModel, dict(input_shape=IMG, num_classes=3, families=["conv", "conv"]), "families"),
    (ktplus.AutoHyperModel, dict(input_shape=(4, 4, 4, 1), num_classes=3, families=["residual"]), "families"),
    (ktplus.AutoHyperModel, dict(input_shape=IMG, num_classes=3, dropout=2.0), "dropout"),
]


@pytest.mark.parametrize(("cls", "kwargs", "arg"), BAD,
                         ids=[f"{c.__name__}-{a}-{i}" for i, (c, _, a) in enumerate(BAD)])
def test_bad_argument_raises_a_clear_value_error(cls, kwargs, arg):
    with pytest.raises(ValueError) as info:
        cls(**kwargs)
    message = str(info.value)
    assert f"`{arg}`" in message, message
    assert "expected" in message, message
    assert f"Received: {arg}=" in message, message


def test_member_with_another_input_shape_is_rejected():
    other = ktplus.ConvHyperModel(input_shape=(4, 4, 1), num_classes=3)
    with pytest.raises(ValueError, match="families"):
        ktplus.AutoHyperModel(input_shape=IMG, num_classes=3, families=[other])


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=200, deadline=None)
@given(lo=finite, hi=finite)
def test_dropout_range_accepted_iff_valid(lo, hi):
    valid = 0 <= lo <= hi < 1
    if valid:
        knob = _knobs.float_knob("dropout", (lo, hi), low=0.0, high=1.0)
        assert knob.is_fixed or knob.bounds == (lo, hi)
    else:
        with pytest.raises(ValueError, match=re.escape("Received: dropout=")):
            _knobs.float_knob("dropout", (lo, hi), low=0.0, high=1.0)


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.integers(-5, 600), st.tuples(st.integers(-5, 600), st.integers(-5, 600)),
                       st.lists(st.integers(-5, 600), max_size=4)))
def test_units_accepted_iff_valid(value):
    if isinstance(value, int):
        valid = value >= 1
    elif isinstance(value, tuple):
        valid = 1 <= value[0] <= value[1]
    else:
        valid = bool(value) and min(value) >= 1
    if valid:
        knob = _knobs.int_knob("units", value, minimum=1, log=True)
        assert set(knob.candidates) <= set(value if not isinstance(value, int) else [value])
    else:
        with pytest.raises(ValueError, match="`units`"):
            _knobs.int_knob("units", value, minimum=1, log=True)


@settings(max_examples=50, deadline=None)
@given(choice=st.lists(st.sampled_from(["l1", "l2", "l1_l2", None, "L2"]), min_size=1, max_size=4))
def test_regularizer_lists_normalize(choice):
    knob = _knobs.choice_knob("regularizer", choice, ("l1", "l2", "l1_l2"), allow_none=True)
    expected = {("none" if c is None else c.lower()) for c in choice}
    assert set(knob.candidates) == expected
