"""The fast path's "pack" part: trials trained as one fused model record
exactly what they would trained alone; pack steps aside where it cannot."""

from __future__ import annotations

from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus
from ktplus.tuners._pack import pack_size


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype("float32") * 3 + 1
    y = np.digitize(x[:, 0] + x[:, 1], [2.0, 5.0]).astype("int64")  # three unbalanced classes
    return (x[:90], y[:90]), (x[90:], y[90:])


class SeededDense(ktplus.DenseHyperModel):
    """Initial weights drawn from a seed of the trial's own values, so a
    trial starts from the same weights fused or alone."""

    def build(self, hp):
        model = super().build(hp)
        seed = int(round(hp.get("learning_rate") * 1e9)) % 2**32
        rng = np.random.default_rng(seed)
        for w in model.trainable_weights:
            w.assign(rng.normal(0.0, 0.5, w.shape).astype("float32"))
        return model


def _space(**kwargs):
    settings = dict(input_shape=(4,), num_classes=3, layers=2, units=[4, 8, 16], dropout=0.0,
                    learning_rate=(1e-3, 3e-1), regularizer=["l2", None, "l1"], regularizer_strength=1e-3,
                    optimizer=["adam", "rmsprop"], normalization="standardize", class_weight=[None, "balanced"])
    settings.update(kwargs)
    return SeededDense(**settings)


def _search(tmp_path, data, pack, name, trials=8, space=None, **kwargs):
    (x, y), val = data
    tuner = ktplus.RandomSearch(space or _space(), objective="val_loss", max_trials=trials, seed=3, directory=tmp_path,
                                project_name=name, early_stopping=1, pack=pack, **kwargs)
    tuner.search(x, y, validation_data=val, epochs=8, shuffle=False, verbose=0)
    return tuner


def _final_weights(tuner, trial):
    return tuner.load_model(trial).get_weights()


def test_fused_members_train_as_each_trial_alone(tmp_path, data):
    # One or two hidden layers: members of different depths fuse through identity blocks.
    fused = _search(tmp_path, data, 6, "fused", trials=6, space=_space(layers=[1, 2]))
    alone = _search(tmp_path, data, 1, "alone", trials=6, space=_space(layers=[1, 2]))
    assert not alone.packed_trials
    trials = {t.trial_id: t for t in fused.oracle.trials.values()}
    assert set(trials) == set(alone.oracle.trials) and len(trials) == 6
    # Members of one fused model: at least one group mixes widths (masked), depths and settings.
    assert any(n >= 2 for n in fused.packed_trials.values())
    widths = {(trials[t].hyperparameters.values.get("units_0"), trials[t].hyperparameters.values.get("units_1"))
              for t in fused.packed_trials}
    assert len(widths) >= 2
    assert {trials[t].hyperparameters.values["layers"] for t in fused.packed_trials} == {1, 2}
    epochs = set()
    for tid, t in trials.items():
        a = alone.oracle.trials[tid]
        assert t.hyperparameters.values == a.hyperparameters.values
        assert t.status == a.status == "COMPLETED"
        run = t.metrics.get_last_value("epochs_run")
        assert run == a.metrics.get_last_value("epochs_run")
        epochs.add(run)
        assert t.score == pytest.approx(a.score, rel=1e-4, abs=1e-5), tid
        assert t.best_step == a.best_step
        for name in ("loss", "accuracy", "val_accuracy", "best_epoch"):
            assert t.metrics.get_last_value(name) == pytest.approx(a.metrics.get_last_value(name),
                                                                    rel=1e-4, abs=1e-5), (tid, name)
        # Every epoch's objective, and the checkpoint (the best epoch's weights, a model of the trial's own
        # configuration), as trained alone.
        curve_f, curve_a = fused.curves.read(tid), alone.curves.read(tid)
        assert list(curve_f) == list(curve_a)
        np.testing.assert_allclose(list(curve_f.values()), list(curve_a.values()), rtol=1e-4, atol=1e-5)
        for wf, wa in zip(_final_weights(fused, t), _final_weights(alone, a), strict=True):
            np.testing.assert_allclose(wf, wa, rtol=1e-3, atol=1e-4)
    assert len(epochs) >= 2  # members stopped at different epochs
    assert set(fused.packed_trials) <= set(trials)


