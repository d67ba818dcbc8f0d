"""Held-out evaluation: ``tuner.evaluate(x, y, num_models)``.

One small classification search and one tiny regression search, each run
once per module; every expected value is recomputed here from the models'
own predictions with scikit-learn."""

from __future__ import annotations

import io
import json
import math
import os

import keras
import numpy as np
import pytest
from matplotlib import image as mpimg
from scipy.special import softmax
from sklearn import metrics as skm
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util

import ktplus
from ktplus.evaluation._heldout import (
    CLASSIFICATION_METRICS,
    EVALUATION_FILE,
    REGRESSION_METRICS,
    evaluate_model,
    format_evaluation,
    load_evaluation,
)
from ktplus.logging import trial_run_dir

LABELS = [0, 1, 2]
TEST_SUFFIX = ".ktplus-test"


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs in 4 dimensions (iris-like)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = np.array([[0, 0, 0, 0], [1.5, 1.5, 0, 0], [0, 1.5, 1.5, 1.5]], dtype="float32")
    return (centers[y] + rng.normal(size=(n, 4))).astype("float32"), y


@pytest.fixture(scope="module")
def cls_search(tmp_path_factory):
    keras.utils.set_random_seed(0)
    x, y = _blobs(150, 0)
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, layers=1, units=(8, 32))
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=2, seed=1,
                                directory=tmp_path_factory.mktemp("cls"))
    tuner.search(x[:100], y[:100], validation_data=(x[100:], y[100:]), epochs=2, verbose=0)
    return tuner, x[100:], y[100:]


@pytest.fixture(scope="module")
def cls_eval(cls_search):
    """The classification search evaluated once with its two best models."""
    tuner, x, y = cls_search
    return tuner.evaluate(x, y, num_models=2)


@pytest.fixture(scope="module")
def reference(cls_search):
    """Per best trial (best first): its id, its model (``tuner.load_model``)
    and the model's probabilities (``model.predict`` here)."""
    tuner, x, _ = cls_search
    out = []
    for trial in tuner.oracle.get_best_trials(2):
        model = tuner.load_model(trial)
        probs = model.predict(x, verbose=0).astype(np.float64)
        out.append((trial.trial_id, model, probs / probs.sum(axis=1, keepdims=True)))
    return out


@pytest.fixture(scope="module")
def best_model(reference):
    return reference[0][1]


@pytest.fixture(scope="module")
def reg_search(tmp_path_factory):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(80, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=80)).astype("float32")
    hm = ktplus.DenseHyperModel(input_shape=(4,), task="regression", layers=1, units=8)
    tuner = ktplus.RandomSearch(hm, objective="val_loss", max_trials=1, seed=1,
                                directory=tmp_path_factory.mktemp("reg"))
    tuner.search(x[:60], y[:60], validation_data=(x[60:], y[60:]), epochs=1, verbose=0)
    return tuner, x[60:], y[60:]


def _classification_metrics(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    pred = probs.argmax(axis=1)
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "precision_macro": skm.precision_score(y, pred, labels=LABELS, average="macro", zero_division=0),
        "recall_macro": skm.recall_score(y, pred, labels=LABELS, average="macro", zero_division=0),
        "f1_macro": skm.f1_score(y, pred, labels=LABELS, average="macro", zero_division=0),
        "f1_weighted": skm.f1_score(y, pred, labels=LABELS, average="weighted", zero_division=0),
        "roc_auc": skm.roc_auc_score(y, probs, multi_class="ovr", labels=LABELS),
        "log_loss": skm.log_loss(y, probs, labels=LABELS),
    }


def _events(run_dir: str) -> dict[str, list]:
    """tag -> [summary value] of a run's evaluation event files."""
    values: dict[str, list] = {}
    for name in sorted(os.listdir(run_dir)):
        if name.endswith(TEST_SUFFIX):
            for event in event_file_loader.EventFileLoader(os.path.join(run_dir, name)).Load():
                for value in event.summary.value:
                    values.setdefault(value.tag, []).append(value)
    return values


def _snapshot(root) -> dict[str, tuple[int, int]]:
    return {os.path.join(d, f): (os.stat(os.path.join(d, f)).st_mtime_ns, os.stat(os.path.join(d, f)).st_size)
            for d, _, files in os.walk(root) for f in files}


