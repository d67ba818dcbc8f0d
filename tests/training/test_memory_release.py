"""Releasing a trial's gradient-registry entries: Keras' own entries go
(and the registry returns to its size before the fit), a user's
``tf.custom_gradient`` inside a ``tf.function`` stays and keeps working in
later trials, and models still train after a release."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import ktplus
from ktplus.training._memory import (
    _registry,
    gradient_registry_snapshot,
    is_keras_training_entry,
    release_trial_gradients,
)

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the gradient registry is TensorFlow's")


@tf.custom_gradient
def _clipped_identity(x):
    def grad(dy):
        return tf.clip_by_value(dy, -0.1, 0.1)

    return tf.identity(x), grad


@tf.function
def user_penalty(values):
    """A user's module-level tf.function around a custom-gradient op: traced
    once per input signature and reused by every later model. Its gradient
    is built the first time a call of it is differentiated, from the
    registry entry its trace registered."""
    return tf.reduce_sum(tf.square(_clipped_identity(values)))


class PenalizedModel(keras.Model):
    """A small classifier whose custom train_step always logs
    `user_penalty` of a few outputs and adds it to the loss when
    ``penalty > 0``: a model with ``penalty=0`` traces the function without
    differentiating it, a later one with ``penalty > 0`` differentiates that
    same trace."""

    def __init__(self, units: int = 4, penalty: float = 0.0) -> None:
        super().__init__()
        self.penalty = penalty
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.out = keras.layers.Dense(2, activation="softmax")
        self.penalty_tracker = keras.metrics.Mean(name="penalty")

    def call(self, x):
        return self.out(self.hidden(x))

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            few = tf.reshape(y_pred, [-1])[:4]  # the same signature in every model: one trace
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
            if self.penalty:
                loss = loss + self.penalty * user_penalty(few)
        self.penalty_tracker.update_state(user_penalty(tf.stop_gradient(few)))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self.compute_metrics(x, y, y_pred) | {"penalty": self.penalty_tracker.result()}


def build_penalized(hp):
    model = PenalizedModel(hp.Choice("units", [2, 4, 8]), hp.Choice("penalty", [0.0, 0.01]))
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


#: A seed whose first trial samples penalty=0 and a later one penalty>0
#: (asserted by the test).
SEED = 0


def tiny(rng, n=48):
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def plain_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_users_custom_gradient_function_survives_the_release_between_trials(tmp_path, rng):
    x, y = tiny(rng)
    tuner = ktplus.RandomSearch(build_penalized, objective="val_accuracy", max_trials=3, seed=SEED,
                                directory=tmp_path, project_name="custom_gradient", tensorboard=False)
    assert "release_gradients" in tuner.fast_path
    tuner.search(x[:32], y[:32], validation_data=(x[32:], y[32:]), epochs=2, verbose=0)
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
    penalties = [t.hyperparameters.get("penalty") for t in trials]
    # the case: trial 0 traces user_penalty without differentiating it (its
    # entry is registered during trial 0), a later trial differentiates that
    # trace, looking the entry up; with every new entry released after each
    # trial (the former rule), that later trial fails with a LookupError
    assert penalties[0] == 0.0 and max(penalties[1:]) > 0, penalties
    assert [str(t.status) for t in trials] == ["COMPLETED"] * 3, [(t.status, t.message) for t in trials]


def test_keras_entries_are_released_and_the_registry_returns_to_its_size(rng):
    x, y = tiny(rng)
    registry = _registry()
    size = len(registry)
    before = gradient_registry_snapshot()
    plain_model().fit(x, y, epochs=2, verbose=0)
    added = gradient_registry_snapshot() - before
    assert added and all(is_keras_training_entry(registry[k]) for k in added)
    assert release_trial_gradients(before) == len(added) > 0
    assert len(registry) == size and gradient_registry_snapshot() == before


def test_only_keras_entries_go_when_a_users_entries_were_added_too(rng):
    x, y = tiny(rng)
    before = gradient_registry_snapshot()
    model = PenalizedModel()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    # a user's function traced in a later fit of the same process
    extra = tf.function(lambda w: _clipped_identity(w) * 2.0)
    extra(tf.ones([5]))
    added = gradient_registry_snapshot() - before
    keras_entries = {k for k in added if is_keras_training_entry(_registry()[k])}
    assert keras_entries and keras_entries != added
    assert release_trial_gradients(before) == len(keras_entries)
    assert gradient_registry_snapshot() - before == added - keras_entries
    with tf.GradientTape() as tape:  # the user's function still differentiates
        w = tf.Variable(tf.ones([5]) * 3.0)
        value = extra(w)
    assert np.allclose(tape.gradient(value, w).numpy(), 0.1)  # its gradient: clip(2, -0.1, 0.1)


def test_a_new_model_trains_after_a_release(rng):
    x, y = tiny(rng, 64)
    before = gradient_registry_snapshot()
    plain_model().fit(x, y, epochs=1, verbose=0)
    assert release_trial_gradients(before) > 0
    keras.backend.clear_session()
    model = plain_model()  # traces anew: its entries are registered afresh
    weights = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=3, verbose=0).history
    assert all(np.isfinite(history["loss"]))
    assert any(not np.allclose(a, b) for a, b in zip(weights, model.get_weights()))  # gradients were applied
    assert release_trial_gradients(before) > 0  # and its own entries go as well
    assert gradient_registry_snapshot() == before