def test_fused_members_train_as_each_trial_alone_in_every_fold(tmp_path, data):
    (x, y), _ = data

    def search(pack, name):
        tuner = ktplus.RandomSearch(_space(class_weight=None), objective="val_loss", max_trials=4, seed=5,
                                    directory=tmp_path, project_name=name, early_stopping=1, cv=2, pack=pack)
        tuner.search(x, y, epochs=6, shuffle=False, verbose=0)
        return tuner

    fused, alone = search(4, "fused"), search(1, "alone")
    assert any(n >= 2 for n in fused.packed_trials.values()) and not alone.packed_trials
    epochs = set()
    for tid, a in alone.oracle.trials.items():
        t = fused.oracle.trials[tid]
        assert t.hyperparameters.values == a.hyperparameters.values and t.status == a.status == "COMPLETED"
        assert t.score == pytest.approx(a.score, rel=1e-4, abs=1e-5), tid
        for name in ("epochs_run", "val_accuracy", "best_epoch"):  # the folds' mean, as trained alone
            assert t.metrics.get_last_value(name) == pytest.approx(a.metrics.get_last_value(name),
                                                                    rel=1e-4, abs=1e-5), (tid, name)
        epochs.add(a.metrics.get_last_value("epochs_run"))
        for wf, wa in zip(_final_weights(fused, t), _final_weights(alone, a), strict=True):
            np.testing.assert_allclose(wf, wa, rtol=1e-3, atol=1e-4)  # the best epoch over every fold
    assert len(epochs) >= 2


def test_a_member_failing_in_a_fold_ends_its_trial_there(tmp_path, data):
    (x, y), _ = data
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, layers=1, units=8, dropout=0.0,
                                optimizer="sgd", learning_rate=[1e-2, 1e12])
    tuner = ktplus.GridSearch(hm, objective="val_accuracy", directory=tmp_path, project_name="p", pack=2, cv=2)
    tuner.search(x * 1e3, y, epochs=2, verbose=0)
    status = {t.hyperparameters.get("learning_rate"): t for t in tuner.oracle.trials.values()}
    assert {lr: t.status for lr, t in status.items()} == {1e-2: "COMPLETED", 1e12: "FAILED"}
    assert len(tuner.packed_trials) == 2
    # The surviving member trained the second fold too (fused alone); the failed one stopped at the first.
    good, bad = status[1e-2].trial_id, status[1e12].trial_id
    assert tuner.curves.path(good, 0).exists() and tuner.curves.path(good, 1).exists()
    assert not tuner.curves.path(bad, 1).exists()


def test_fused_trials_keep_every_record(tmp_path, data):
    (x, y), val = data
    tuner = ktplus.RandomSearch(_space(), objective="val_accuracy", max_trials=6, seed=1, directory=tmp_path,
                                project_name="p", lr_decay="cosine", pruning="median", pack=6)
    tuner.search(x, y, validation_data=val, epochs=3, verbose=0)
    assert len(tuner.packed_trials) >= 2
    frame = tuner.results()
    assert len(frame) == 6 and set(frame["status"]) <= {"completed", "pruned"}
    project = Path(tmp_path, "p")
    for tid in tuner.packed_trials:
        trial = tuner.oracle.get_trial(tid)
        assert trial.metrics.exists("learning_rate") and trial.metrics.exists("epochs_run")
        assert Path(project, f"trial_{tid}", "checkpoint.weights.h5").exists()
        assert Path(project, "tensorboard", f"trial_{tid}").is_dir()
        assert tuner.curves.read(tid)
    best = tuner.get_best_models(1)[0]
    assert best.output_shape == (None, 3)
    assert tuner.evaluate(*val).shape[0] == 1


def test_a_diverging_member_fails_alone(tmp_path, data):
    (x, y), val = data
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, layers=1, units=8, dropout=0.0,
                                optimizer="sgd", learning_rate=[1e-2, 1e12])
    tuner = ktplus.GridSearch(hm, objective="val_accuracy", directory=tmp_path, project_name="p", pack=2)
    tuner.search(x * 1e3, y, validation_data=val, epochs=3, verbose=0)
    status = {t.hyperparameters.get("learning_rate"): t.status for t in tuner.oracle.trials.values()}
    assert status == {1e-2: "COMPLETED", 1e12: "FAILED"}
    assert len(tuner.packed_trials) == 2