# -- what evaluate returns ----------------------------------------------------------


def test_classification_columns_and_values_match_sklearn(cls_search, cls_eval, reference):
    _, _, y = cls_search
    assert list(cls_eval.columns) == ["trial_id", *CLASSIFICATION_METRICS]
    for (trial_id, _, probs), (_, row) in zip(reference, cls_eval.iterrows()):
        assert row["trial_id"] == trial_id
        for name, expected in _classification_metrics(y, probs).items():
            assert row[name] == pytest.approx(expected, rel=1e-6, abs=1e-9), name


def test_models_are_ranked_best_first(cls_search, cls_eval):
    tuner, _, _ = cls_search
    best = tuner.oracle.get_best_trials(2)
    assert len(cls_eval) == 2
    assert list(cls_eval["trial_id"]) == [t.trial_id for t in best]
    assert best[0].score >= best[1].score


def test_regression_metrics_match_sklearn(reg_search):
    tuner, x, y = reg_search
    frame = tuner.evaluate(x, y)
    trial = tuner.oracle.get_best_trials(1)[0]
    pred = tuner.load_model(trial).predict(x, verbose=0)[:, 0]
    assert list(frame.columns) == ["trial_id", *REGRESSION_METRICS]
    row = frame.iloc[0]
    assert row["trial_id"] == trial.trial_id
    assert row["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-6)
    assert row["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)), rel=1e-6)
    assert row["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-6)
    run = _events(trial_run_dir(tuner.tensorboard_dir, trial.trial_id))
    for name in REGRESSION_METRICS:
        (value,) = run[f"test/{name}"]
        assert float(tensor_util.make_ndarray(value.tensor)) == pytest.approx(row[name], rel=1e-6)
    assert not any(value.metadata.plugin_data.plugin_name in ("images", "pr_curves")
                   for values in run.values() for value in values)
    assert load_evaluation(tuner.project_dir)["task"] == "regression"


def test_without_tensorboard_only_the_json_is_written(reg_search, monkeypatch):
    tuner, x, y = reg_search
    tensorboard_dir = tuner.tensorboard_dir
    path = os.path.join(tuner.project_dir, EVALUATION_FILE)
    if os.path.exists(path):
        os.unlink(path)
    before = _snapshot(tensorboard_dir)
    monkeypatch.setattr(tuner, "tensorboard_dir", None)
    tuner.evaluate(x, y)
    assert _snapshot(tensorboard_dir) == before
    assert load_evaluation(tuner.project_dir)["models"][0]["metrics"]["mae"] > 0


# -- labels and outputs ---------------------------------------------------------------


def test_one_hot_labels_score_like_integer_labels(cls_search, best_model):
    _, x, y = cls_search
    model = best_model
    by_label = evaluate_model(model, x, y)
    by_column = evaluate_model(model, x, y.reshape(-1, 1))
    one_hot = evaluate_model(model, x, np.eye(3, dtype="float32")[y])
    assert one_hot["metrics"] == by_label["metrics"] == by_column["metrics"]
    assert one_hot["confusion_matrix"] == by_label["confusion_matrix"]


def _binary_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 2)).astype("float32")
    return x, (x[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(int)


def test_binary_sigmoid_output_uses_the_positive_class_probability():
    x, y = _binary_data()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy")
    p = model.predict(x, verbose=0)[:, 0].astype(np.float64)
    record = evaluate_model(model, x, y)
    assert record["task"] == "classification" and record["labels"] == [0, 1]
    m = record["metrics"]
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), rel=1e-9)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, np.column_stack([1 - p, p])), rel=1e-6)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, (p > 0.5).astype(int)))
    assert record["confusion_matrix"] == skm.confusion_matrix(y, (p > 0.5).astype(int)).tolist()


def test_binary_logits_go_through_softmax():
    x, y = _binary_data()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    probs = softmax(model.predict(x, verbose=0).astype(np.float64), axis=1)
    m = evaluate_model(model, x, y)["metrics"]
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, probs), rel=1e-6)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, probs[:, 1]), rel=1e-9)


