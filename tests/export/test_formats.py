"""``ktplus.export``: every format written from a tuner, reloaded with its own
runtime (Keras, TensorFlow, ONNX Runtime, the LiteRT interpreter) and
predicting as the Keras model does; data preparation inside, augmentation
absent; bad paths and formats refused before anything is written.

One tiny search per model kind, shared by the module: a conv and a residual
classifier on digits images (standardization and every image augmentation
knob on) and a dense regressor on tabular rows (min-max scaling).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ktplus
from ktplus._export import ExportError, format_of, load_runner, record_path

FORMATS = {"keras": "model.keras", "saved_model": "model", "onnx": "model.onnx", "litert": "model.tflite"}
AUGMENT = {"augment_flip": "horizontal", "augment_rotation": 0.2, "augment_zoom": 0.2,
           "augment_translation": 0.2, "augment_contrast": 0.3, "augment_crop": 0.25, "augment_noise": 0.3}


def _search(hypermodel, x, y, directory):
    tuner = ktplus.RandomSearch(hypermodel, objective="val_loss", max_trials=1, seed=0, directory=str(directory),
                                project_name="p", overwrite=True, tensorboard=False)
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    return tuner


@pytest.fixture(scope="module")
def tuners(tmp_path_factory, digits_images):
    root = tmp_path_factory.mktemp("searches")
    (x, y), _ = digits_images
    x, y = x[:240], y[:240]
    conv = ktplus.ConvHyperModel((8, 8, 1), 10, conv_blocks=1, filters=4, dense_units=8, batch_norm=True,
                                 normalization="standardize", **AUGMENT)
    residual = ktplus.ResidualHyperModel((8, 8, 1), 10, stages=1, blocks_per_stage=1, filters=4,
                                         normalization="standardize", **AUGMENT)
    rng = np.random.default_rng(0)
    xr = rng.normal(3.0, 2.0, size=(200, 6)).astype("float32")
    yr = np.stack([xr @ rng.normal(size=6), xr[:, 0] - xr[:, 1]], axis=1).astype("float32")
    dense = ktplus.DenseHyperModel((6,), task="regression", num_outputs=2, layers=1, units=8,
                                   normalization="minmax")
    return {"conv": (_search(conv, x, y, root / "conv"), x[:32]),
            "residual": (_search(residual, x, y, root / "residual"), x[:32]),
            "dense": (_search(dense, xr, yr, root / "dense"), xr[:32])}


def _runtime_predictions(path, fmt, x):
    return load_runner(str(path), fmt)(x.astype("float32"))


#: Every format for the conv classifier (augmentation on) and the dense regressor; the residual
#: classifier's Add and skip connections through ONNX here and LiteRT in the tolerance test.
CASES = [("conv", f) for f in FORMATS] + [("dense", f) for f in FORMATS] + [("residual", "onnx")]


@pytest.mark.parametrize(("kind", "fmt"), CASES, ids=[f"{k}-{f}" for k, f in CASES])
def test_every_format_reloads_and_predicts_like_the_keras_model(tuners, tmp_path, kind, fmt):
    tuner, x = tuners[kind]
    path = tmp_path / FORMATS[fmt]
    record = ktplus.export(tuner, path, x=x, targets=["sum", "diff"] if kind == "dense" else None)
    model = tuner.get_best_models(1)[0]
    expected = model.predict(x, verbose=0)
    got = _runtime_predictions(path, fmt, x)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert record["export_format"] == fmt and record["verification"]["max_abs_diff"] <= 1e-4
    assert record["verification"]["samples"] == len(x) and record["verification"]["sample"] == "given"
    on_disk = json.loads(Path(record_path(path)).read_text())
    assert on_disk == record
    best = tuner.oracle.get_best_trials(1)[0]
    assert record["trial_id"] == best.trial_id and record["objective"]["name"] == "val_loss"
    assert record["objective"]["value"] == pytest.approx(best.score)
    assert record["hyperparameters"]["learning_rate"] == best.hyperparameters.get("learning_rate")
    assert record["input"] == {"name": record["input"]["name"], "shape": list(x.shape[1:]), "dtype": "float32"}
    stats = record["normalization_statistics"]
    assert len(stats) == 1 and stats[0]["layer"] == record["normalization"]
    if kind == "dense":
        assert record["task"] == "regression" and record["targets"] == ["sum", "diff"]
        assert record["output"]["shape"] == [2] and record["normalization"] == "minmax"
        assert len(stats[0]["mean"]) == 6
    else:
        assert record["task"] == "classification" and record["class_names"] == list(range(10))
        assert record["normalization"] == "standardize"
        # augmentation acts in training (the model's own call) and is absent from the export
        assert {"augment_flip", "augment_rotation", "augment_noise"} <= {layer.name for layer in model.layers}
        assert np.abs(np.asarray(model(x, training=True)) - expected).max() > 1e-3
        np.testing.assert_allclose(_runtime_predictions(path, fmt, x), got, atol=0)  # nothing random left
        if fmt == "onnx":
            import onnx

            ops = {node.op_type for node in onnx.load(str(path)).graph.node}
            assert not {op for op in ops if "Random" in op}, ops
    assert sorted(os.listdir(tmp_path)) == sorted([path.name, Path(record_path(path)).name])  # no temp left


def test_a_bare_model_with_synthetic_rows_and_the_savedmodel_serving_signature(tuners, tmp_path):
    tuner, x = tuners["dense"]
    model = tuner.get_best_models(1)[0]
    record = ktplus.export(model, tmp_path / "sm")
    assert record["verification"]["sample"] == "synthetic" and record["verification"]["samples"] == 16
    assert record["trial_id"] is None and record["task"] is None
    import tensorflow as tf

    serve = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    assert list(serve.structured_input_signature[1]) == ["features"]  # what TF Serving and DJL feed
    out = serve(features=tf.constant(x))
    np.testing.assert_allclose(next(iter(out.values())).numpy(), model.predict(x, verbose=0), atol=1e-4)
    again = ktplus.export(model, tmp_path / "sm", x=x)  # a previous SavedModel is replaced
    assert again["verification"]["sample"] == "given" and sorted(os.listdir(tmp_path)) == ["sm", "sm.json"]


def test_a_refit_model_passed_with_its_tuner_is_the_one_exported(tuners, tmp_path):
    tuner, x = tuners["dense"]
    other = tuner.hypermodel.build(tuner.get_best_hyperparameters(1)[0])  # fresh weights
    record = ktplus.export(tuner, tmp_path / "m.onnx", model=other, x=x)
    np.testing.assert_allclose(_runtime_predictions(tmp_path / "m.onnx", "onnx", x),
                               other.predict(x, verbose=0), atol=1e-4)
    assert record["trial_id"] == tuner.oracle.get_best_trials(1)[0].trial_id
    assert record["model"] == "given (model=)"
    assert ktplus.export(tuner, tmp_path / "b.onnx", x=x)["model"] == "the best trial's checkpoint"


def test_a_difference_beyond_the_tolerance_is_an_error_naming_the_format_and_nothing_is_left(tuners, tmp_path):
    tuner, x = tuners["residual"]  # LiteRT's kernels round differently from TensorFlow's (about 1e-8 here)
    with pytest.raises(ExportError, match=r"the litert export's predictions differ from the Keras model's by up "
                                          r"to [0-9.e-]+ \(max abs difference on 32 given rows, tolerance 0\)"):
        ktplus.export(tuner, tmp_path / "m.tflite", x=x, tolerance=0.0)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("path", "fmt", "needle"), [
    ("m.h5", None, "unknown suffix '.h5'"),
    ("m.onnx", "tflite", "unknown format 'tflite'"),
    ("m.onnx", "litert", "the suffix .onnx is the onnx format, not litert"),
    ("m.bin", "keras", "needs a path ending in .keras"),
    ("nowhere/m.onnx", None, "no such directory"),
    ("taken", "onnx", "is a directory"),
    ("notes", None, "not a SavedModel"),
    ("file.txt", "saved_model", "not a directory"),
])
def test_bad_paths_and_formats_are_refused_before_anything_is_written(tuners, tmp_path, path, fmt, needle):
    (tmp_path / "taken").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    (tmp_path / "file.txt").write_text("mine")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    tuner, x = tuners["dense"]
    with pytest.raises(ExportError, match=needle) as info:
        ktplus.export(tuner, tmp_path / path, format=fmt, x=x)
    assert "\n" not in str(info.value)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_format_follows_the_path():
    assert [format_of(p) for p in ("a.keras", "a.ONNX", "a.tflite", "serving/1", "out/")] == [
        "keras", "onnx", "litert", "saved_model", "saved_model"]
    assert format_of("model.v2", "saved_model") == "saved_model" and format_of("m.bin", "onnx") == "onnx"
    assert record_path("out/sm/") == "out/sm.json" and record_path("m.onnx") == "m.onnx.json"


def _cli(code, **env):
    return subprocess.run([sys.executable, "-c", "import sys\n" + code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_a_backend_or_a_missing_package_that_cannot_write_a_format_is_named_before_writing(tmp_path):
    main = "from ktplus.cli import main\nsys.exit(main(['search', '--export', {!r}]))"
    jax = _cli(main.format(str(tmp_path / "m.tflite")), KERAS_BACKEND="jax")
    assert jax.returncode == 2 and jax.stderr.strip() == (
        "ktplus search: --export: the litert format cannot be written on the jax backend (it writes keras, "
        "saved_model, onnx); set KERAS_BACKEND=tensorflow for every format")
    blocked = _cli("sys.modules['tf2onnx'] = None  # as if not installed\n" + main.format(str(tmp_path / "m.onnx")))
    assert blocked.returncode == 2 and blocked.stderr.strip() == (
        "ktplus search: --export: the onnx format needs tf2onnx, not installed (pip install 'ktplus[export]')")
    assert os.listdir(tmp_path) == []


@pytest.mark.filterwarnings("ignore")
def test_every_export_is_verified_against_the_users_model_not_a_copy(tmp_path):
    """A layer whose state lives outside its config: a copy of the model loses it. The ONNX export
    traces the model itself (right predictions); the .keras file, which Keras writes from config and
    weights, cannot hold it: an error naming the difference, and nothing on disk."""
    import keras

    @keras.saving.register_keras_serializable(package="ktplus_tests")
    class Shift(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.offset = 0.0

        def call(self, x):
            return x + self.offset

    inputs = keras.Input((4,))
    shift = Shift()
    model = keras.Model(inputs, shift(keras.layers.Dense(2)(inputs)))
    shift.offset = 30.0
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    expected = np.asarray(model(x))
    record = ktplus.export(model, tmp_path / "m.onnx", x=x)
    assert record["verification"]["max_abs_diff"] <= 1e-4
    np.testing.assert_allclose(_runtime_predictions(tmp_path / "m.onnx", "onnx", x), expected, atol=1e-4)
    with pytest.raises(ExportError, match=r"keras export's predictions differ from the Keras model's by up to 30"):
        ktplus.export(model, tmp_path / "m.keras", x=x)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.json"]


def test_names_and_rows_that_do_not_fit_the_model_are_refused_before_writing(tuners, tmp_path):
    tuner, x = tuners["dense"]  # two regression outputs
    import tensorflow as tf

    cases = [(dict(targets=["a"]), r"targets has 1 names, but the model has 2 output columns"),
             (dict(targets="ab"), r"targets must be a list of names"),
             (dict(x=tf.data.Dataset.from_tensor_slices(x)), r"x must be rows to verify on")]
    for kwargs, needle in cases:
        with pytest.raises(ExportError, match=needle):
            ktplus.export(tuner, tmp_path / "m.onnx", **kwargs)
    conv, _ = tuners["conv"]
    with pytest.raises(ExportError, match=r"class_names has 3 names, but the model has 10 output columns"):
        ktplus.export(conv, tmp_path / "m.onnx", class_names=["a", "b", "c"])
    assert list(tmp_path.iterdir()) == []
