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


def data():
    """96 rows of 4 features, two classes: (x_train, y_train), (x_val, y_val)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return (x[:64], y[:64]), (x[64:], y[64:])


def make_tuner(directory: str, storage: str, trials: int = 4, heartbeat: int = 1, study: str = "s",
               pack: int | str = "auto"):
    """The search every worker of a test runs (the tests' own process too, when it joins)."""
    import ktplus

    return ktplus.OptunaSearch(build_for_tests, objective="val_accuracy", max_trials=trials,
                               storage=storage, study_name=study,
                               heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                               directory=directory, project_name="p", lr_decay="cosine", pack=pack,
                               early_stopping=5, pruning=ktplus.MedianPruner(n_startup_trials=1, n_warmup_epochs=1))


def main(directory: str, storage: str) -> None:
    import keras

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

    tuner = make_tuner(directory, storage, trials=int(os.environ.get("TRIALS", "4")),
                       heartbeat=int(os.environ.get("HEARTBEAT", "1")), study=os.environ.get("STUDY", "s"),
                       pack=int(os.environ["PACK"]) if "PACK" in os.environ else "auto")
    (x, y), validation = data()
    tuner.search(x, y, validation_data=validation, epochs=int(os.environ.get("EPOCHS", "2")), verbose=0,
                 callbacks=[Signals()])
    ran = sorted(t for t in tuner.oracle._optuna_ids)
    print("done " + " ".join(ran), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