def test_classes_absent_from_y_give_nan_roc_auc_not_an_error(cls_search, best_model):
    _, x, y = cls_search
    keep = y != 2
    model = best_model
    record = evaluate_model(model, x[keep], y[keep])
    probs = model.predict(x[keep], verbose=0).astype(np.float64)
    probs /= probs.sum(axis=1, keepdims=True)
    assert math.isnan(record["metrics"]["roc_auc"])
    assert record["metrics"]["log_loss"] == pytest.approx(skm.log_loss(y[keep], probs, labels=LABELS), rel=1e-6)
    assert np.array(record["confusion_matrix"]).shape == (3, 3)
    assert record["per_class"]["2"]["support"] == 0


# -- bad input: a clear error before any prediction or write ----------------------------


@pytest.fixture
def predictions(monkeypatch):
    calls: list[int] = []
    original = keras.Model.predict

    def spy(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "predict", spy)
    return calls


@pytest.mark.parametrize("case, argument, received", [
    ("num_models_zero", "num_models", "num_models=0"),
    ("num_models_float", "num_models", "num_models=1.5"),
    ("num_models_bool", "num_models", "num_models=True"),
    ("num_models_str", "num_models", "num_models='2'"),
    ("lengths", "y", "y='<array of shape (49,)>'"),
    ("sample_shape", "x", "x='<array of shape (50, 5)>'"),
    ("empty", "x", "x='<array of shape (0, 4)>'"),
    ("label_range", "y", "including 7"),
])
def test_bad_input_is_refused_before_predicting_or_writing(cls_search, predictions, case, argument, received):
    tuner, x, y = cls_search
    kwargs = {"num_models": 1}
    if case.startswith("num_models"):
        kwargs["num_models"] = {"num_models_zero": 0, "num_models_float": 1.5, "num_models_bool": True,
                                "num_models_str": "2"}[case]
    elif case == "lengths":
        y = y[:-1]
    elif case == "sample_shape":
        x = np.concatenate([x, x[:, :1]], axis=1)
    elif case == "empty":
        x, y = x[:0], y[:0]
    elif case == "label_range":
        y = y.copy()
        y[3] = 7
    before = _snapshot(tuner.project_dir)
    with pytest.raises(ValueError, match=f"`{argument}`") as info:
        tuner.evaluate(x, y, **kwargs)
    assert received in str(info.value)
    assert predictions == []
    assert _snapshot(tuner.project_dir) == before


def test_model_input_shape_is_checked_before_predicting(predictions):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"`x`.*\(n, 4\)"):
        evaluate_model(model, np.zeros((6, 5), "float32"), np.zeros(6, int))
    assert predictions == []


def test_evaluate_before_any_completed_trial(tmp_path, predictions):
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path)
    x, y = _blobs(9, 1)
    with pytest.raises(ValueError, match="no trial has completed"):
        tuner.evaluate(x, y)
    assert predictions == []
    assert load_evaluation(tuner.project_dir) is None
    assert not [f for _, _, files in os.walk(tmp_path) for f in files if f.endswith(TEST_SUFFIX)]


# -- the records ----------------------------------------------------------------------------


def test_tensorboard_records_under_each_trial(cls_search, cls_eval, reference):
    tuner, _, y = cls_search
    for trial_id, _, probs in reference:
        run_dir = trial_run_dir(tuner.tensorboard_dir, trial_id)
        assert any(f.endswith(".ktplus-session") for f in os.listdir(run_dir))  # the HParams session's run
        run = _events(run_dir)
        row = cls_eval.set_index("trial_id").loc[trial_id]
        for name in CLASSIFICATION_METRICS:
            (value,) = run[f"test/{name}"]
            assert value.metadata.plugin_data.plugin_name == "scalars"
            assert float(tensor_util.make_ndarray(value.tensor)) == pytest.approx(row[name], rel=1e-6)
        pred = probs.argmax(axis=1)
        report = skm.classification_report(y, pred, labels=LABELS, output_dict=True, zero_division=0)
        (text,) = run["test/classification_report"]
        table = tensor_util.make_ndarray(text.tensor).item().decode()
        assert text.metadata.plugin_data.plugin_name == "text"
        for label in LABELS:
            r = report[str(label)]
            assert (f"| {label} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1-score']:.4f} | "
                    f"{int(r['support'])} |") in table
        (img,) = run["test/confusion_matrix"]
        assert img.metadata.plugin_data.plugin_name == "images"
        width, height, png = tensor_util.make_ndarray(img.tensor)
        assert mpimg.imread(io.BytesIO(png), format="png").shape[:2] == (int(height), int(width))
        for label in LABELS:
            (curve,) = run[f"test/pr_curve/{label}"]
            assert curve.metadata.plugin_data.plugin_name == "pr_curves"
            data = tensor_util.make_ndarray(curve.tensor)
            assert data.shape == (6, 201)  # tp, fp, tn, fn, precision, recall at 201 thresholds
            positive = y == label
            assert data[0, 0] == positive.sum() and data[1, 0] == (~positive).sum()
            at_half = probs[:, label] >= 0.5
            assert data[0, 100] == (positive & at_half).sum() and data[1, 100] == (~positive & at_half).sum()


