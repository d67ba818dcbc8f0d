"""Logging does not depend on the TensorFlow backend: a search on Keras'
JAX backend (in a subprocess: the backend is chosen at import) writes the
same runs, scalars and HParams sessions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys, keras, numpy as np, ktplus
assert keras.backend.backend() == "jax", keras.backend.backend()
rng = np.random.default_rng(0)
x = rng.normal(size=(48, 4)).astype("float32")
y = (x[:, 0] > 0).astype("int64")
hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=[4, 8])
tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=2, directory=sys.argv[1],
                            project_name="jax", lr_decay="cosine", early_stopping=2, pruning="median")
tuner.search(x[:32], y[:32], validation_data=(x[32:], y[32:]), epochs=3, verbose=0)
print("trials", len(tuner.oracle.trials))
"""


def _tags_and_sessions(run_dir: Path) -> tuple[set[str], int]:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    tags, sessions = set(), 0
    for f in run_dir.glob("events.out.tfevents*"):
        for event in EventFileLoader(str(f)).Load():
            for value in event.summary.value:
                tags.add(value.tag)
                sessions += value.tag == "_hparams_/session_start_info"
    return tags, sessions


def test_logging_on_the_jax_backend(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True,
                            text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trials 2" in result.stdout
    tb = tmp_path / "jax" / "tensorboard"
    runs = sorted(p.name for p in tb.iterdir() if p.is_dir())
    assert runs == ["search_overview", "trial_0", "trial_1"]
    for run in ("trial_0", "trial_1"):
        tags, sessions = _tags_and_sessions(tb / run)
        assert sessions == 1
        assert {"loss", "val_accuracy", "learning_rate", "epoch_seconds", "score", "model_summary",
                "_hparams_/session_end_info"} <= tags
    tags, _ = _tags_and_sessions(tb)
    assert "_hparams_/experiment" in tags
