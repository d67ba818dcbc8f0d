"""Options reach the model: regularizers, dropout, batch norm, fixed values,
conditional scopes, batch size, config round trip."""

from __future__ import annotations

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus

FAMILIES = [
    (ktplus.DenseHyperModel, (6,)),
    (ktplus.ConvHyperModel, (8, 8, 1)),
    (ktplus.ResidualHyperModel, (8, 8, 1)),
    (ktplus.AutoHyperModel, (8, 8, 1)),
]


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize("regularizer", ["l1", "l2", "l1_l2"])
@pytest.mark.parametrize(("cls", "shape"), FAMILIES)
def test_regularizer_gives_regularization_losses(cls, shape, regularizer):
    hm = cls(input_shape=shape, num_classes=3, regularizer=regularizer, regularizer_strength=1e-3)
    hp = keras_tuner.HyperParameters()
    model = hm.build(hp)
    losses = [float(v) for v in model.losses]
    assert losses and all(v > 0 for v in losses)
    assert hp.get("regularizer") == regularizer
    assert hp.get("regularizer_strength") == pytest.approx(1e-3)


@pytest.mark.parametrize(("cls", "shape"), FAMILIES)
def test_no_regularizer_no_losses_and_no_strength_hyperparameter(cls, shape):
    hp = keras_tuner.HyperParameters()
    model = cls(input_shape=shape, num_classes=3, regularizer=None).build(hp)
    assert not model.losses
    assert "regularizer_strength" not in [p.name for p in hp.space]
    assert hp.get("regularizer") == "none"


@pytest.mark.parametrize(("cls", "shape"), FAMILIES)
def test_dropout_puts_dropout_layers(cls, shape):
    model = cls(input_shape=shape, num_classes=3, dropout=0.25).build(keras_tuner.HyperParameters())
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates and all(r == 0.25 for r in rates)
    model = cls(input_shape=shape, num_classes=3, dropout=0.0).build(keras_tuner.HyperParameters())
    assert "Dropout" not in layer_types(model)


@pytest.mark.parametrize(("cls", "shape"), FAMILIES)
def test_batch_norm_switch(cls, shape):
    on = cls(input_shape=shape, num_classes=3, batch_norm=True).build(keras_tuner.HyperParameters())
    off = cls(input_shape=shape, num_classes=3, batch_norm=False).build(keras_tuner.HyperParameters())
    assert "BatchNormalization" in layer_types(on)
    assert "BatchNormalization" not in layer_types(off)


def test_dense_fixed_values_are_respected_and_recorded():
    hm = ktplus.DenseHyperModel(input_shape=(5,), num_classes=4, layers=2, units=17,
                                activation="tanh", optimizer="sgd", learning_rate=0.05,
                                dropout=0.1)
    hp = keras_tuner.HyperParameters()
    model = hm.build(hp)
    fixed = {p.name for p in hp.space if isinstance(p, keras_tuner.engine.hyperparameters.Fixed)}
    assert {"layers", "units_0", "units_1", "activation", "optimizer", "learning_rate",
            "dropout"} <= fixed
    dense = [lyr for lyr in model.layers if isinstance(lyr, keras.layers.Dense)]
    assert [d.units for d in dense] == [17, 17, 4]
    assert [lyr.get_config()["activation"] for lyr in model.layers
            if isinstance(lyr, keras.layers.Activation)] == ["tanh", "tanh"]
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.momentum == 0.9
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)


def test_dense_units_are_conditional_on_layers():
    hm = ktplus.DenseHyperModel(input_shape=(5,), num_classes=3, layers=(1, 3))
    hp = keras_tuner.HyperParameters()
    hp.Fixed("layers", 1)
    hm.build(hp)
    assert "units_0" in hp and "units_1" not in hp and "units_2" not in hp
    assert {p.name for p in hp.space} >= {"units_0", "units_1", "units_2"}


def test_conv_fixed_values_and_rank_selects_layers():
    hm = ktplus.ConvHyperModel(input_shape=(8, 8, 1), num_classes=3, conv_blocks=2,
                               convs_per_block=1, filters=8, kernel_size=5, pooling="avg",
                               reduction_type="flatten", dense_units=0, separable=True)
    model = hm.build(keras_tuner.HyperParameters())
    convs = [lyr for lyr in model.layers if isinstance(lyr, keras.layers.SeparableConv2D)]
    assert [c.filters for c in convs] == [8, 16]
    assert convs[0].kernel_size == (5, 5)
    assert "AveragePooling2D" in layer_types(model) and "Flatten" in layer_types(model)
    for shape, conv in [((10, 2), keras.layers.Conv1D), ((4, 4, 4, 2), keras.layers.Conv3D)]:
        m = ktplus.ConvHyperModel(input_shape=shape, num_classes=3).build(keras_tuner.HyperParameters())
        assert any(isinstance(lyr, conv) for lyr in m.layers)


