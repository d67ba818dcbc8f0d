"""``ktplus search --cv/--test-split/--export``, ``ktplus report`` of the test
evaluation and ``ktplus predict``, driven through the command's entry point.

One cross-validated search with a test split and an export is shared by the
module (breast cancer as a CSV with text labels); the bad inputs run
in-process and stop before TensorFlow work.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ktplus.cli
from ktplus import datasets
from ktplus.evaluation._heldout import load_evaluation
from ktplus.results import load_results

CLASSES = np.array(["benign", "malignant"])
TEST_SPLIT = 0.25


def run(*argv):
    """``ktplus.cli.main(argv)`` -> (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ktplus.cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def one_line_error(result, needle):
    code, _, err = result
    assert code not in (0, None), result
    err = err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and err.startswith("ktplus") and needle in err, err
    return err


def listing(*dirs):
    return {str(p): p.stat().st_mtime_ns for d in dirs for p in Path(d).rglob("*")}


def write_csv(path):
    data = datasets.load("breast_cancer")
    frame = pd.DataFrame(data.x, columns=[f"f{i}" for i in range(data.x.shape[1])])
    frame["diagnosis"] = CLASSES[data.y]
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """``--cv 2 --test-split 0.25 --export`` on a CSV whose classes are text."""
    root = tmp_path_factory.mktemp("evaluation")
    frame = write_csv(root / "bc.csv")
    result = run("search", "--data", root / "bc.csv", "--target", "diagnosis", "--cv", "2", "--test-split",
                 str(TEST_SPLIT), "--export", root / "model.keras", "--trials", "2", "--epochs", "2",
                 "--directory", root / "out")
    assert result[0] == 0, result[2]
    return argparse.Namespace(root=root, frame=frame, out=result[1], project=root / "out" / "bc",
                              model=root / "model.keras")


def split_rows(frame):
    """The non-test and test rows, as the command holds them out."""
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(frame)), test_size=TEST_SPLIT, random_state=0,
                            stratify=frame["diagnosis"])


def test_cv_search_scores_every_trial_on_the_folds(search):
    assert "426 samples in cross-validation, 143 held out for test" in search.out
    assert "2-fold cross-validated val_accuracy" in search.out
    results = load_results(search.project)
    assert len(results) == 2 and (results["folds"] == 2).all() and results["score_std"].notna().all()


def test_test_split_prints_and_records_the_best_models_test_evaluation(search):
    assert "Held-out evaluation: classification, 143 samples" in search.out
    assert "per class" in search.out and "confusion matrix" in search.out
    assert "malignant" in search.out.split("Held-out evaluation")[1]  # the file's class names
    record = load_evaluation(search.project)
    best = load_results(search.project)["trial_id"][0]
    assert record["n_samples"] == 143 and record["models"][0]["trial_id"] == best
    matrix = np.array(record["models"][0]["confusion_matrix"])
    _, test = split_rows(search.frame)
    truth = search.frame["diagnosis"].to_numpy()[test]
    assert matrix.sum(axis=1).tolist() == [int((truth == c).sum()) for c in CLASSES]  # stratified, held out


def test_report_shows_the_recorded_evaluation_after_the_leaderboard(search):
    code, out, err = run("report", search.project)
    assert code == 0, err
    board, evaluation = out.split("Held-out evaluation")
    assert "2 trials in" in board and "score_std" in board
    assert "confusion matrix" in evaluation and "malignant" in evaluation and "accuracy" in evaluation
    code, out, _ = run("report", search.project, "--format", "json")
    assert code == 0 and len(json.loads(out)) == 2  # machine-readable formats stay the leaderboard alone