@pytest.mark.parametrize("cls", [ktplus.BayesianOptimization, ktplus.Hyperband, ktplus.OptunaSearch])
def test_pack_under_each_algorithm(cls, tmp_path, data):
    (x, y), val = data
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, layers=1, units=8, learning_rate=(1e-3, 1e-1))
    budget = {"max_epochs": 3, "hyperband_iterations": 1} if cls is ktplus.Hyperband else {"max_trials": 4}
    tuner = cls(hm, objective="val_accuracy", directory=tmp_path, project_name="p", seed=0, pack=4, **budget)
    tuner.search(x, y, validation_data=val, epochs=3, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert trials and all(t.status == "COMPLETED" for t in trials)
    assert tuner.packed_trials
    assert tuner.get_best_models(1)[0].output_shape == (None, 3)


class OwnFit(ktplus.DenseHyperModel):
    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, **kwargs)


class BatchHook(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        pass


@pytest.mark.parametrize("case", ["own_fit", "batch_hook", "pack_1", "no_pack_part", "executions"])
def test_pack_steps_aside(case, tmp_path, data):
    (x, y), val = data
    cls = OwnFit if case == "own_fit" else ktplus.DenseHyperModel
    hm = cls(input_shape=(4,), num_classes=3, layers=1, units=8, learning_rate=(1e-3, 1e-1))
    options = {"pack_1": {"pack": 1}, "no_pack_part": {"fast_path": ["data", "checkpoint"]},
               "executions": {"executions_per_trial": 2}}.get(case, {})
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=2, directory=tmp_path, project_name="p",
                                **options)
    callbacks = [BatchHook()] if case == "batch_hook" else []
    tuner.search(x, y, validation_data=val, epochs=1, verbose=0, callbacks=callbacks)
    assert all(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
    assert tuner.packed_trials == {}


def test_pack_applies_by_default_to_ktplus_hypermodels(tmp_path):
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=40, directory=tmp_path)
    assert tuner.pack == "auto" and pack_size(tuner) == 8
    bayes = ktplus.BayesianOptimization(hm, objective="val_accuracy", max_trials=40, directory=tmp_path,
                                        project_name="b")
    assert pack_size(bayes) == 4
    # At most half the budget: later asks learn from, and are pruned against, earlier ones.
    small = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=12, directory=tmp_path, project_name="s")
    assert pack_size(small) == 6


@pytest.mark.parametrize("value", [0, -2, 2.5, "all", True, None])
def test_bad_pack_is_refused_before_any_trial(value, tmp_path):
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
    with pytest.raises(ValueError, match=r"pack.*auto"):
        ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=2, directory=tmp_path, pack=value)
    assert not Path(tmp_path, "untitled_project").exists()


def test_keras_tuner_oracle_keeps_one_trial_per_slot(tmp_path):
    """A pack asks as several workers: keras-tuner's oracle hands each slot its own trial."""
    from ktplus.tuners._pack import create_trials

    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, units=[8, 16])
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=3, directory=tmp_path)
    trials, stopped = create_trials(tuner, 5)
    assert len(trials) == 3 and stopped
    assert len({t.trial_id for t in trials}) == 3
    assert isinstance(tuner.oracle.ongoing_trials, dict) and len(tuner.oracle.ongoing_trials) == 3
    assert keras_tuner  # the oracle is keras-tuner's own


def test_a_trial_run_alone_beside_a_pack_counts_only_its_own_parameters(tmp_path, data):
    """The first trial asked does not fuse (padding it to the others' width costs too much) and runs
    alone first: the pack's other trials, still waiting for their fused results, keep their own
    parameter counts."""
    (x, y), val = data
    # 4096 units: padding the 2-unit model to that width is over the padding floor (fusion_groups).
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, layers=1, units=[2, 4096], dropout=0.0,
                                learning_rate=[1e-2, 3e-2])
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=3, directory=tmp_path, project_name="p",
                                pack=3)
    for units, lr in ((2, 1e-2), (4096, 1e-2), (4096, 3e-2)):
        tuner.enqueue_trial({"units_0": units, "learning_rate": lr})
    tuner.search(x, y, validation_data=val, epochs=1, verbose=0)
    assert len(tuner.packed_trials) == 2
    for trial in tuner.oracle.trials.values():
        own = tuner.hypermodel.build(trial.hyperparameters).count_params()
        assert trial.metrics.get_last_value("num_params") == own, trial.trial_id