@pytest.mark.parametrize("shape", [(8, 8, 1), (2, 2, 1), (1, 1, 1), (3, 5, 2)])
def test_deep_configurations_build_on_tiny_images(shape):
    for hm in [
        ktplus.ConvHyperModel(input_shape=shape, num_classes=2, conv_blocks=6, convs_per_block=1,
                              filters=4, reduction_type="flatten"),
        ktplus.ResidualHyperModel(input_shape=shape, num_classes=2, stages=5, blocks_per_stage=1,
                                  filters=4, block_type="bottleneck"),
    ]:
        model = hm.build(keras_tuner.HyperParameters())
        smallest = min(min(lyr.output.shape[1:-1]) for lyr in model.layers
                       if len(lyr.output.shape) == 4)
        assert smallest >= min(min(shape[:-1]), 2)


def test_residual_projection_shortcuts_and_downsampling():
    hm = ktplus.ResidualHyperModel(input_shape=(8, 8, 1), num_classes=3, stages=3,
                                   blocks_per_stage=1, filters=8, block_type="basic")
    model = hm.build(keras_tuner.HyperParameters())
    adds = [lyr for lyr in model.layers if isinstance(lyr, keras.layers.Add)]
    assert len(adds) == 3
    assert [a.output.shape[1] for a in adds] == [8, 4, 2]
    assert [a.output.shape[-1] for a in adds] == [8, 16, 32]
    one_by_one = [lyr for lyr in model.layers
                  if isinstance(lyr, keras.layers.Conv2D) and lyr.kernel_size == (1, 1)]
    assert len(one_by_one) == 2  # where the shape changes, and only there


def test_auto_family_scopes_and_subset():
    hm = ktplus.AutoHyperModel(input_shape=(8, 8, 1), num_classes=3)
    hp = keras_tuner.HyperParameters()
    hp.Choice("family", ["dense", "conv", "residual"], default="conv")
    model = hm.build(hp)
    assert model.name == "ktplus_auto" and any(isinstance(lyr, keras.layers.Conv2D) for lyr in model.layers)
    assert "conv/filters" in hp and "residual/filters" not in hp and "dense/layers" not in hp
    only = ktplus.AutoHyperModel(input_shape=(20,), num_classes=3)
    hp = keras_tuner.HyperParameters()
    only.build(hp)
    assert hp.get("family") == "dense" and list(only.members) == ["dense"]
    custom = ktplus.AutoHyperModel(
        input_shape=(8, 8, 1), num_classes=3,
        families=["dense", ktplus.ConvHyperModel(input_shape=(8, 8, 1), num_classes=3, filters=12)])
    hp = keras_tuner.HyperParameters()
    hp.Fixed("family", "conv")
    custom.build(hp)
    assert hp.get("conv/filters") == 12


def test_batch_size_is_tuned_through_fit(rng):
    hm = ktplus.DenseHyperModel(input_shape=(3,), num_classes=2, batch_size=[4, 8])
    hp = keras_tuner.HyperParameters()
    model = hm.build(hp)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.integers(0, 2, size=16)
    seen = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    hm.fit(hp, model, x, y, epochs=1, verbose=0, callbacks=[Count()])
    assert hp.get("batch_size") == 4 and len(seen) == 4


@pytest.mark.parametrize(("cls", "shape"), FAMILIES)
def test_config_round_trip(cls, shape):
    hm = cls(input_shape=shape, num_classes=3, regularizer=["l2", None], dropout=(0.1, 0.3),
             metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=2, name="top2")])
    config = hm.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    hp1, hp2 = keras_tuner.HyperParameters(), keras_tuner.HyperParameters()
    m1, m2 = hm.build(hp1), clone.build(hp2)
    assert hp1.values == hp2.values and m1.count_params() == m2.count_params()


def test_auto_config_round_trip_with_member_instances():
    hm = ktplus.AutoHyperModel(
        input_shape=(8, 8, 1), num_classes=3,
        families=[ktplus.ResidualHyperModel(input_shape=(8, 8, 1), num_classes=3, stages=2), "dense"])
    clone = ktplus.AutoHyperModel.from_config(hm.get_config())
    assert clone.get_config() == hm.get_config()
    assert clone.members["residual"].knobs["stages"].fixed == 2


def test_metric_objects_are_not_shared_between_models():
    auc = keras.metrics.AUC(name="auc")
    hm = ktplus.DenseHyperModel(input_shape=(3,), num_classes=2, output_activation="sigmoid",
                                metrics=[auc])
    m1 = hm.build(keras_tuner.HyperParameters())
    m2 = hm.build(keras_tuner.HyperParameters())
    x = np.zeros((4, 3), "float32")
    y = np.array([0, 1, 0, 1])
    r1 = m1.evaluate(x, y, verbose=0, return_dict=True)
    r2 = m2.evaluate(x, y, verbose=0, return_dict=True)
    assert "auc" in r1 and "auc" in r2


@pytest.mark.parametrize("num_classes", [2, 4])
def test_string_metrics_work_with_integer_labels(num_classes, rng):
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=num_classes, dropout=0.0,
                                metrics=["accuracy", "auc", "precision", "recall", "f1"])
    model = hm.build(keras_tuner.HyperParameters())
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype(int) * (num_classes - 1)
    logs = model.fit(x, y, epochs=3, verbose=0, validation_data=(x, y)).history
    for name in ["val_auc", "val_precision", "val_recall", "val_f1"]:
        assert 0.0 <= logs[name][-1] <= 1.0
