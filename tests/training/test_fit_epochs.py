"""The learning-rate schedule spans the epochs a fit actually trains: a
`HyperModel.fit` that sets its own ``epochs`` (none given to ``search()``)
gets a schedule over those epochs, as Keras hands them to callbacks in
``params["epochs"]``."""

from __future__ import annotations

import math

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus

LR0 = 0.1
OWN_EPOCHS = 5


class RateSeen(keras.callbacks.Callback):
    """The rate the optimizer holds at each epoch's first batch (a class
    list: keras-tuner deep-copies the callbacks it is given)."""

    rates: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            rate = keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            RateSeen.rates.append(float(rate))


class OwnEpochs(keras_tuner.HyperModel):
    """Trains its own number of epochs, whatever ``search()`` was given."""

    def build(self, hp):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(hp.Choice("lr", [LR0])), "mse")
        return model

    def fit(self, hp, model, x, y, **kwargs):
        kwargs.pop("epochs", None)
        return model.fit(x, y, epochs=OWN_EPOCHS, batch_size=8, **kwargs)


@pytest.mark.parametrize("schedule, end", [("cosine", 0.0), ("polynomial", 0.01)])
def test_schedule_spans_the_epochs_the_fit_trains(schedule, end, tmp_path):
    RateSeen.rates = []
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    tuner = ktplus.RandomSearch(OwnEpochs(), objective="val_loss", max_trials=1, lr_decay=schedule,
                                directory=tmp_path, project_name="p", tensorboard=False)
    tuner.search(x, y, validation_data=(x, y), verbose=0, callbacks=[RateSeen()])  # no epochs
    assert len(RateSeen.rates) == OWN_EPOCHS
    decay = ktplus.training.LRDecay(schedule)
    expected = [LR0 * decay.factor(e, total_epochs=OWN_EPOCHS) for e in range(OWN_EPOCHS)]
    assert RateSeen.rates == pytest.approx(expected, rel=1e-5)
    assert all(rate > 0 for rate in RateSeen.rates[1:])
    # The last epoch (0-based E - 1) is one step before the schedule's end value, reached at E.
    last = (OWN_EPOCHS - 1) / OWN_EPOCHS
    shape = 0.5 * (1 + math.cos(math.pi * last)) if schedule == "cosine" else (1 - last) * (1 - end) + end
    assert RateSeen.rates[-1] == pytest.approx(LR0 * shape, rel=1e-5)


def test_learning_rate_decay_reads_the_fit_epochs_without_a_total():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(LR0), "mse")
    callback = ktplus.training.LearningRateDecay(ktplus.training.LRDecay("cosine"), total_epochs=None)
    history = model.fit(x, x.sum(axis=1, keepdims=True), epochs=4, verbose=0, callbacks=[callback])
    expected = [LR0 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert history.history["learning_rate"] == pytest.approx(expected, rel=1e-5)


def test_refit_schedule_spans_the_epochs_the_fit_trains(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    tuner = ktplus.RandomSearch(OwnEpochs(), objective="val_loss", max_trials=1, lr_decay="cosine",
                                directory=tmp_path, project_name="p", tensorboard=False)
    tuner.search(x, y, validation_data=(x, y), verbose=0)  # no epochs: the fit trains its own
    RateSeen.rates = []
    tuner.refit(x, y, epochs=2, callbacks=[RateSeen()])  # the hypermodel's fit trains 5 all the same
    expected = [LR0 * 0.5 * (1 + math.cos(math.pi * e / OWN_EPOCHS)) for e in range(OWN_EPOCHS)]
    assert RateSeen.rates == pytest.approx(expected, rel=1e-5)
