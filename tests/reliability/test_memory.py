"""Nothing of a finished trial stays alive: not the model (ktplus keeps no
reference), and not the training graph TensorFlow's gradient registry would
keep (ktplus releases Keras' entries after every trial, and the next trial
still trains). The RSS soak is a benchmark: benchmarks/bench_memory.py; the
release rule itself is tested in tests/training/test_memory_release.py."""

from __future__ import annotations

import gc
import math

import keras
import numpy as np
import pytest

import ktplus
from ktplus.training._memory import gradient_registry_snapshot, release_trial_gradients

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the gradient registry is TensorFlow's")


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def search(tmp_path, name, trials, **options):
    x, y = data()
    hm = ktplus.DenseHyperModel(input_shape=(3,), num_classes=2, layers=1, units=[2, 4, 8, 16, 32])
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=trials, directory=tmp_path,
                                project_name=name, lr_decay="cosine", early_stopping=2, pruning="median",
                                tensorboard=False, **options)
    tuner.search(x[:40], y[:40], validation_data=(x[40:], y[40:]), epochs=3, verbose=0)
    gc.collect()
    return tuner


def test_the_gradient_registry_does_not_grow_with_trials_and_every_trial_trains(tmp_path):
    before = gradient_registry_snapshot()
    tuner = search(tmp_path, "released", 3)
    assert gradient_registry_snapshot() - before == frozenset()
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
    assert [str(t.status) for t in trials] == ["COMPLETED"] * 3, [t.message for t in trials]
    for trial in trials:  # trials 1 and 2 start after a release: each trained, with finite losses
        losses = [float(np.mean(o.value)) for o in trial.metrics.get_history("loss")]
        assert losses and all(math.isfinite(v) for v in losses), (trial.trial_id, losses)
        assert math.isfinite(trial.score)
    model = tuner.get_best_models(1)[0]  # built and loaded after the last release
    x, y = data()
    assert math.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"][0])


def test_without_the_release_the_registry_grows_with_every_trial(tmp_path):
    before = gradient_registry_snapshot()
    try:
        search(tmp_path, "kept", 2, fast_path=["data", "checkpoint"])
        assert len(gradient_registry_snapshot() - before) >= 2  # one or more per trial: the leak released above
    finally:
        release_trial_gradients(before)
