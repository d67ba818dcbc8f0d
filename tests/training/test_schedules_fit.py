"""LearningRateDecay inside real model.fit runs: any optimizer, "plateau"
next to ReduceLROnPlateau, mixed precision, and LearningRateSchedule models."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ktplus.training import LearningRateDecay, LRDecay

E = 5
LR0 = 0.02
S = keras.optimizers.schedules


class RateSeen(keras.callbacks.Callback):
    """Records the rate the optimizer holds at each epoch's first batch
    (and the optimizer's step count then)."""

    def __init__(self):
        super().__init__()
        self.rates = []
        self.steps = []

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            optimizer = self.model.optimizer
            optimizer = getattr(optimizer, "inner_optimizer", optimizer)
            self.rates.append(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
            self.steps.append(int(keras.ops.convert_to_numpy(optimizer.iterations)))


def fit(optimizer, callback, frozen=False, epochs=E):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer, "mse")
    if frozen:  # the loss stays the same every epoch: a plateau
        model.layers[0].trainable = False
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    seen = RateSeen()
    history = model.fit(x, x.sum(axis=1, keepdims=True), epochs=epochs, batch_size=8, verbose=0,
                        callbacks=[callback, seen])
    return model, history.history, seen


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_decay_scales_any_optimizer(optimizer):
    opt = keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": LR0}})
    decay = LRDecay("exponential", params={"decay_rate": 0.5})
    _, history, seen = fit(opt, LearningRateDecay(decay, total_epochs=E))
    expected = [float(S.ExponentialDecay(LR0, 1, 0.5)(e)) for e in range(E)]
    assert seen.rates == pytest.approx(expected, rel=1e-5)
    assert history["learning_rate"] == pytest.approx(expected, rel=1e-5)


def test_plateau_in_fit_matches_reduce_lr_on_plateau():
    params = {"factor": 0.5, "patience": 1, "cooldown": 2}
    ours = LearningRateDecay(LRDecay("plateau", params=params), total_epochs=6, monitor="loss")
    theirs = keras.callbacks.ReduceLROnPlateau("loss", factor=0.5, patience=1, cooldown=2, mode="min",
                                               min_lr=LR0 * 1e-3)
    _, _, ours_seen = fit(keras.optimizers.SGD(LR0), ours, frozen=True, epochs=6)
    keras.utils.set_random_seed(0)
    _, _, theirs_seen = fit(keras.optimizers.SGD(LR0), theirs, frozen=True, epochs=6)
    assert ours_seen.rates == pytest.approx(theirs_seen.rates, rel=1e-5)
    assert ours_seen.rates[-1] < LR0


def test_decay_sets_the_rate_under_mixed_precision(mixed_float16):
    decay = LRDecay("cosine", 1, {"alpha": 0.1})
    model, history, seen = fit(keras.optimizers.SGD(LR0), LearningRateDecay(decay, total_epochs=E))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    keras_cosine = S.CosineDecay(0.0, decay_steps=E - 1, alpha=0.1, warmup_target=LR0, warmup_steps=2)
    expected = [float(keras_cosine(e + 1)) for e in range(E)]
    assert seen.rates == pytest.approx(expected, rel=1e-5)  # the rate the inner optimizer trains with
    assert history["learning_rate"] == pytest.approx(expected, rel=1e-5)


def test_plateau_under_mixed_precision(mixed_float16):
    decay = LRDecay("plateau", params={"patience": 1})
    model, history, seen = fit(keras.optimizers.SGD(LR0), LearningRateDecay(decay, E, monitor="loss"),
                               frozen=True)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert seen.rates[0] == pytest.approx(LR0) and seen.rates[-1] < LR0


@pytest.mark.parametrize("mixed", [False, True])
def test_a_learning_rate_schedule_is_left_alone(mixed, request):
    if mixed:
        request.getfixturevalue("mixed_float16")
    own = S.ExponentialDecay(LR0, decay_steps=2, decay_rate=0.5)
    with pytest.warns(UserWarning, match="LearningRateSchedule"):
        model, history, seen = fit(keras.optimizers.SGD(own), LearningRateDecay(LRDecay("cosine"), E))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == mixed
    # The model's own schedule still sets the rate (at the optimizer's step,
    # which under mixed precision skips the steps with overflowing gradients).
    assert seen.rates == pytest.approx([float(own(step)) for step in seen.steps], rel=1e-5)
    assert seen.rates[-1] < LR0 / 2
    assert "learning_rate" not in history
