"""Data preparation knobs: normalization, augmentation, noise and class
weights, as fixed values, ranges and choices; statistics from the training
data only; layers active in training only; clear errors before any trial."""

from __future__ import annotations

import os

import keras
import keras_tuner
import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

import ktplus
from ktplus.hypermodels import _prep, _statistics

IMAGE = (8, 8, 1)
SMALL_CONV = {"conv_blocks": 1, "convs_per_block": 1, "filters": 4, "dense_units": 0}
SMALL_DENSE = {"layers": 1, "units": 4}


def _images(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 16, size=(n, *IMAGE)).astype("float32"), rng.integers(0, 3, n)


def _table(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(5.0, 2.0, size=(n, 6)).astype("float32")
    x[:, 5] = 3.0  # a constant feature
    return x, (x[:, 0] > 5.0).astype("int64")


def _layer_names(model):
    return {layer.name for layer in model.layers}


# -- each knob fixed, as a range, as choices ------------------------------------

FACTORS = ["augment_rotation", "augment_zoom", "augment_translation", "augment_contrast", "augment_crop"]


@pytest.mark.parametrize("knob", FACTORS)
def test_factor_knob_fixed_range_and_choices(knob):
    hp = keras_tuner.HyperParameters()
    model = ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, **{knob: 0.1}).build(hp)
    assert isinstance(hp._hps[knob][0], keras_tuner.engine.hyperparameters.Fixed) and hp.get(knob) == 0.1
    assert knob in _layer_names(model)

    hp = keras_tuner.HyperParameters()
    ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, **{knob: (0.0, 0.3)}).build(hp)
    space = hp._hps[knob][0]
    assert isinstance(space, keras_tuner.engine.hyperparameters.Float)
    assert (space.min_value, space.max_value) == (0.0, 0.3)

    hp = keras_tuner.HyperParameters()
    hm = ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, **{knob: [0.0, 0.2]})
    assert knob not in _layer_names(hm.build(hp))  # the first choice, 0: no layer
    assert hp._hps[knob][0].values == [0.0, 0.2]
    hp.values[knob] = 0.2
    assert knob in _layer_names(hm.build(hp))



@pytest.mark.parametrize("knob", [*FACTORS, "augment_noise"])
def test_none_is_off_for_a_numeric_knob_as_for_augment_flip(knob):
    hp = keras_tuner.HyperParameters()
    hm = ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, **{knob: None})
    assert knob not in _layer_names(hm.build(hp)) and knob not in hp.values
    hp = keras_tuner.HyperParameters()
    hm = ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, **{knob: [None, 0.1]})
    assert knob not in _layer_names(hm.build(hp)) and hp._hps[knob][0].values == [0.0, 0.1]
    hp.values[knob] = 0.1
    assert knob in _layer_names(hm.build(hp))

def test_flip_normalization_noise_and_class_weight_fixed_and_choices():
    hp = keras_tuner.HyperParameters()
    hm = ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, augment_flip="horizontal", normalization="minmax",
                               augment_noise=0.1, class_weight="balanced")
    names = _layer_names(hm.build(hp))
    assert {"augment_flip", "minmax", "augment_noise"} <= names
    assert {hp.get(k) for k in ("augment_flip", "normalization", "class_weight")} == {"horizontal", "minmax",
                                                                                      "balanced"}
    hp = keras_tuner.HyperParameters()
    hm = ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, augment_flip=[None, "vertical"],
                               normalization=[None, "standardize", "minmax"], augment_noise=(0.0, 0.2),
                               class_weight=[None, "balanced"])
    names = _layer_names(hm.build(hp))
    assert not names & set(_prep.PREP_LAYERS)  # every first choice is off
    assert hp._hps["normalization"][0].values == ["none", "standardize", "minmax"]
    assert hp._hps["augment_flip"][0].values == ["none", "vertical"]
    assert hp._hps["class_weight"][0].values == ["none", "balanced"]
    hp.values.update({"normalization": "standardize", "augment_flip": "vertical", "augment_noise": 0.1})
    assert {"standardize", "augment_flip", "augment_noise"} <= _layer_names(hm.build(hp))


def test_knobs_left_off_add_no_hyperparameter():
    hp = keras_tuner.HyperParameters()
    ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, augment_rotation=0.0, augment_flip=[None]).build(hp)
    assert not set(hp.values) & set(_prep.PREP_KNOBS)


