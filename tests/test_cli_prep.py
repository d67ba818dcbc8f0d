"""``ktplus search --normalize/--augment/--class-weight``: the model's own data
preparation, driven through the command's entry point.

Two searches are shared by the module: a conv search of digits with every
preparation tuned, and a cross-validated search of iris with the default
normalization and an export. Bad input runs in-process and stops before
TensorFlow work; one subprocess checks that it stops before TensorFlow
loads.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ktplus
import ktplus.cli
from ktplus import datasets
from ktplus.cli._data import augment_ranges, prep_options, shape_for

TUNED = ["--normalize", "tune", "--augment", "tune", "--class-weight", "tune"]
DIGITS_CONV = ["--family", "conv", *TUNED, "--trials", "2", "--epochs", "1"]
IRIS_CV = ["--data", "iris", "--cv", "2", "--trials", "1", "--epochs", "1"]


def run(*argv):
    """``ktplus.cli.main(argv)`` -> (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ktplus.cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def one_line_error(result, *needles):
    code, _, err = result
    assert code == 2, result
    err = err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and err.startswith("ktplus"), err
    assert all(n in err for n in needles), err
    return err


def listing(root):
    return {str(p): p.stat().st_mtime_ns for p in Path(root).rglob("*")}


def normalization_layer(model):
    """The Normalization layer of a model, looking inside nested models (an export's)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            return layer
        if isinstance(layer, keras.Model):
            found = normalization_layer(layer)
            if found is not None:
                return found
    return None


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A 2-trial conv search of digits with --normalize, --augment and --class-weight tuned."""
    root = tmp_path_factory.mktemp("prep_digits")
    result = run("search", *DIGITS_CONV, "--directory", root)
    assert result[0] == 0, result[2]
    return argparse.Namespace(root=root, out=result[1], project=root / "digits")


@pytest.fixture(scope="module")
def iris_cv(tmp_path_factory):
    """A 2-fold cross-validated search of iris (default --normalize) with an export."""
    root = tmp_path_factory.mktemp("prep_iris")
    result = run("search", *IRIS_CV, "--directory", root / "o", "--export", root / "model.keras")
    assert result[0] == 0, result[2]
    return argparse.Namespace(root=root, out=result[1], project=root / "o" / "iris", model=root / "model.keras")


# -- the tuned preparation reaches every trial ---------------------------------------------------------

def test_tuned_preparation_is_in_the_search_space_with_ranges_suited_to_8x8_images(digits):
    space = {hp["config"]["name"]: hp for hp in
             json.loads((digits.project / "oracle.json").read_text())["hyperparameters"]["space"]}
    assert space["normalization"]["config"]["values"] == ["none", "standardize", "minmax"]
    assert space["augment_flip"]["config"]["values"] == ["none", "horizontal"]
    assert space["class_weight"]["config"]["values"] == ["none", "balanced"]
    ranges = {n: (space[n]["config"]["min_value"], space[n]["config"]["max_value"])
              for n in ("augment_rotation", "augment_zoom", "augment_translation", "augment_crop")}
    assert ranges == {"augment_rotation": (0.0, 0.1), "augment_zoom": (0.0, 0.2),
                      "augment_translation": (0.0, 0.25), "augment_crop": (0.0, 0.25)}  # 2 of 8 pixels
    assert "augment_contrast" not in space and "augment_noise" not in space


def test_every_trial_and_the_leaderboard_carry_the_preparation_values(digits):
    names = ("normalization", "augment_flip", "augment_rotation", "augment_zoom", "augment_translation",
             "augment_crop", "class_weight")
    for trial in sorted(digits.project.glob("trial_*/trial.json")):
        values = json.loads(trial.read_text())["hyperparameters"]["values"]
        assert set(names) <= set(values), values
        assert values["normalization"] in ("none", "standardize", "minmax")
        assert values["class_weight"] in ("none", "balanced")
    header = digits.out.split("Leaderboard")[1].splitlines()[1].split()
    assert set(names) <= set(header)
    assert "search of conv models on digits" in digits.out
    assert "normalization tuned, image augmentation tuned, class weights tuned" in digits.out


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer:UserWarning")  # checkpoints
def test_the_trained_models_hold_the_trials_preparation_layers(digits):
    hm = ktplus.ConvHyperModel(input_shape=(8, 8, 1), num_classes=10, normalization=[None, "standardize", "minmax"],
                               **augment_ranges(8, 8), class_weight=[None, "balanced"])
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=2, directory=str(digits.root),
                                project_name="digits")
    for trial in tuner.oracle.trials.values():
        model = tuner.load_model(trial)
        names = {layer.name for layer in model.layers}
        values = trial.hyperparameters.values
        assert (values["normalization"] in names) == (values["normalization"] != "none")
        assert ("augment_flip" in names) == (values["augment_flip"] != "none")
        assert ("augment_rotation" in names) == (values["augment_rotation"] > 0)


