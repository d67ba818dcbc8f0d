"""A search run in a subprocess by the kill-and-resume tests.

Environment: KILL_MODE (none, epoch, checkpoint, json, created) and KILL_AT
(the how-many-th event to die at, with SIGKILL, in this process). Before
dying it prints the trial it was in ("killed in trial <id>").
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np

MODE = os.environ.get("KILL_MODE", "none")
AT = int(os.environ.get("KILL_AT", "1"))
_count = {"n": 0}
_trial = {"id": None}


def _maybe_die() -> None:
    _count["n"] += 1
    if _count["n"] == AT:
        print(f"killed in trial {_trial['id']}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def main(directory: str) -> None:
    import keras

    import ktplus

    if MODE == "json":  # die inside the atomic write of a state file: after the data, before the rename
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if os.path.basename(os.fspath(dst)) == "trial.json":
                _maybe_die()
            return real_replace(src, dst, *args, **kwargs)

        os.replace = replace
    if MODE == "checkpoint":  # die while the weights file is half written
        real_save = keras.Model.save_weights

        def save_weights(self, filepath, *args, **kwargs):
            real_save(self, filepath, *args, **kwargs)
            if _count["n"] + 1 == AT:
                size = os.path.getsize(filepath)
                with open(filepath, "r+b") as f:
                    f.truncate(size // 2)
            _maybe_die()

        keras.Model.save_weights = save_weights

    if MODE == "created":  # die inside the oracle's create_trial: the new trial.json written, oracle.json not yet
        import keras_tuner

        real_save_trial = keras_tuner.Oracle._save_trial

        def save_trial(self, trial):
            new = not os.path.exists(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"))
            real_save_trial(self, trial)
            if new:
                _maybe_die()

        keras_tuner.Oracle._save_trial = save_trial

    class Killer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if MODE == "epoch":
                _maybe_die()

    class Search(ktplus.RandomSearch):
        def on_trial_begin(self, trial):
            _trial["id"] = trial.trial_id
            super().on_trial_begin(trial)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=[4, 8, 16, 32])
    # One trial at a time (pack=1): the kill points count events of the trial that began last.
    tuner = Search(hm, objective="val_accuracy", max_trials=4, seed=1, directory=directory,
                   project_name="p", early_stopping=10, pruning="median", pack=1)
    tuner.search(x[:48], y[:48], validation_data=(x[48:], y[48:]), epochs=3, verbose=0, callbacks=[Killer()])
    model = tuner.get_best_models(1)[0]
    print("best model loaded", model.count_params(), flush=True)
    print("trials", len(tuner.oracle.trials), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