def test_noise_on_tables_and_sequences():
    for hm in (ktplus.DenseHyperModel((6,), 2, **SMALL_DENSE, augment_noise=0.1),
               ktplus.ConvHyperModel((10, 3), 2, **SMALL_CONV, augment_noise=0.1),
               ktplus.ResidualHyperModel((10, 3), 2, stages=1, blocks_per_stage=1, filters=4,
                                         augment_noise=0.1)):
        assert "augment_noise" in _layer_names(hm.build(keras_tuner.HyperParameters()))


# -- normalization statistics ---------------------------------------------------

def test_standardize_and_minmax_statistics_match_numpy():
    x, y = _table()
    for mode in ("standardize", "minmax"):
        hm = ktplus.DenseHyperModel((6,), 2, **SMALL_DENSE, normalization=mode)
        hm.adapt(x, y)
        model = hm.build(keras_tuner.HyperParameters())
        out = _prep.preview(model, x, training=False)
        if mode == "standardize":
            np.testing.assert_allclose(out[:, :5].mean(0), 0.0, atol=1e-4)
            np.testing.assert_allclose(out[:, :5].std(0), 1.0, atol=1e-3)
        else:
            np.testing.assert_allclose(out[:, :5].min(0), 0.0, atol=1e-5)
            np.testing.assert_allclose(out[:, :5].max(0), 1.0, atol=1e-5)
        np.testing.assert_allclose(out[:, 5], 0.0, atol=1e-6)  # constant feature: shifted, never divided by 0


def test_statistics_of_a_dataset_match_the_arrays():
    import tensorflow as tf

    x, y = _table()
    hm = ktplus.DenseHyperModel((6,), 2, **SMALL_DENSE, normalization="standardize")
    hm.adapt(tf.data.Dataset.from_tensor_slices((x, y)).batch(7))
    np.testing.assert_allclose(hm.statistics.mean, x.mean(0, dtype="float64"), rtol=1e-6)
    np.testing.assert_allclose(hm.statistics.variance, x.var(0, dtype="float64"), rtol=1e-5, atol=1e-9)
    assert sorted(hm.statistics.labels.tolist()) == sorted(y.tolist())


@pytest.fixture(scope="module")
def table_search(tmp_path_factory):
    """A search whose validation data is shifted far from the training data."""
    x, y = _table(80)
    xv, yv = x[:30] + 100.0, y[:30]
    hm = ktplus.DenseHyperModel((6,), 2, **SMALL_DENSE, normalization=["standardize", "minmax"],
                                class_weight=[None, "balanced"])
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=3, seed=2,
                                directory=tmp_path_factory.mktemp("prep"), project_name="table")
    tuner.search(x, y, validation_data=(xv, yv), epochs=2, verbose=0)
    return tuner, x, y


def test_statistics_come_from_the_training_data_only(table_search):
    tuner, x, _ = table_search
    for model, trial in zip(tuner.get_best_models(3), tuner.oracle.get_best_trials(3)):
        mode = trial.hyperparameters.get("normalization")
        layer = model.get_layer(mode)
        expected = x.mean(0) if mode == "standardize" else x.min(0)
        np.testing.assert_allclose(np.asarray(layer.adapt_mean), expected, rtol=1e-5, atol=1e-5)


def test_search_records_the_choices_as_hyperparameters(table_search):
    tuner, _, _ = table_search
    frame = tuner.results()
    assert {"normalization", "class_weight"} <= set(frame.columns)
    assert set(frame["normalization"]) <= {"standardize", "minmax"}
    # No augmentation, no preview image in TensorBoard (tests/logging has the one with augmentation).
    runs = [os.path.join(tuner.tensorboard_dir, f"trial_{t}") for t in tuner.oracle.trials]
    assert all(os.listdir(r) for r in runs)
    assert not [n for r in runs for n in os.listdir(r) if n.endswith(".ktplus-images")]


