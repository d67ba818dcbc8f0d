"""``cv=k`` decides stratified or plain k-fold as scikit-learn's
``check_cv(cv, y, classifier=...)`` does: by the hypermodel's task, not by
the dtype of ``y``. An integer regression target (ages, counts) gets plain
k-fold; a classification target stored as floats gets stratified folds."""

from __future__ import annotations

import keras
import keras_tuner
import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

import ktplus
from ktplus.evaluation._cv import make_folds


def _ages(n=30):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = np.arange(20, 20 + n)  # integer ages, each one once: no class could fill 3 stratified folds
    return x, y


def test_integer_regression_target_gets_plain_k_fold_in_a_search(tmp_path):
    x, y = _ages()
    hm = ktplus.DenseHyperModel((3,), task="regression", layers=1, units=4)
    tuner = ktplus.RandomSearch(hm, objective="val_loss", max_trials=1, cv=3, seed=0, directory=tmp_path,
                                project_name="p", tensorboard=False)
    tuner.search(x, y.astype("int64"), epochs=1, verbose=0)
    (trial,) = tuner.oracle.trials.values()
    assert trial.status == "COMPLETED"
    assert trial.metrics.get_last_value("folds") == 3


def test_the_task_decides_the_folds_whatever_the_dtype():
    x, y = _ages()
    plain = [t.tolist() for _, t in KFold(3, shuffle=True, random_state=0).split(x)]
    folds = make_folds(3, x, y, None, seed=0, classifier=False)
    assert [f.test.tolist() for f in folds] == plain
    labels = (np.arange(30) % 2).astype("float32")  # class labels stored as floats
    stratified = [t.tolist() for _, t in StratifiedKFold(3, shuffle=True, random_state=0).split(x, labels)]
    folds = make_folds(3, x, labels, None, seed=0, classifier=True)
    assert [f.test.tolist() for f in folds] == stratified
    # A hypermodel of unknown task: integer labels are taken as classes (stratified), floats as numbers.
    assert [f.test.tolist() for f in make_folds(3, x, labels.astype("int64"), None, seed=0)] == stratified
    assert [f.test.tolist() for f in make_folds(3, x, labels, None, seed=0)] == plain


class _Regressor(keras_tuner.HyperModel):
    """A keras-tuner hypermodel (no task known to ktplus)."""

    def build(self, hp):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(hp.Choice("u", [2]))])
        model.add(keras.layers.Dense(1))
        model.compile("adam", "mse")
        return model


def test_a_hypermodel_of_unknown_task_keeps_the_dtype_rule(tmp_path):
    x, y = _ages()
    tuner = ktplus.RandomSearch(_Regressor(), objective="val_loss", max_trials=1, cv=3, seed=0,
                                directory=tmp_path, project_name="p", tensorboard=False)
    tuner.search(x, y.astype("float32"), epochs=1, verbose=0)  # float targets: plain k-fold
    (trial,) = tuner.oracle.trials.values()
    assert trial.status == "COMPLETED"
