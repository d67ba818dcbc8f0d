"""One worker process of a storage-backed search (`ktplus.OptunaSearch(storage=...)`), for the tests.

Usage: ``python worker.py DIRECTORY STORAGE``. Environment: TRIALS and EPOCHS
(4 and 2 by default), STUDY (the study name, "s" by default), HEARTBEAT
(heartbeat_interval, 1 s by default; the grace period is three of them),
KILL_AT_EPOCH (SIGKILL this process at its n-th epoch end), STOP_AT_EPOCH
(SIGSTOP it there: the test sends SIGCONT), SLOW_EPOCH (seconds to sleep at
each epoch end), PACK (the tuner's ``pack``, "auto" by default) and MARK (a folder: each epoch end creates
``<MARK>/<pid>.<n>``, so the test knows how far the worker got). The last
line printed is ``done <trial ids this worker ran>``.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np


def build_for_tests(hp):
    """A tiny classifier with two tuned choices and one tuned float."""
    import keras

    units = hp.Choice("units", [4, 8, 16])
    lr = hp.Float("lr", 1e-3, 1e-1, sampling="log")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(directory: str, storage: str) -> None:
    import keras

    import ktplus

    kill_at = int(os.environ.get("KILL_AT_EPOCH", "0"))
    stop_at = int(os.environ.get("STOP_AT_EPOCH", "0"))
    slow = float(os.environ.get("SLOW_EPOCH", "0"))
    mark = os.environ.get("MARK")
    seen = {"n": 0}

    class Signals(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen["n"] += 1
            if mark:
                open(os.path.join(mark, f"{os.getpid()}.{seen['n']}"), "w").close()
            if kill_at and seen["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if stop_at and seen["n"] == stop_at:
                os.kill(os.getpid(), signal.SIGSTOP)
            time.sleep(slow)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    heartbeat = int(os.environ.get("HEARTBEAT", "1"))
    tuner = ktplus.OptunaSearch(build_for_tests, objective="val_accuracy",
                                max_trials=int(os.environ.get("TRIALS", "4")),
                                storage=storage, study_name=os.environ.get("STUDY", "s"),
                                heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                                directory=directory, project_name="p", lr_decay="cosine",
                                pack=int(os.environ["PACK"]) if "PACK" in os.environ else "auto",
                                early_stopping=5, pruning=ktplus.MedianPruner(n_startup_trials=1, n_warmup_epochs=1))
    tuner.search(x[:64], y[:64], validation_data=(x[64:], y[64:]),
                 epochs=int(os.environ.get("EPOCHS", "2")), verbose=0, callbacks=[Signals()])
    ran = sorted(t for t in tuner.oracle._optuna_ids)
    print("done " + " ".join(ran), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