def test_exported_model_predicts_on_raw_inputs(table_search, tmp_path):
    tuner, x, _ = table_search
    model = tuner.get_best_models(1)[0]
    path = str(tmp_path / "best.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    x_all = x[:40] * 2.0
    refit = tuner.refit(x_all, (x[:40, 0] > 5).astype("int64"), epochs=1)
    mode = tuner.oracle.get_best_trials(1)[0].hyperparameters.get("normalization")
    expected = x_all.mean(0) if mode == "standardize" else x_all.min(0)
    np.testing.assert_allclose(np.asarray(refit.get_layer(mode).adapt_mean), expected, rtol=1e-5, atol=1e-5)


def test_statistics_are_computed_once_per_search_and_per_fold(tmp_path, monkeypatch):
    calls = []
    real = _statistics.compute_statistics

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(_statistics, "compute_statistics", counting)
    x, y = _table(60)
    hm = ktplus.DenseHyperModel((6,), 2, **SMALL_DENSE, normalization="standardize", learning_rate=[1e-3, 1e-2])
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=2, directory=tmp_path, cv=2, seed=0)
    tuner.search(x, y, epochs=1, verbose=0)
    assert len(tuner.oracle.trials) == 2
    assert sorted(calls) == [(30, 6), (30, 6)]  # one per fold's training part, for both trials
    from ktplus.evaluation._cv import make_folds

    folds = [x[f.train].mean(0) for f in make_folds(2, x, y, None, tuner.search_seed)]
    for model in tuner.get_best_models(2):  # each checkpoint: the fold that trained it
        mean = np.asarray(model.get_layer("standardize").adapt_mean)
        assert any(np.allclose(mean, f, rtol=1e-5) for f in folds)
        assert not np.allclose(mean, x.mean(0), rtol=1e-4)  # a fold's statistics, not all rows'


def test_plain_keras_tuner_tuner_takes_the_hypermodel(tmp_path):
    x, y = _table(60)
    hm = ktplus.DenseHyperModel((6,), 2, **SMALL_DENSE, normalization="standardize")
    tuner = keras_tuner.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path)
    tuner.search(x, y, validation_data=(x[:20] + 50.0, y[:20]), epochs=1, verbose=0)
    model = tuner.get_best_models(1)[0]
    np.testing.assert_allclose(np.asarray(model.get_layer("standardize").adapt_mean), x.mean(0), rtol=1e-5)


# -- augmentation ---------------------------------------------------------------

def test_augmentation_acts_in_training_only():
    x, _ = _images(8)
    hm = ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, normalization="standardize", augment_flip="horizontal",
                               augment_rotation=0.1, augment_zoom=0.1, augment_translation=0.2,
                               augment_crop=0.25, augment_contrast=0.3, augment_noise=0.1)
    hm.adapt(x)
    model = hm.build(keras_tuner.HyperParameters())
    assert [layer.name for layer in _prep.prep_layers(model)] == list(_prep.PREP_LAYERS[:1]) + list(
        _prep.PREP_LAYERS[2:])
    inference = _prep.preview(model, x, training=False)
    np.testing.assert_allclose(inference, (x - x.mean()) / x.std(), rtol=1e-4, atol=1e-4)
    assert not np.allclose(_prep.preview(model, x, training=True), inference)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_crop_cuts_the_fraction_and_resizes_back():
    x, _ = _images(4)
    model = ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, augment_crop=0.25).build(keras_tuner.HyperParameters())
    assert model.get_layer("augment_crop").height == 6
    assert _prep.preview(model, x, training=True).shape == x.shape


# -- class weights ---------------------------------------------------------------

def test_balanced_class_weight_matches_scikit_learn_and_reaches_fit():
    x, _ = _images(30)
    y = np.array([0] * 20 + [1] * 7 + [2] * 3)
    hm = ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, class_weight="balanced")
    hp = keras_tuner.HyperParameters()
    model = hm.build(hp)
    seen = {}
    fit = model.fit

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return fit(*args, **kwargs)

    model.fit = spy
    hm.fit(hp, model, x, y, epochs=1, verbose=0)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    assert seen["class_weight"] == pytest.approx(dict(enumerate(expected)))


def test_class_weight_none_leaves_fit_alone():
    x, y = _images(12)
    hm = ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, class_weight=[None, "balanced"])
    hp = keras_tuner.HyperParameters()
    model = hm.build(hp)
    seen = {}
    fit = model.fit
    model.fit = lambda *a, **k: seen.update(k) or fit(*a, **k)
    hm.fit(hp, model, x, y, epochs=1, verbose=0)
    assert seen.get("class_weight") is None


# -- AutoHyperModel scopes the knobs per family ------------------------------------

def test_auto_scopes_the_knobs_per_family():
    hm = ktplus.AutoHyperModel(IMAGE, 3, normalization="standardize", augment_rotation=(0.0, 0.2),
                               class_weight="balanced")
    hp = keras_tuner.HyperParameters()
    hm.build(hp)
    names = {h.name for h in hp.space}
    assert {"conv/augment_rotation", "residual/augment_rotation", "conv/normalization",
            "dense/normalization", "dense/class_weight"} <= names
    assert "dense/augment_rotation" not in names  # the dense family flattens images
    hp = keras_tuner.HyperParameters()
    hp.Fixed("family", "conv")
    hm.build(hp)
    hp.values["conv/augment_rotation"] = 0.1
    assert {"standardize", "augment_rotation"} <= _layer_names(hm.build(hp))
    assert hm.prep_values(hp)["augment_rotation"] == 0.1