class FailsOnce(keras.callbacks.Callback):
    """Raises at the first epoch end of the whole search (a crash keras-tuner retries)."""

    calls = 0

    def on_epoch_end(self, epoch, logs=None):
        type(self).calls += 1
        if type(self).calls == 1:
            raise RuntimeError("a one-off crash")


def test_a_trial_sent_for_retry_in_the_last_ask_is_retried(tmp_path, data):
    """The ask that found the budget spent still runs its trials; one sent back for retry
    (max_retries_per_trial) is then asked for again, as keras-tuner's loop asks after each trial."""
    (x, y), val = data
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, layers=1, units=8, learning_rate=(1e-3, 1e-1))
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, max_retries_per_trial=1,
                                directory=tmp_path, project_name="p", pack=2)
    FailsOnce.calls = 0
    tuner.search(x, y, validation_data=val, epochs=1, verbose=0, callbacks=[FailsOnce()])
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED"]
    assert FailsOnce.calls == 2


def test_a_fused_trials_checkpoint_loads_as_an_unfused_ones(tmp_path, data):
    """A model built for a fused trial and loaded from its checkpoint (Hyperband's continuation,
    load_model) starts at its own learning rate, as from an unfused trial's checkpoint: not at the
    decayed rate the member ended with."""
    (x, y), val = data
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, layers=1, units=8, dropout=0.0,
                                learning_rate=[1e-2, 3e-2])  # a grid of two trials
    for pack in (2, 1):
        tuner = ktplus.GridSearch(hm, objective="val_accuracy", directory=tmp_path, project_name=f"p{pack}",
                                  lr_decay="exponential", pack=pack)
        tuner.search(x, y, validation_data=val, epochs=3, verbose=0)
        assert len(tuner.packed_trials) == (2 if pack == 2 else 0)
        for trial in tuner.oracle.trials.values():
            model = tuner.hypermodel.build(trial.hyperparameters)
            model.load_weights(tuner._get_checkpoint_fname(trial.trial_id))
            lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
            assert lr == pytest.approx(trial.hyperparameters.get("learning_rate")), (pack, trial.trial_id)


def test_trials_held_by_an_interrupted_larger_pack_run_in_the_next_search(tmp_path, data):
    """An interrupted search() left trials ongoing under pack slot ids; searching again with a
    smaller pack (here none) runs them instead of holding their places forever."""
    from ktplus.tuners._pack import create_trials

    (x, y), val = data
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, layers=1, units=[8, 16])
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=3, directory=tmp_path, seed=2)
    asked, _ = create_trials(tuner, 3)  # as a pack of 3 interrupted before training
    assert len(tuner.oracle.ongoing_trials) == 3
    tuner.search(x, y, validation_data=val, epochs=1, verbose=0, callbacks=[BatchHook()])  # pack steps aside
    assert tuner.oracle.ongoing_trials == {}
    assert {t.trial_id: t.status for t in tuner.oracle.trials.values()} == {t.trial_id: "COMPLETED" for t in asked}


class TrainEndLogs(keras.callbacks.Callback):
    seen: list = []

    def on_train_end(self, logs=None):
        TrainEndLogs.seen.append(dict(logs or {}))


def test_a_members_callbacks_end_with_the_logs_keras_gives(tmp_path, data):
    (x, y), val = data
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, layers=1, units=8, learning_rate=(1e-3, 1e-1))
    seen = {}
    for pack in (2, 1):
        tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=2, directory=tmp_path, seed=0,
                                    project_name=f"p{pack}", lr_decay="cosine", pack=pack)
        TrainEndLogs.seen = []
        tuner.search(x, y, validation_data=val, epochs=2, verbose=0, callbacks=[TrainEndLogs()])
        assert len(tuner.packed_trials) == (2 if pack == 2 else 0)
        seen[pack] = [sorted(logs) for logs in TrainEndLogs.seen]
    # on_train_end gets the last epoch's logs under the names Keras gives them, fused or alone.
    assert seen[2] == seen[1] and len(seen[1]) == 2 and "val_accuracy" in seen[1][0]