# -- resuming ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("changed", "flag"), [
    (["--normalize", "standardize"], "--normalize"),
    (["--augment", "none"], "--augment"),
    (["--class-weight", "balanced"], "--class-weight"),
])
def test_resuming_with_other_preparation_is_refused_in_one_line(digits, changed, flag):
    argv = list(DIGITS_CONV)
    i = argv.index(changed[0])
    argv[i:i + 2] = changed
    before = listing(digits.root)
    err = one_line_error(run("search", *argv, "--directory", digits.root), "different search space", flag)
    assert "--overwrite" in err
    assert listing(digits.root) == before


def test_resuming_with_the_same_preparation_works(digits):
    trial = (digits.project / "trial_0" / "trial.json").read_bytes()
    code, out, err = run("search", *DIGITS_CONV, "--directory", digits.root)
    assert code == 0, err
    assert "Leaderboard (2 trials" in out and "trial 1/2" not in out
    assert (digits.project / "trial_0" / "trial.json").read_bytes() == trial


# -- --cv: each fold's statistics; the export takes raw features ------------------------------------

@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer:UserWarning")
def test_cv_trial_models_normalize_with_a_folds_training_part_not_all_rows(iris_cv):
    from ktplus.evaluation._cv import make_folds

    data = datasets.load("iris")
    assert "inputs standardized in the model" in iris_cv.out
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3, normalization="standardize")
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=str(iris_cv.root / "o"),
                                project_name="iris")
    (trial,) = tuner.oracle.trials.values()
    assert trial.hyperparameters.values["normalization"] == "standardize"  # the tabular default
    layer = normalization_layer(tuner.load_model(trial))
    assert layer is not None and layer.name == "standardize"
    mean, variance = np.ravel(layer.mean), np.ravel(layer.variance)
    folds = make_folds(2, data.x, data.y, None, 0)  # the tuner's folds: seed 0
    train_means = [data.x[f.train].mean(axis=0) for f in folds]
    assert any(np.allclose(mean, m, rtol=1e-5) for m in train_means), (mean, train_means)
    assert not np.allclose(mean, data.x.mean(axis=0), rtol=1e-3)  # not the statistics of all the rows
    fold = next(f for f, m in zip(folds, train_means) if np.allclose(mean, m, rtol=1e-5))
    np.testing.assert_allclose(variance, data.x[fold.train].var(axis=0), rtol=1e-4)


def test_export_normalizes_inside_and_predict_takes_raw_features(iris_cv, tmp_path):
    import keras

    data = datasets.load("iris")
    with zipfile.ZipFile(iris_cv.model) as z:
        meta = json.loads(z.read("ktplus.json"))
    assert meta["normalization"] == "standardize" and "standardized" not in meta
    model = keras.models.load_model(iris_cv.model, compile=False)
    layer = normalization_layer(model)
    assert layer.name == "standardize"  # the hypermodel's own layer, refit on the export's rows
    np.testing.assert_allclose(np.ravel(layer.mean), data.x.mean(axis=0), rtol=1e-5)  # the refit rows: all
    np.savez(tmp_path / "raw.npz", x=data.x)
    code, out, err = run("predict", iris_cv.model, tmp_path / "raw.npz")
    assert code == 0, err
    preds = pd.read_csv(io.StringIO(out))
    proba = model.predict(data.x, verbose=0)
    np.testing.assert_allclose(preds[["proba_0", "proba_1", "proba_2"]], proba, atol=1e-5)
    scaled = (data.x - data.x.mean(axis=0)) / data.x.std(axis=0)  # the model scales: raw rows differ
    assert not np.allclose(model.predict(scaled, verbose=0), proba, atol=1e-3)


