"""A tuner with its defaults (the whole fast path, TensorBoard) runs on
Keras' PyTorch and JAX backends, each in a subprocess (the backend is chosen
at import): a fast-path part the backend cannot run steps aside there
(steps_per_execution on PyTorch), the others keep working, and numpy
float64 data reaches the model as Keras' own array adapter gives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import json, pathlib, sys, keras, keras_tuner, numpy as np, ktplus

seen = {"steps_per_execution": set(), "y_true": set()}

def squared_difference(y_true, y_pred):  # keras-io's custom metric: plain y_true - y_pred
    seen["y_true"].add(keras.backend.standardize_dtype(y_true.dtype))
    return keras.ops.mean(keras.ops.square(y_true - y_pred))

class Probe(keras.callbacks.Callback):  # epoch-level only: the fast path stays on
    def on_epoch_end(self, epoch, logs=None):
        seen["steps_per_execution"].add(int(self.model.steps_per_execution))

def build(hp):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(hp.Int("units", 2, 4)),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), loss="mse", metrics=[squared_difference])
    return model

rng = np.random.default_rng(0)
x = rng.normal(size=(90, 3))  # float64
y = x.sum(axis=1, keepdims=True)
tuner = ktplus.RandomSearch(build, objective=keras_tuner.Objective("val_squared_difference", "min"),
                            max_trials=2, directory=sys.argv[1], project_name="defaults")
tuner.search(x[:70], y[:70], validation_data=(x[70:], y[70:]), epochs=2, verbose=0, callbacks=[Probe()])
best = tuner.oracle.get_best_trials(1)[0]
model = tuner.get_best_models(1)[0]
print(json.dumps({
    "backend": keras.backend.backend(),
    "statuses": sorted(t.status for t in tuner.oracle.trials.values()),
    "steps_per_execution": sorted(seen["steps_per_execution"]),
    "y_true": sorted(seen["y_true"]),
    "score": best.score,
    "reproduced": model.evaluate(x[70:], y[70:], verbose=0, return_dict=True)["squared_difference"],
    "tensorboard_runs": sorted(p.name for p in pathlib.Path(tuner.project_dir, "tensorboard").iterdir()),
}))
"""


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_tuner_with_its_defaults_runs_on_the_backend(backend, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["backend"] == backend
    assert got["statuses"] == ["COMPLETED", "COMPLETED"], result.stderr[-3000:]
    # PyTorch's trainer refuses steps_per_execution > 1: that part steps aside there; JAX runs it
    # (70 samples: 3 batches of Keras' default 32 per epoch).
    assert got["steps_per_execution"] == ([1] if backend == "torch" else [3])
    assert got["y_true"] == ["float32"]  # Keras' array adapter casts float64 to floatx
    assert got["reproduced"] == pytest.approx(got["score"], rel=1e-4)  # the best epoch's weights were kept
    assert {"search_overview", "trial_0", "trial_1"} <= set(got["tensorboard_runs"])
