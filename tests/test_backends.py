"""Every feature on Keras' other backends (JAX, PyTorch; TensorFlow is the
backend of the rest of the suite): one subprocess per backend (the backend
is chosen at import) runs the tuners with their defaults (the fast path
included), lr decay, early stopping, pruning, cv, OptunaSearch, data
preparation, TensorBoard, the held-out evaluation, refit, a saved model and
the HTML report, and prints what it saw. ``benchmarks/bench_backends.py``
runs the same script on all three backends for the README's table."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, os, sys, time
import keras, keras_tuner, numpy as np, ktplus
directory = sys.argv[1]
out = {"backend": keras.backend.backend()}
rng = np.random.default_rng(0)
x = rng.normal(size=(96, 4)) * 3.0 + 10.0  # float64, as numpy gives it
y = ((x[:, 0] - x[:, 1]) > 0).astype("int64")
xt, yt, xv, yv = x[:64], y[:64], x[64:], y[64:]
hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=[4, 8], dropout=0.0,
                            normalization="standardize", class_weight=[None, "balanced"])

def run(name, make, fit):
    start = time.perf_counter()
    try:
        tuner = make()
        fit(tuner)
        trials = list(tuner.oracle.trials.values())
        out[name] = {"ok": all(str(t.status) == "COMPLETED" for t in trials) and bool(trials),
                     "trials": len(trials), "statuses": sorted({str(t.status) for t in trials}),
                     "seconds": round(time.perf_counter() - start, 1)}
        return tuner
    except Exception as e:
        out[name] = {"ok": False, "error": repr(e)[:500]}
        return None

def squared_difference(y_true, y_pred):  # keras-io's custom metric: plain y_true - y_pred
    seen["y_true"].add(keras.backend.standardize_dtype(y_true.dtype))
    return keras.ops.mean(keras.ops.square(y_true - y_pred))

class Probe(keras.callbacks.Callback):  # epoch-level only: the fast path stays on
    def on_epoch_end(self, epoch, logs=None):
        seen["steps_per_execution"].add(int(self.model.steps_per_execution))

def build(hp):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Int("units", 2, 4)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), loss="mse", metrics=[squared_difference])
    return model

seen = {"steps_per_execution": set(), "y_true": set()}
d = lambda name: dict(directory=directory, project_name=name)
target = x.sum(axis=1, keepdims=True)
custom = run("custom_metric_defaults",
             lambda: ktplus.RandomSearch(build, objective=keras_tuner.Objective("val_squared_difference", "min"),
                                         max_trials=2, **d("custom")),
             lambda t: t.search(xt, target[:64], validation_data=(xv, target[64:]), epochs=2, verbose=0,
                                callbacks=[Probe()]))
if custom is not None:
    best = custom.oracle.get_best_trials(1)[0]
    again = custom.get_best_models(1)[0].evaluate(xv, target[64:], verbose=0, return_dict=True)
    out["custom_metric_defaults"].update(
        steps_per_execution=sorted(seen["steps_per_execution"]), y_true=sorted(seen["y_true"]),
        reproduced=bool(np.isclose(again["squared_difference"], best.score, rtol=1e-4)))
tuner = run("defaults", lambda: ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=2, **d("defaults")),
            lambda t: t.search(xt, yt, validation_data=(xv, yv), epochs=3, verbose=0))
run("options", lambda: ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=3, lr_decay="cosine",
                                           early_stopping=1, pruning="median", seed=1, **d("options")),
    lambda t: t.search(xt, yt, validation_split=0.25, epochs=3, verbose=0))
run("hyperband", lambda: ktplus.Hyperband(hm, objective="val_accuracy", max_epochs=3, factor=3,
                                          hyperband_iterations=1, **d("hyperband")),
    lambda t: t.search(xt, yt, validation_data=(xv, yv), verbose=0))
run("optuna_cv", lambda: ktplus.OptunaSearch(hm, objective="val_accuracy", max_trials=2, cv=2, seed=0,
                                             pruning="median", **d("optuna_cv")),
    lambda t: t.search(x, y, epochs=2, verbose=0))
if tuner is not None:
    try:
        scores = tuner.evaluate(xv, yv)
        model = tuner.refit(x, y)
        path = os.path.join(directory, "refit.keras")
        model.save(path)
        again = keras.models.load_model(path)
        same = float(np.max(np.abs(np.asarray(again.predict(xv, verbose=0)) -
                                    np.asarray(model.predict(xv, verbose=0)))))
        out["evaluate_refit_save"] = {"ok": bool(scores.iloc[0]["accuracy"] >= 0) and same < 1e-5,
                                      "max_abs_diff": same}
    except Exception as e:
        out["evaluate_refit_save"] = {"ok": False, "error": repr(e)[:500]}
    try:
        tb = os.path.join(tuner.project_dir, "tensorboard")
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
        runs = sorted(p for p in os.listdir(tb) if p.startswith("trial_"))
        tags = {}
        for run_name in runs:
            events = [os.path.join(tb, run_name, f) for f in os.listdir(os.path.join(tb, run_name))
                      if f.startswith("events.out.tfevents")]
            tags[run_name] = sorted({v.tag for f in events for e in EventFileLoader(f).Load()
                                     for v in e.summary.value})
        wanted = {"loss", "val_accuracy", "learning_rate", "epoch_seconds", "score", "model_summary",
                  "_hparams_/session_start_info", "_hparams_/session_end_info"}
        top = [os.path.join(tb, f) for f in os.listdir(tb) if f.startswith("events.out.tfevents")]
        experiment = any(v.tag == "_hparams_/experiment" for f in top for e in EventFileLoader(f).Load()
                         for v in e.summary.value)
        page = ktplus.report(tuner.project_dir, os.path.join(directory, "report.html"))
        out["tensorboard_report"] = {"ok": len(runs) == 2 and os.path.getsize(page) > 10000 and experiment
                                     and all(wanted <= set(t) for t in tags.values()),
                                     "runs": runs, "missing": sorted(wanted - set().union(*tags.values()))}
    except Exception as e:
        out["tensorboard_report"] = {"ok": False, "error": repr(e)[:500]}
print("RESULT " + json.dumps(out))
"""

FEATURES = ("custom_metric_defaults", "defaults", "options", "hyperband", "optuna_cv", "evaluate_refit_save", "tensorboard_report")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_feature_runs_on_each_backend(backend, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    seen = json.loads(line.removeprefix("RESULT "))
    print(json.dumps(seen, indent=1))
    assert seen["backend"] == backend
    failed = {name: seen.get(name) for name in FEATURES if not (seen.get(name) or {}).get("ok")}
    assert not failed, failed
    custom = seen["custom_metric_defaults"]
    # PyTorch's trainer refuses steps_per_execution > 1: that part steps aside there; the others
    # run it (64 samples: 2 batches of Keras' default 32 per epoch).
    assert custom["steps_per_execution"] == ([1] if backend == "torch" else [2])
    assert custom["y_true"] == ["float32"]  # float64 arrays cast to floatx, as Keras' adapter does
    assert custom["reproduced"]  # the best epoch's weights were kept