def test_test_metrics_join_the_hparams_experiment(cls_search, cls_eval):
    tuner, _, _ = cls_search
    root = tuner.tensorboard_dir
    (name,) = [f for f in os.listdir(root) if f.endswith(".ktplus-experiment")]
    tags = set()
    for event in event_file_loader.EventFileLoader(os.path.join(root, name)).Load():
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "hparams":
                experiment = hparams_metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)
                tags |= {m.name.tag for m in experiment.metric_infos}
    assert {f"test/{m}" for m in CLASSIFICATION_METRICS} <= tags
    assert "score" in tags  # the search's own metrics stay


def test_reevaluation_replaces_the_previous_records(cls_search, cls_eval):
    tuner, x, y = cls_search
    again = tuner.evaluate(x, y, num_models=2)  # the same evaluation: the other tests' records stay valid
    assert again.equals(cls_eval)
    for trial_id in again["trial_id"]:
        run_dir = trial_run_dir(tuner.tensorboard_dir, trial_id)
        assert len([f for f in os.listdir(run_dir) if f.endswith(TEST_SUFFIX)]) == 1
        assert len(_events(run_dir)["test/accuracy"]) == 1


def test_json_round_trip(cls_search, cls_eval, reference):
    tuner, _, y = cls_search
    with open(os.path.join(tuner.project_dir, EVALUATION_FILE)) as f:
        json.load(f)  # strict JSON on disk
    record = load_evaluation(tuner.project_dir)
    assert record["task"] == "classification" and record["n_samples"] == len(y)
    assert [m["trial_id"] for m in record["models"]] == list(cls_eval["trial_id"])
    for m, (_, _, probs), (_, row) in zip(record["models"], reference, cls_eval.iterrows()):
        pred = probs.argmax(axis=1)
        assert m["metrics"] == pytest.approx({k: row[k] for k in CLASSIFICATION_METRICS})
        assert m["labels"] == LABELS
        assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=LABELS).tolist()
        report = skm.classification_report(y, pred, labels=LABELS, output_dict=True, zero_division=0)
        assert m["per_class"].keys() == report.keys()
        for key, expected in report.items():
            assert m["per_class"][key] == pytest.approx(expected), key


def test_format_evaluation_prints_every_part(cls_search, cls_eval):
    tuner, _, _ = cls_search
    record = load_evaluation(tuner.project_dir)
    text = format_evaluation(record, class_names=["setosa", "versicolor", "virginica"])
    for m in record["models"]:
        assert f"trial {m['trial_id']}" in text
        assert f"{m['metrics']['f1_macro']:.4f}" in text
        row = m["confusion_matrix"][1]
        assert any(line.split() == ["versicolor", *map(str, row)] for line in text.splitlines())
        p = m["per_class"]["2"]
        assert any(line.split()[:4] == ["virginica", f"{p['precision']:.4f}", f"{p['recall']:.4f}",
                                        f"{p['f1-score']:.4f}"] for line in text.splitlines())
    for name in CLASSIFICATION_METRICS:
        assert name in text
    with pytest.raises(ValueError, match="`class_names`"):
        format_evaluation(record, class_names=["a", "b"])
