"""Nothing of a finished trial stays alive: not the model (ktplus keeps no
reference), and not the training graph TensorFlow's gradient registry would
keep (ktplus releases it). The RSS soak is a benchmark: benchmarks/bench_memory.py."""

from __future__ import annotations

import gc

import numpy as np

import ktplus
from ktplus.training._memory import gradient_registry_snapshot


def test_the_gradient_registry_does_not_grow_with_trials(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    hm = ktplus.DenseHyperModel(input_shape=(3,), num_classes=2, layers=1, units=[2, 4, 8, 16, 32])
    before = gradient_registry_snapshot()
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=5, directory=tmp_path,
                                project_name="m", lr_decay="cosine", early_stopping=2, pruning="median")
    tuner.search(x[:30], y[:30], validation_data=(x[30:], y[30:]), epochs=2, verbose=0)
    gc.collect()
    assert len(tuner.oracle.trials) == 5
    assert len(gradient_registry_snapshot() - before) == 0
