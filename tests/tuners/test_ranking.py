"""One ranking of trials: a pruned trial (with ``cv=``, one scored on fewer
folds) never outranks a fully scored one, in any of the places that name
"the best" trial; and Hyperband never keeps a pruned trial's checkpoint as
one a later round may continue.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import zipfile

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus
import ktplus.cli
from ktplus import _facts
from ktplus._ranking import best_trials, ranked
from ktplus.evaluation._heldout import load_evaluation
from ktplus.results import load_results

BAD_LR, GOOD_LR = 1e-7, 0.1


class PruneOnce(ktplus.Pruner):
    """Prunes exactly once: at the ``at``-th epoch it sees that has a
    finished trial to compare with (the first trial never has one). The
    count is kept on the class: keras-tuner deep-copies the callbacks that
    hold the pruner."""

    seen: list[int] = []

    def __init__(self, at: int = 1, **kwargs):
        super().__init__(n_startup_trials=0, n_warmup_epochs=0)
        self.at = at

    def prune(self, epoch, curve, others, direction):
        if not others:
            return False
        type(self).seen.append(epoch)
        return len(type(self).seen) == self.at

    def get_config(self):
        return {"at": self.at}


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    return x, y


def _lr(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


@pytest.fixture(scope="module")
def cv_pruned(tmp_path_factory):
    """GridSearch over two learning rates with ``cv=3``: trial 0 (hardly
    learning) is cross-validated on every fold; trial 1 (learning well) is
    pruned after its second fold, so its mean covers 2 folds of 3 (``pack=1``:
    trial 1 trains after trial 0 has finished, so it has a curve to be
    pruned against)."""
    keras.utils.set_random_seed(0)
    PruneOnce.seen = []
    x, y = _data()
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=16, dropout=0.0,
                                learning_rate=[BAD_LR, GOOD_LR])
    epochs = 3
    tuner = ktplus.GridSearch(hm, objective="val_accuracy", max_trials=2, cv=3, seed=1, tensorboard=False, pack=1,
                              pruning=PruneOnce(at=2 * epochs),  # the last epoch of trial 1's second fold
                              directory=tmp_path_factory.mktemp("ranking"), project_name="p")
    tuner.search(x, y, epochs=epochs, verbose=0)
    trials = list(tuner.oracle.trials.values())
    (full,) = [t for t in trials if not _facts.is_pruned(t)]
    (pruned,) = [t for t in trials if _facts.is_pruned(t)]
    # The case of the issue: the pruned trial's partial mean is the best score.
    assert full.hyperparameters.get("learning_rate") == BAD_LR
    assert pruned.metrics.get_last_value(_facts.FOLDS) == 2 and full.metrics.get_last_value(_facts.FOLDS) == 3
    assert pruned.score > full.score
    return tuner, full, pruned, (x, y)


def test_a_pruned_trial_never_outranks_a_fully_cross_validated_one(cv_pruned):
    tuner, full, pruned, (x, y) = cv_pruned
    best = full.trial_id

    assert [t.trial_id for t in tuner.oracle.get_best_trials(2)] == [best, pruned.trial_id]
    assert tuner.get_best_hyperparameters()[0].values == full.hyperparameters.values
    (model,) = tuner.get_best_models(1)
    assert _lr(model) == pytest.approx(BAD_LR)  # trial 0's model, not the pruned leader's
    frame = tuner.results()
    assert list(frame["trial_id"]) == [best, pruned.trial_id]
    assert list(frame["status"]) == ["completed", "pruned"]
    assert list(ktplus.load_results(tuner.project_dir)["trial_id"]) == [best, pruned.trial_id]
    assert list(tuner.pareto_front()["trial_id"]) == [best]
    assert list(tuner.evaluate(x[:30], y[:30], num_models=2)["trial_id"]) == [best, pruned.trial_id]
    assert _lr(tuner.refit(x, y, epochs=1, verbose=0)) == pytest.approx(BAD_LR)


def test_the_oracle_keeps_keras_tuners_order_among_fully_trained_trials(tmp_path):
    """Equal scores keep keras-tuner's order (its sort is stable over the
    oracle's trials); pruned trials follow in score order, then unscored ones."""
    from keras_tuner.engine.trial import Trial

    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=6, directory=tmp_path,
                                tensorboard=False)
    oracle = tuner.oracle
    for trial_id, status, score, pruned in [("0", "COMPLETED", 0.7, 0.0), ("1", "COMPLETED", 0.9, 1.0),
                                            ("2", "FAILED", None, 0.0), ("3", "COMPLETED", 0.7, 0.0),
                                            ("4", "COMPLETED", 0.8, 1.0), ("5", "COMPLETED", 0.75, 0.0)]:
        trial = Trial(oracle.get_space(), trial_id=trial_id, status=status)
        trial.score = score
        trial.metrics.register("pruned", direction="min")
        trial.metrics.update("pruned", pruned)
        oracle.trials[trial_id] = trial
    plain = keras_tuner.Oracle.get_best_trials(oracle, 6)  # keras-tuner's own order
    assert [t.trial_id for t in plain] == ["1", "4", "5", "0", "3", "2"]
    expected = ["5", "0", "3", "1", "4", "2"]
    assert [t.trial_id for t in oracle.get_best_trials(6)] == expected
    assert [t.trial_id for t in oracle.get_best_trials(2)] == expected[:2]
    assert [t.trial_id for t in ranked(oracle.trials.values(), "max")] == expected
    assert [t.trial_id for t in best_trials(oracle, 6)] == expected[:5]  # scored trials only
    assert list(tuner.results()["trial_id"]) == expected


