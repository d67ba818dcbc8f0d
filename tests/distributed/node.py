"""One process of a distributed search (chief or worker), for the tests.

Environment: keras-tuner's KERASTUNER_TUNER_ID / _ORACLE_IP / _ORACLE_PORT,
KILL_AT_EPOCH (SIGKILL this process at its n-th epoch end, each member's
epoch end counting in a fused model), STOP_AT_EPOCH (SIGSTOP it there: the
test sends SIGCONT), SLOW_EPOCH (seconds to sleep at each epoch end),
TRIALS and EPOCHS (6 each by default), OVERWRITE=1 (``overwrite=True`` in
this process, as keras-tuner's distributed guide writes it for every
process) and PACK (the tuner's ``pack``: "auto" by
default, or K). With GATE=<path>, the process builds its tuner, creates
``<path>.<tuner id>`` and waits for ``<path>`` to exist before it searches.
A process that finishes prints ``packed <json>``: its tuner's
``packed_trials`` (trial id -> members of the fused model it trained in).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time
from typing import Any

import numpy as np


def hypermodel():
    """The cluster's model: a tiny classifier, ktplus's own (its trials train fused), with two
    choices: three widths (any two fuse) and a learning rate that learns or does not."""
    import ktplus

    return ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=[8, 12, 16],
                                  learning_rate=[0.05, 1e-6], dropout=0.0)


def main(directory: str) -> None:
    import keras

    import ktplus

    kill_at = int(os.environ.get("KILL_AT_EPOCH", "0"))
    stop_at = int(os.environ.get("STOP_AT_EPOCH", "0"))
    slow = float(os.environ.get("SLOW_EPOCH", "0"))
    epochs_seen = {"n": 0}

    class Killer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epochs_seen["n"] += 1
            if kill_at and epochs_seen["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if stop_at and epochs_seen["n"] == stop_at:
                os.kill(os.getpid(), signal.SIGSTOP)
            time.sleep(slow)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    search: Any
    if os.environ.get("TUNER") == "optuna":  # Optuna's TPE on the chief
        search = functools.partial(ktplus.OptunaSearch, sampler="tpe", seed=4)
    else:
        # keras-tuner's random search: it proposes a pack's trials at once (its grid search
        # proposes one at a time from the trials that ended). Seed 2 draws the six choices
        # with two that do not learn last (the later trials are pruned against the first four).
        search = functools.partial(ktplus.RandomSearch, seed=2)
    pack = os.environ.get("PACK", "auto")
    tuner = search(hypermodel(), objective="val_accuracy", max_trials=int(os.environ.get("TRIALS", "6")),
                   directory=directory, project_name="d", overwrite=os.environ.get("OVERWRITE") == "1",
                   lr_decay="cosine", early_stopping=10,
                   pruning=ktplus.MedianPruner(n_startup_trials=1, n_warmup_epochs=2),
                   worker_timeout=float(os.environ.get("WORKER_TIMEOUT", "60")),
                   pack=pack if pack == "auto" else int(pack))
    gate = os.environ.get("GATE")
    if gate:
        open(f"{gate}.{os.environ['KERASTUNER_TUNER_ID']}", "w").close()
        while not os.path.exists(gate):
            time.sleep(0.05)
    tuner.search(x[:64], y[:64], validation_data=(x[64:], y[64:]),
                 epochs=int(os.environ.get("EPOCHS", "6")), verbose=0,
                 callbacks=[Killer()])
    print(f"packed {json.dumps(tuner.packed_trials)}", flush=True)
    print(f"{os.environ['KERASTUNER_TUNER_ID']} done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