# -- defaults and ranges, without a search ------------------------------------------------------------

def _args(**kw):
    base = {"normalize": None, "augment": "none", "class_weight": "none"}
    return argparse.Namespace(**{**base, **kw})


def test_normalize_defaults_to_standardize_for_tables_and_none_for_images():
    iris, digits = datasets.load("iris"), datasets.load("digits")
    assert prep_options(_args(), iris, iris.x, "dense") == {"normalization": "standardize"}
    for family in ("dense", "conv", "auto"):
        x, fam = shape_for(family, digits)
        assert prep_options(_args(), digits, x, fam) == {"normalization": None}
    assert prep_options(_args(normalize="none"), iris, iris.x, "dense") == {"normalization": None}
    assert prep_options(_args(normalize="tune"), digits, digits.x, "dense")["normalization"] == [
        None, "standardize", "minmax"]


def test_augment_ranges_shift_at_least_two_pixels_within_a_quarter():
    assert augment_ranges(8, 8)["augment_translation"] == (0.0, 0.25)
    assert augment_ranges(12, 16)["augment_crop"] == (0.0, 0.167)  # 2 / 12, rounded up
    assert augment_ranges(28, 28)["augment_translation"] == (0.0, 0.1)
    assert augment_ranges(4, 64)["augment_crop"] == (0.0, 0.25)
    rng = np.random.default_rng(0)
    images = argparse.Namespace(name="imgs", image_shape=None, task="classification",
                                x=rng.normal(size=(6, 12, 16, 3)))
    opts = prep_options(_args(augment="tune"), images, images.x, "residual")
    assert opts["augment_flip"] == [None, "horizontal"] and opts["augment_zoom"] == (0.0, 0.2)
    assert opts["augment_translation"] == (0.0, 0.167) and opts["normalization"] is None


# -- bad input: one line, non-zero, nothing written, before TensorFlow ---------------------------------

BAD = [
    (["--data", "iris", "--augment", "tune"], ("--augment tune", "'iris' is tabular", "2D images")),
    (["--data", "iris", "--family", "auto", "--augment", "tune"], ("--augment tune", "tabular")),
    (["--family", "dense", "--augment", "tune"], ("--augment tune", "--family dense", "conv, residual or auto")),
    (["--data", "seq.npz", "--family", "conv", "--augment", "tune"], ("--augment tune", "sequences")),
    (["--data", "iris", "--task", "regression", "--class-weight", "balanced"],
     ("--class-weight balanced", "classification", "regression")),
    (["--data", "iris", "--task", "regression", "--class-weight", "tune"], ("--class-weight tune",)),
    (["--normalize", "zscore"], ("--normalize", "zscore")),
    (["--augment", "flip"], ("--augment",)),
]


@pytest.mark.parametrize(("argv", "needles"), BAD, ids=[f"{i}-{b[1][0]}" for i, b in enumerate(BAD)])
def test_bad_preparation_is_one_line_nonzero_and_writes_nothing(tmp_path, monkeypatch, argv, needles):
    np.savez(tmp_path / "seq.npz", x=np.zeros((20, 10, 3)), y=np.arange(20) % 2)
    monkeypatch.chdir(tmp_path)
    before = listing(tmp_path)
    one_line_error(run("search", *argv, "--directory", "o"), *needles)
    assert listing(tmp_path) == before


def test_bad_preparation_stops_before_tensorflow_loads(tmp_path):
    code = ("import sys, contextlib, io, ktplus.cli\n"
            "for argv in (['--data', 'iris', '--augment', 'tune'], ['--family', 'dense', '--augment', 'tune'],\n"
            "             ['--data', 'iris', '--task', 'regression', '--class-weight', 'balanced']):\n"
            "    with contextlib.redirect_stderr(io.StringIO()):\n"
            "        assert ktplus.cli.main(['search', *argv]) == 2, argv\n"
            "loaded = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
            "assert not loaded, loaded[:5]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not list(tmp_path.iterdir())