def test_export_loads_in_a_fresh_process_and_predicts_on_raw_features_like_ktplus_predict(search, tmp_path):
    frame = search.frame
    shuffled = frame.drop(columns=["diagnosis"]).sample(frac=1.0, axis=1, random_state=0)  # any column order
    shuffled.to_csv(tmp_path / "raw.csv", index=False)
    code, _, err = run("predict", search.model, tmp_path / "raw.csv", "--output", tmp_path / "preds.csv")
    assert code == 0, err
    preds = pd.read_csv(tmp_path / "preds.csv")
    assert list(preds.columns) == ["prediction", "proba_benign", "proba_malignant"]
    assert set(preds["prediction"]) <= set(CLASSES)
    np.testing.assert_allclose(preds[["proba_benign", "proba_malignant"]].sum(axis=1), 1.0, atol=1e-5)
    assert (preds["prediction"] == frame["diagnosis"]).mean() > 0.7  # raw features, scaled inside the model

    code = ("import sys, numpy as np, pandas as pd, keras\n"
            f"model = keras.models.load_model({str(search.model)!r})\n"
            f"x = pd.read_csv({str(tmp_path / 'raw.csv')!r})[[f'f{{i}}' for i in range(30)]]\n"
            "net = [layer for layer in model.layers if isinstance(layer, keras.Model)][0]\n"
            "norm = [layer for layer in net.layers if isinstance(layer, keras.layers.Normalization)][0]\n"
            f"np.savez({str(tmp_path / 'fresh.npz')!r}, proba=model.predict(x.to_numpy('float32'), verbose=0),\n"
            "         mean=np.ravel(norm.mean), variance=np.ravel(norm.variance))\n"
            "assert not [m for m in sys.modules if m.startswith('ktplus')]\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = np.load(tmp_path / "fresh.npz")
    np.testing.assert_allclose(fresh["proba"], preds[["proba_benign", "proba_malignant"]], atol=1e-5)
    rest, _ = split_rows(frame)  # the model's own normalization, refit on all the non-test rows
    x_rest = frame.drop(columns=["diagnosis"]).to_numpy("float32")[rest]
    np.testing.assert_allclose(fresh["mean"], x_rest.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(fresh["variance"], x_rest.std(axis=0) ** 2, rtol=1e-3)


def test_export_file_carries_what_predict_needs(search):
    with zipfile.ZipFile(search.model) as z:
        assert {"config.json", "model.weights.h5", "ktplus.json"} <= set(z.namelist())
        meta = json.loads(z.read("ktplus.json"))
    assert meta["feature_columns"] == [f"f{i}" for i in range(30)] and meta["target"] == "diagnosis"
    assert meta["class_names"] == ["benign", "malignant"] and meta["task"] == "classification"
    assert meta["input_shape"] == [30] and meta["normalization"] == "standardize" and meta["refit_samples"] == 426
    assert "Exported the best configuration" in search.out and str(search.model) in search.out


def test_predict_reads_npz_and_prints_without_output(search, tmp_path):
    x = search.frame.drop(columns=["diagnosis"]).to_numpy()[:20]
    np.savez(tmp_path / "rows.npz", x=x)
    code, out, err = run("predict", search.model, tmp_path / "rows.npz")
    assert code == 0, err
    from_npz = pd.read_csv(io.StringIO(out))
    search.frame.head(20).to_csv(tmp_path / "rows.csv", index=False)  # with the target column: ignored
    code, out, err = run("predict", search.model, tmp_path / "rows.csv")
    assert code == 0, err
    pd.testing.assert_frame_equal(from_npz, pd.read_csv(io.StringIO(out)))
    assert len(from_npz) == 20 and not list(tmp_path.glob("*preds*"))


# -- preprocessing folded into the exported model, without a search ------------------------------

@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras saving, numpy 2
def test_exported_model_reshapes_raw_rows_and_keeps_the_models_normalization(tmp_path):
    import keras

    from ktplus.cli._export import model_normalization, save_export, wrap

    rng = np.random.default_rng(0)
    x = rng.normal(loc=5.0, scale=3.0, size=(16, 8)).astype("float32")
    norm = keras.layers.Normalization(axis=-1, name="standardize")
    norm.adapt(x.reshape(-1, 4, 2))
    inputs = keras.Input((4, 2))
    net = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(norm(inputs))))
    net.compile("adam", "mse")
    assert model_normalization(net) == "standardize"
    meta = {"format": "ktplus-export", "version": 1, "task": "regression", "class_names": None,
            "target": None, "feature_columns": None, "input_shape": [8]}
    exported = wrap(net, (8,), (4, 2))
    expected = net.predict(x.reshape(-1, 4, 2), verbose=0)[:, 0]
    np.testing.assert_allclose(exported.predict(x, verbose=0)[:, 0], expected, rtol=1e-4, atol=1e-5)
    save_export(exported, str(tmp_path / "reg.keras"), meta)
    loaded = keras.models.load_model(tmp_path / "reg.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0)[:, 0], expected, rtol=1e-4, atol=1e-5)
    pd.DataFrame(x, columns=list("abcdefgh")).to_csv(tmp_path / "rows.csv", index=False)  # no names: in order
    code, out, err = run("predict", tmp_path / "reg.keras", tmp_path / "rows.csv")
    assert code == 0, err
    got = pd.read_csv(io.StringIO(out))
    assert list(got.columns) == ["prediction"]
    np.testing.assert_allclose(got["prediction"], expected, rtol=1e-4, atol=1e-5)


def test_splits_hold_out_stratified_test_rows_and_keep_them_raw():
    from ktplus.cli._splits import make_splits

    data = datasets.load("iris")
    data.x[:, 0] = np.arange(len(data.x))  # the first feature names the row

    def rows(part):
        return set(part[0][:, 0].astype(int).tolist())

    args = argparse.Namespace(test_split=0.2, cv=None, validation_split=None, seed=0)
    plain = make_splits(args, data, data.x)
    test, fit, val = rows(plain.test), rows(plain.fit), rows(plain.val)
    assert len(test) == 30 and not test & (fit | val) and len(fit | val) == 120
    assert np.bincount(plain.test[1]).tolist() == [10, 10, 10]  # stratified
    for part in (plain.fit, plain.val, plain.test, plain.rest):  # raw: the model scales (--normalize)
        np.testing.assert_array_equal(part[0], data.x[part[0][:, 0].astype(int)])
    args.cv = 3
    folded = make_splits(args, data, data.x)
    assert folded.val is None and rows(folded.test) == test and len(folded.fit[0]) == 120
    np.testing.assert_array_equal(folded.fit[0], data.x[folded.fit[0][:, 0].astype(int)])


# -- bad input: one line, non-zero, nothing written ---------------------------------------------------

def _bad_files(tmp_path, model):
    rng = np.random.default_rng(0)
    (tmp_path / "text.keras").write_text("not a model")
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as z:
        z.writestr("notes.txt", "a zip, but not a Keras model")
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(tmp_path / "plain.keras", "w") as dst:
        for name in src.namelist():
            if name != "ktplus.json":
                dst.writestr(name, src.read(name))
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(tmp_path / "broken.keras", "w") as dst:
        dst.writestr("config.json", "{}")
        dst.writestr("model.weights.h5", b"garbage")
        dst.writestr("ktplus.json", src.read("ktplus.json"))
    cols = pd.DataFrame(rng.normal(size=(5, 30)), columns=[f"f{i}" for i in range(30)])
    cols.drop(columns=["f3"]).assign(color=1.0).to_csv(tmp_path / "cols.csv", index=False)
    np.savez(tmp_path / "short.npz", x=rng.normal(size=(5, 29)))
    np.savez(tmp_path / "nox.npz", features=rng.normal(size=(5, 30)))
    cols.to_csv(tmp_path / "ok.csv", index=False)
    (tmp_path / "rows.txt").write_text("1,2\n")


BAD = [
    (["search", "--test-split", "1.5"], "--test-split"),
    (["search", "--test-split", "0"], "--test-split"),
    (["search", "--cv", "1"], "--cv"),
    (["search", "--cv", "3", "--validation-split", "0.2"], "--validation-split"),
    (["search", "--cv", "3", "--tuner", "hyperband"], "--tuner hyperband"),
    (["search", "--export", "model.h5"], ".keras"),
    (["search", "--export", "nowhere/model.keras"], "no such directory"),
    (["search", "--data", "iris", "--cv", "60"], "--cv 60"),
    (["search", "--data", "iris", "--test-split", "0.01"], "--test-split"),
    (["predict", "missing.keras", "ok.csv"], "no such file"),
    (["predict", "text.keras", "ok.csv"], "not a Keras model"),
    (["predict", "other.keras", "ok.csv"], "not a Keras model"),
    (["predict", "plain.keras", "ok.csv"], "without ktplus's metadata"),
    (["predict", "broken.keras", "ok.csv"], "cannot load the Keras model"),
    (["predict", "MODEL", "cols.csv"], "missing f3; unexpected color"),
    (["predict", "MODEL", "short.npz"], "29 features per row, but the model takes 30"),
    (["predict", "MODEL", "nox.npz"], "no array 'x'"),
    (["predict", "MODEL", "rows.txt"], "unsupported file type"),
    (["predict", "MODEL", "ok.csv", "--output", "nowhere/preds.csv"], "no such directory"),
]


@pytest.mark.parametrize(("argv", "needle"), BAD, ids=[f"{i}-{b[1][:24]}" for i, b in enumerate(BAD)])
def test_bad_input_is_one_line_nonzero_and_writes_nothing(search, tmp_path, monkeypatch, argv, needle):
    _bad_files(tmp_path, search.model)
    monkeypatch.chdir(tmp_path)
    before = listing(tmp_path, search.root)
    one_line_error(run(*[str(search.model) if a == "MODEL" else a for a in argv]), needle)
    assert listing(tmp_path, search.root) == before


def test_resuming_with_another_split_is_refused_before_anything_changes(search):
    before = listing(search.root)
    err = one_line_error(run("search", "--data", search.root / "bc.csv", "--target", "diagnosis", "--cv", "3",
                             "--test-split", str(TEST_SPLIT), "--directory", search.root / "out"), "--cv 2")
    assert "--cv 3" in err
    one_line_error(run("search", "--data", search.root / "bc.csv", "--target", "diagnosis", "--directory",
                       search.root / "out"), "no --test-split")
    assert listing(search.root) == before
