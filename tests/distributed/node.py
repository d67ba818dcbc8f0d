"""One process of a distributed search (chief or worker), for the tests.

Environment: keras-tuner's KERASTUNER_TUNER_ID / _ORACLE_IP / _ORACLE_PORT,
KILL_AT_EPOCH (SIGKILL this process at its n-th epoch end), STOP_AT_EPOCH
(SIGSTOP it there: the test sends SIGCONT), SLOW_EPOCH (seconds to sleep
at each epoch end), TRIALS and EPOCHS (6 each by default) and OVERWRITE=1
(``overwrite=True`` in this process, as keras-tuner's distributed guide
writes it for every process). With GATE=<path>, the process builds its
tuner, creates ``<path>.<tuner id>`` and waits for ``<path>`` to exist
before it searches.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np


def build_for_tests(hp):
    """The cluster's model: two choices, a tiny classifier (module level: the tests rebuild it)."""
    import keras

    lr = hp.Choice("lr", [0.05, 0.0])
    units = hp.Choice("units", [4, 8, 16])
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


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
    if os.environ.get("TUNER") == "optuna":  # Optuna's TPE on the chief
        search = lambda *a, **kw: ktplus.OptunaSearch(*a, sampler="tpe", seed=4, **kw)  # noqa: E731
    else:
        search = ktplus.GridSearch
    tuner = search(build_for_tests, objective="val_accuracy", max_trials=int(os.environ.get("TRIALS", "6")),
                   directory=directory, project_name="d", overwrite=os.environ.get("OVERWRITE") == "1",
                   lr_decay="cosine", early_stopping=10,
                   pruning=ktplus.MedianPruner(n_startup_trials=1, n_warmup_epochs=2),
                   worker_timeout=float(os.environ.get("WORKER_TIMEOUT", "60")))
    gate = os.environ.get("GATE")
    if gate:
        open(f"{gate}.{os.environ['KERASTUNER_TUNER_ID']}", "w").close()
        while not os.path.exists(gate):
            time.sleep(0.05)
    tuner.search(x[:64], y[:64], validation_data=(x[64:], y[64:]),
                 epochs=int(os.environ.get("EPOCHS", "6")), verbose=0,
                 callbacks=[Killer()])
    print(f"{os.environ['KERASTUNER_TUNER_ID']} done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
