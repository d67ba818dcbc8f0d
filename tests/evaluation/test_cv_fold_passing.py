"""Each fold's executions are told their fold explicitly (through the fit's
arguments, taken out before ``HyperModel.fit`` sees them), not through state
set on the tuner or the trial's recorder: every execution's curve,
TensorBoard scalars and data cache belong to its own fold."""

from __future__ import annotations

from pathlib import Path

import keras
import keras_tuner
import numpy as np

import ktplus


class _Seen(keras_tuner.HyperModel):
    """Records the keyword arguments every fit gets and the rows it trains on."""

    def __init__(self):
        super().__init__()
        self.kwargs: list[set[str]] = []
        self.rows: list[frozenset[float]] = []

    def build(self, hp):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(hp.Choice("u", [2]), activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, x, y, **kwargs):
        self.kwargs.append(set(kwargs))
        self.rows.append(frozenset(np.asarray(x)[:, 0].tolist()))
        return model.fit(x, y, **kwargs)


def test_each_execution_is_told_its_fold(tmp_path):
    n = 24
    x = np.stack([np.arange(n), np.zeros(n)], axis=1).astype("float32")
    y = np.arange(n) % 2
    hm = _Seen()
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, cv=2, executions_per_trial=2,
                                seed=0, directory=tmp_path, project_name="p", fast_path=False)
    tuner.search(x, y, epochs=1, verbose=0)
    assert all(not any(k.startswith("_ktplus") for k in seen) for seen in hm.kwargs)  # never reaches fit
    assert len(hm.rows) == 4 and hm.rows[0] == hm.rows[1] and hm.rows[2] == hm.rows[3]
    assert hm.rows[0] != hm.rows[2]  # two executions per fold, in fold order
    run = Path(tuner.tensorboard_dir, "trial_0")
    for fold in (0, 1):
        for execution in (0, 1):
            assert list((run / f"fold_{fold}" / f"execution_{execution}").glob("events.out.tfevents*"))
    (trial,) = tuner.oracle.trials.values()
    assert trial.metrics.get_last_value("folds") == 2
    curves = sorted(p.name for p in Path(tmp_path, "p", "ktplus_curves").glob("*.json"))
    assert curves == ["trial_0_fold_0.json", "trial_0_fold_1.json"]
