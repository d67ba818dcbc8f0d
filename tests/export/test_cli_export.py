"""The command line's exports: ``ktplus search --export model.onnx`` then
``ktplus predict``, ``ktplus export DIR PATH`` of a finished search, and bad
paths and formats (one line, exit 2, nothing written), driven through the
command's entry point in this process.

One tiny search (iris as a CSV with text labels, the default
standardization) is shared by the module.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ktplus
import ktplus.cli
from ktplus import datasets
from ktplus._export import load_runner
from ktplus.results import load_results

SPECIES = np.array(["setosa", "versicolor", "virginica"])
COLUMNS = ["sepal_l", "sepal_w", "petal_l", "petal_w"]


def run(*argv):
    """``ktplus.cli.main(argv)`` -> (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ktplus.cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def listing(*dirs):
    return {str(p): p.stat().st_mtime_ns for d in dirs for p in Path(d).rglob("*")}


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_export")
    data = datasets.load("iris")
    frame = pd.DataFrame(data.x, columns=COLUMNS).assign(species=SPECIES[data.y])
    frame.to_csv(root / "iris.csv", index=False)
    result = run("search", "--data", root / "iris.csv", "--target", "species", "--trials", "2", "--epochs", "2",
                 "--directory", root / "runs", "--export", root / "model.onnx")
    assert result[0] == 0, result[2]
    return argparse.Namespace(root=root, frame=frame, out=result[1], project=root / "runs" / "iris",
                              model=root / "model.onnx")


def test_search_exports_onnx_that_predict_reads(search, tmp_path):
    record = json.loads((search.root / "model.onnx.json").read_text())
    assert record["export_format"] == "onnx" and record["verification"]["max_abs_diff"] <= 1e-4
    assert record["verification"]["runtime"].startswith("onnxruntime") and record["verification"]["sample"] == "given"
    assert record["class_names"] == list(SPECIES) and record["feature_columns"] == COLUMNS
    assert record["input"]["shape"] == [4] and record["normalization"] == "standardize"
    assert len(record["normalization_statistics"][0]["mean"]) == 4
    assert record["objective"]["name"] == "val_accuracy" and record["refit_samples"] == 150
    assert "to " + str(search.model) + " (onnx; checked with onnxruntime" in search.out
    rows = search.frame.sample(frac=1.0, random_state=0)[["petal_w", "species", *COLUMNS[:3]]]  # any order
    rows.to_csv(tmp_path / "rows.csv", index=False)
    code, _, err = run("predict", search.model, tmp_path / "rows.csv", "--output", tmp_path / "preds.csv")
    assert code == 0, err
    preds = pd.read_csv(tmp_path / "preds.csv")
    assert list(preds.columns) == ["prediction", *(f"proba_{s}" for s in SPECIES)]
    raw = rows[COLUMNS].to_numpy("float32")
    direct = load_runner(str(search.model), "onnx")(raw)  # onnxruntime on raw features: scaled inside
    np.testing.assert_allclose(preds[[f"proba_{s}" for s in SPECIES]].to_numpy(), direct, atol=1e-6)
    assert list(preds["prediction"]) == list(SPECIES[direct.argmax(axis=1)])


def test_export_of_a_finished_search_is_its_best_trials_model(search, tmp_path):
    frame = load_results(search.project)
    best = frame.iloc[0]
    code, out, err = run("export", search.project, tmp_path / "best.tflite")
    assert code == 0, err
    assert f"Exported trial {best['trial_id']}" in out
    record = json.loads((tmp_path / "best.tflite.json").read_text())
    assert record["trial_id"] == best["trial_id"] and record["objective"]["value"] == pytest.approx(best["score"])
    assert record["export_format"] == "litert" and record["refit_samples"] is None
    # the best trial's own weights: its accuracy on its validation rows is the recorded score
    from ktplus.cli._splits import make_splits

    data = datasets.load_file(str(search.root / "iris.csv"), "species")
    splits = make_splits(argparse.Namespace(test_split=None, cv=None, validation_split=None, seed=0), data, data.x)
    (xv, yv) = splits.val
    np.savez(tmp_path / "val.npz", x=xv)
    code, out, err = run("predict", tmp_path / "best.tflite", tmp_path / "val.npz")
    assert code == 0, err
    labels = pd.read_csv(io.StringIO(out))["prediction"].to_numpy()
    assert np.mean(labels == np.asarray(data.class_names)[yv]) == pytest.approx(best["score"], abs=1e-6)


def test_predict_reads_a_savedmodel_with_several_regression_targets(tmp_path):
    import keras

    inputs = keras.Input((3,), name="x")
    net = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Normalization(mean=1.0, variance=4.0)(inputs)))
    ktplus.export(net, tmp_path / "reg", targets=["price", "count"])
    rows = np.arange(12, dtype="float32").reshape(4, 3)
    np.savez(tmp_path / "rows.npz", x=rows)
    code, out, err = run("predict", tmp_path / "reg", tmp_path / "rows.npz")
    assert code == 0, err
    got = pd.read_csv(io.StringIO(out))
    assert list(got.columns) == ["prediction_price", "prediction_count"]
    np.testing.assert_allclose(got.to_numpy(), net.predict(rows, verbose=0), atol=1e-4)


BAD = [
    (["search", "--export", "model.h5"], "ktplus search: --export: model.h5: unknown suffix '.h5'"),
    (["search", "--format", "onnx"], "--format onnx is the --export format; give --export PATH"),
    (["search", "--export", "m.onnx", "--format", "litert"], "the suffix .onnx is the onnx format, not litert"),
    (["search", "--export", "m.onnx", "--format", "tflite"], "argument --format: invalid choice"),
    (["search", "--export", "nowhere/m.onnx"], "no such directory"),
    (["search", "--export", "taken"], "not a SavedModel"),
    (["export", "PROJECT", "nowhere/m.onnx"], "ktplus export: nowhere/m.onnx: no such directory"),
    (["export", "PROJECT", "m.txt"], "unknown suffix '.txt'"),
    (["export", "PROJECT", "m.keras", "--format", "onnx"], "the suffix .keras is the keras format, not onnx"),
    (["export", "missing", "m.onnx"], "ktplus export: missing: no such directory"),
    (["export", "taken", "m.onnx"], "a search's project directory"),
    (["predict", "bare.onnx", "rows.npz"], "no export record bare.onnx.json beside it"),
    (["predict", "taken", "rows.npz"], "no export record taken.json beside it"),
]


@pytest.mark.parametrize(("argv", "needle"), BAD, ids=[f"{i}-{b[1][:30]}" for i, b in enumerate(BAD)])
def test_bad_paths_and_formats_are_one_line_and_write_nothing(search, tmp_path, monkeypatch, argv, needle):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("not a SavedModel")
    (tmp_path / "bare.onnx").write_bytes((search.model).read_bytes())  # an ONNX file without its record
    np.savez(tmp_path / "rows.npz", x=np.zeros((2, 4)))
    monkeypatch.chdir(tmp_path)
    before = listing(tmp_path, search.root)
    code, out, err = run(*[str(search.project) if a == "PROJECT" else a for a in argv])
    assert code == 2 and not out, (code, out, err)
    assert len(err.strip().splitlines()) == 1 and needle in err and err.startswith("ktplus"), err
    assert listing(tmp_path, search.root) == before