def _user_oracle_tuner(directory):
    class MyOracle(keras_tuner.oracles.RandomSearchOracle):
        pass

    oracle = MyOracle(objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=2)
    tuner = ktplus.Tuner(oracle=oracle, hypermodel=ktplus.DenseHyperModel(input_shape=(4,), num_classes=2),
                         directory=directory, tensorboard=False)
    assert type(tuner.oracle) is MyOracle  # ranked, and still the user's class
    return tuner


TUNERS = {
    "user oracle": _user_oracle_tuner,
    "optuna": lambda d: ktplus.OptunaSearch(ktplus.DenseHyperModel(input_shape=(4,), num_classes=2),
                                            objective="val_accuracy", max_trials=2, directory=d,
                                            tensorboard=False),
    "bayesian": lambda d: ktplus.BayesianOptimization(ktplus.DenseHyperModel(input_shape=(4,), num_classes=2),
                                                      objective="val_accuracy", max_trials=2, directory=d,
                                                      tensorboard=False),
}


@pytest.mark.parametrize("make", TUNERS.values(), ids=list(TUNERS))
def test_every_oracle_ranks_the_same_way_also_for_a_worker(make, tmp_path):
    """Oracles ktplus does not build itself (a user's subclass, Optuna's)
    rank pruned trials after fully trained ones too, and a distributed
    worker gets the chief's ranking through keras-tuner's gRPC service."""
    from keras_tuner.engine.trial import Trial

    from ktplus._compat import grpc_parts

    tuner = make(tmp_path)
    for trial_id, score, pruned in [("0", 0.9, 1.0), ("1", 0.6, 0.0)]:
        trial = Trial(tuner.oracle.get_space(), trial_id=trial_id, status="COMPLETED")
        trial.score = score
        trial.metrics.register("pruned", direction="min")
        trial.metrics.update("pruned", pruned)
        tuner.oracle.trials[trial_id] = trial
    assert [t.trial_id for t in tuner.oracle.get_best_trials(1)] == ["1"]

    protos, oracle_chief = grpc_parts()  # what a worker's OracleClient.get_best_trials receives
    response = oracle_chief.OracleServicer(tuner.oracle).GetBestTrials(
        protos.get_service().GetBestTrialsRequest(num_trials=1), None)
    assert [Trial.from_proto(t).trial_id for t in response.trials] == ["1"]


def _run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ktplus.cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_the_cli_prints_evaluates_and_exports_the_same_best_trial(tmp_path):
    """``ktplus search --cv --test-split --export``: the printed best, the
    evaluation's record and the export's record name the fully
    cross-validated trial even when a pruned one has the best mean."""
    args = ["search", "--data", "iris", "--cv", "3", "--test-split", "0.25", "--trials", "2", "--epochs", "1",
            "--pruning", "none", "--directory", tmp_path / "out", "--project", "p"]
    code, _, err = _run_cli(*args)
    assert code == 0, err
    project = tmp_path / "out" / "p"
    # Trial `leader` (any of the two) becomes a trial pruned after 2 folds with the best mean.
    records = {d.name: d / "trial.json" for d in project.iterdir() if d.name.startswith("trial_")}
    states = {name: json.loads(path.read_text()) for name, path in records.items()}
    assert len(states) == 2
    leader_dir, full_dir = sorted(states)
    leader = states[leader_dir]
    metrics = leader["metrics"]["metrics"]
    for name, value in ((_facts.PRUNED, 1.0), (_facts.FOLDS, 2.0)):
        metrics[name]["observations"][-1]["value"] = [value]
    leader["score"] = states[full_dir]["score"] + 1.0
    records[leader_dir].write_text(json.dumps(leader))
    full_id, leader_id = states[full_dir]["trial_id"], leader["trial_id"]

    export = tmp_path / "model.keras"
    code, out, err = _run_cli(*args, "--export", export)  # resumes: no trial left to run
    assert code == 0, err
    board = load_results(project)
    assert list(board["trial_id"]) == [full_id, leader_id]
    assert f"the best model, trial {full_id}:" in out
    assert f"(trial {full_id})" in out.split("Exported the best configuration")[1]
    assert load_evaluation(project)["models"][0]["trial_id"] == full_id
    with zipfile.ZipFile(export) as z:
        meta = json.loads(z.read("ktplus.json"))
    assert meta["trial_id"] == full_id
    full_values = {k: v for k, v in states[full_dir]["hyperparameters"]["values"].items()
                   if not k.startswith("tuner/")}
    assert meta["hyperparameters"] == full_values


# -- Hyperband + keep_checkpoints + pruning ------------------------------------


class Watched(ktplus.Hyperband):
    """Records, after each trial's end (checkpoints pruned), the finished
    pruned trials outside the best one whose checkpoint is still on disk."""

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        (best,) = self.oracle.get_best_trials(1)
        left = {tid for tid, t in self.oracle.trials.items()
                if t.status == "COMPLETED" and _facts.is_pruned(t) and tid != best.trial_id
                and os.path.exists(self._checkpoint_path(tid))}
        self.left_behind.append(left)


def test_hyperband_never_keeps_a_pruned_trials_checkpoint_as_promotable(tmp_path):
    keras.utils.set_random_seed(0)
    PruneOnce.seen = []
    x, y = _data(100)
    tuner = Watched(ktplus.DenseHyperModel(input_shape=(4,), num_classes=2), objective="val_accuracy",
                    max_epochs=2, factor=2, seed=0, keep_checkpoints=1, pruning=PruneOnce(at=1),
                    tensorboard=False, directory=tmp_path, project_name="p")
    tuner.left_behind = []
    tuner.search(x[:70], y[:70], validation_data=(x[70:], y[70:]), verbose=0)
    assert sum(_facts.is_pruned(t) for t in tuner.oracle.trials.values()) == 1
    assert tuner.left_behind and all(not left for left in tuner.left_behind), tuner.left_behind