def test_check_hypermodel_passes_with_every_knob_and_round_trips_config():
    hm = ktplus.AutoHyperModel(IMAGE, 3, normalization=[None, "minmax"], augment_flip=[None, "horizontal"],
                               augment_rotation=(0.0, 0.2), augment_crop=[0.0, 0.2], augment_noise=0.05,
                               class_weight=[None, "balanced"], families=["dense", "conv"])
    ktplus.check_hypermodel(hm, n_samples=2)
    config = hm.get_config()
    assert config["augment_rotation"] == (0.0, 0.2) and config["class_weight"] == [None, "balanced"]
    assert type(hm).from_config(config).get_config() == config


def test_check_hypermodel_catches_a_knob_that_does_not_reach_the_model(monkeypatch):
    hm = ktplus.ConvHyperModel(IMAGE, 3, **SMALL_CONV, augment_rotation=0.1)
    monkeypatch.setattr(_prep, "apply", lambda inputs, values, stats: inputs)
    with pytest.raises(AssertionError, match="augment_rotation"):
        ktplus.check_hypermodel(hm, n_samples=0, train=False)


# -- bad values and knobs that do not apply: clear errors ---------------------------

@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"normalization": "zscore"}, "normalization"),
    ({"normalization": ["standardize", "l2"]}, "normalization"),
    ({"augment_flip": "diagonal"}, "augment_flip"),
    ({"augment_rotation": 1.0}, "augment_rotation"),
    ({"augment_zoom": -0.1}, "augment_zoom"),
    ({"augment_translation": (0.3, 0.1)}, "augment_translation"),
    ({"augment_contrast": "high"}, "augment_contrast"),
    ({"augment_crop": [0.1, 1.5]}, "augment_crop"),
    ({"augment_noise": -1.0}, "augment_noise"),
    ({"class_weight": "auto"}, "class_weight"),
    ({"class_weight": {0: 1.0, 1: 5.0}}, "class_weight"),
])
def test_bad_values_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`.*Received: {argument}="):
        ktplus.ConvHyperModel(IMAGE, 3, **kwargs)


@pytest.mark.parametrize(("build", "argument"), [
    (lambda: ktplus.DenseHyperModel((6,), 2, augment_flip="horizontal"), "augment_flip"),
    (lambda: ktplus.DenseHyperModel(IMAGE, 2, augment_rotation=0.1), "augment_rotation"),
    (lambda: ktplus.ConvHyperModel((20, 3), 2, augment_flip="horizontal"), "augment_flip"),
    (lambda: ktplus.ConvHyperModel((4, 4, 4, 1), 2, augment_zoom=(0.0, 0.2)), "augment_zoom"),
    (lambda: ktplus.ResidualHyperModel((20, 3), 2, augment_crop=0.1), "augment_crop"),
    (lambda: ktplus.AutoHyperModel((6,), 2, augment_contrast=0.2), "augment_contrast"),
    (lambda: ktplus.AutoHyperModel(IMAGE, 2, families=["dense"], augment_flip="vertical"), "augment_flip"),
    (lambda: ktplus.DenseHyperModel((6,), task="regression", class_weight="balanced"), "class_weight"),
])
def test_knobs_that_do_not_apply_are_refused_at_construction(build, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        build()


def _no_trial_started(tuner):
    return not tuner.oracle.trials and not any(n.startswith("trial_") for n in os.listdir(tuner.project_dir))


@pytest.mark.parametrize("extra", [{"class_weight": {0: 1.0, 1: 2.0}}, {"sample_weight": np.ones(60)}])
def test_search_refuses_its_own_weights_with_balanced_before_any_trial(tmp_path, extra):
    x, y = _table(60)
    hm = ktplus.DenseHyperModel((6,), 2, **SMALL_DENSE, class_weight=[None, "balanced"])
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path)
    name = next(iter(extra))
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        tuner.search(x, y, validation_split=0.25, epochs=1, verbose=0, **extra)
    assert _no_trial_started(tuner)


def test_search_refuses_data_statistics_cannot_be_computed_from_before_any_trial(tmp_path):
    import tensorflow as tf

    x, y = _table(60)
    hm = ktplus.DenseHyperModel((6,), 2, **SMALL_DENSE, normalization="standardize")
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path)
    endless = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()
    with pytest.raises(ValueError, match="infinite"):
        tuner.search(endless, validation_data=(x, y), steps_per_epoch=2, epochs=1, verbose=0)
    assert _no_trial_started(tuner)
