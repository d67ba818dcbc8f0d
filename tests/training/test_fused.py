"""Fused convolutional members (and batch normalization) train exactly as
each model alone: the same initial weights and batches give the same
weights, moving statistics and logs; a stopped member stops changing;
what fusion cannot reproduce steps aside."""

from __future__ import annotations

import collections

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

import ktplus
from ktplus.hypermodels._metrics import make_metric
from ktplus.training._fused import (
    FusedModel,
    class_weight_vector,
    fusion_groups,
    member_logs,
    member_plan,
    member_targets,
)

EPOCHS = 3
BATCH = 32


@pytest.fixture(scope="module")
def digits():
    data = ktplus.datasets.load("digits")
    x = data.x.reshape(-1, 8, 8, 1)
    return (x[:192], data.y[:192]), (x[192:288], data.y[192:288])


def _conv(seed, **kwargs):
    settings = dict(input_shape=(8, 8, 1), num_classes=10, conv_blocks=2, convs_per_block=1, filters=8,
                    pooling="max", reduction_type="global_avg", dense_units=16, batch_norm=True, dropout=0.0,
                    learning_rate=1e-2, regularizer=None)
    settings.update(kwargs)
    keras.utils.set_random_seed(seed)
    return ktplus.ConvHyperModel(**settings).build(keras_tuner.HyperParameters())


def _dense(seed, **kwargs):
    settings = dict(input_shape=(64,), num_classes=10, layers=2, units=16, batch_norm=True, dropout=0.0,
                    learning_rate=1e-2, regularizer=None)
    settings.update(kwargs)
    keras.utils.set_random_seed(seed)
    return ktplus.DenseHyperModel(**settings).build(keras_tuner.HyperParameters())


def _dataset(x, y, k):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).map(member_targets(k, [None] * k))


def _fused(models, rates):
    plans = [member_plan(m) for m in models]
    assert all(p is not None for p in plans)
    assert len({p.key for p in plans}) == 1
    fused = FusedModel(plans, models, "sparse_categorical_crossentropy",
                       [[make_metric("accuracy", True)] for _ in models])
    fused.set_learning_rates(rates)
    return fused


def _check_equivalence(build, specs, data, common):
    """Each member trained fused ends as its model trained alone."""
    (x, y), (xv, yv) = data
    alone = [build(i, **common, **s) for i, s in enumerate(specs)]
    members = [build(i, **common, **s) for i, s in enumerate(specs)]
    for a, m in zip(alone, members, strict=True):
        m.set_weights(a.get_weights())
    histories = [a.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0,
                       validation_data=(xv, yv)).history for a in alone]
    k = len(specs)
    fused = _fused(members, [s["learning_rate"] for s in specs])
    logs = fused.model.fit(_dataset(x, y, k), epochs=EPOCHS, verbose=0, validation_data=_dataset(xv, yv, k)).history
    fused.store(list(range(k)))
    for m in range(k):
        for epoch in range(EPOCHS):
            got = member_logs({name: values[epoch] for name, values in logs.items()}, m)
            for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
                assert got[name] == pytest.approx(histories[m][name][epoch], rel=1e-5, abs=1e-6), (m, epoch, name)
        weights_a, weights_f = alone[m].get_weights(), members[m].get_weights()
        assert len(weights_a) == len(weights_f)
        for wa, wf in zip(weights_a, weights_f, strict=True):
            assert wa.shape == wf.shape
            np.testing.assert_allclose(wf, wa, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(wa).max())))
        # The member trained (its weights are not its initial ones).
        assert any(not np.allclose(wa, w0) for wa, w0 in
                   zip(weights_a, build(m, **common, **specs[m]).get_weights(), strict=True))
    return fused


#: Two members of different widths (the narrower masked), learning rates and regularizers.
MEMBERS = [dict(filters=8, learning_rate=1e-2, regularizer="l2", regularizer_strength=1e-3),
           dict(filters=12, learning_rate=3e-3, regularizer="l1", regularizer_strength=1e-4)]


@pytest.mark.parametrize(("reduction", "pooling", "batch_norm"), [
    ("global_avg", "max", True),
    ("flatten", "avg", True),
    ("flatten", "max", False),
    ("global_max", "avg", False),
])
def test_conv_members_train_as_each_model_alone(digits, reduction, pooling, batch_norm):
    fused = _check_equivalence(_conv, MEMBERS, digits,
                               dict(reduction_type=reduction, pooling=pooling, batch_norm=batch_norm))
    kinds = {type(layer).__name__ for layer in fused.model.layers}
    assert "FusedConv2D" in kinds and ("FusedBatchNormalization" in kinds) == batch_norm
    assert fused.widths[:2] == [12, 24]  # filters double per block; member 0 padded from 8 and 16


def test_equal_conv_members_without_dense_layer(digits):
    specs = [dict(learning_rate=lr, regularizer=reg, regularizer_strength=1e-3)
             for lr, reg in ((1e-2, "l1_l2"), (2e-3, None), (5e-3, "l2"))]
    fused = _check_equivalence(_conv, specs, digits, dict(reduction_type="flatten", dense_units=0, conv_blocks=1))
    assert fused.widths == [8, 10]


def test_dense_members_with_batch_norm_train_as_each_model_alone(digits):
    (x, y), (xv, yv) = digits
    flat = ((x.reshape(len(x), -1), y), (xv.reshape(len(xv), -1), yv))
    specs = [dict(units=16, learning_rate=1e-2, regularizer="l2", regularizer_strength=1e-3),
             dict(units=12, learning_rate=3e-3, regularizer="l1", regularizer_strength=1e-4)]
    fused = _check_equivalence(_dense, specs, flat, {})
    assert any(type(layer).__name__ == "FusedBatchNormalization" for layer in fused.model.layers)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_an_inactive_member_does_not_change(digits, optimizer):
    """A stopped member keeps its weights and moving statistics, whatever
    its learning rate and momentum, while the others train on."""
    (x, y), _ = digits
    models = [_conv(i, optimizer=optimizer, **s) for i, s in enumerate(MEMBERS)]
    fused = _fused(models, [s["learning_rate"] for s in MEMBERS])
    fused.model.fit(_dataset(x[:64], y[:64], 2), epochs=1, verbose=0)  # both train: momentum builds up
    fused.set_active([True, False])
    fused.store([1])
    before = [w.copy() for w in fused.model.get_weights()]
    initial = [m.get_weights() for m in models]
    fused.model.fit(_dataset(x, y, 2), epochs=2, verbose=0)
    after = fused.model.get_weights()
    stats = [v for layer in fused.weighted_layers for v in (getattr(layer, "moving_mean", None),
                                                             getattr(layer, "moving_variance", None))
             if v is not None]
    assert stats
    stat_paths = {v.path for v in stats}
    for variable, b, a in zip(fused.model.weights, before, after, strict=True):
        if b.ndim == 0 or b.shape[0] != 2 or variable.path.endswith(("out_mask", "active")):
            continue
        np.testing.assert_array_equal(a[1], b[1], err_msg=variable.path)  # member 1: not a bit changed
        if variable.path in stat_paths or variable.trainable:
            assert not np.array_equal(a[0], b[0]), variable.path  # member 0 trained, its statistics moved
    fused.store([0, 1])
    for w, w0 in zip(models[1].get_weights(), initial[1], strict=True):
        np.testing.assert_array_equal(w, w0)
    assert not all(np.array_equal(w, w0) for w, w0 in zip(models[0].get_weights(), initial[0], strict=True))


class Renorm(keras.layers.BatchNormalization):
    pass


def _chain(*layers, shape=(8, 8, 1)):
    inputs = keras.Input(shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    model = keras.Model(inputs, x)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("case", ["separable", "conv1d", "conv3d", "renorm", "bn_subclass", "grouped",
                                  "dense_on_image", "bn_first", "dropout_first"])
def test_what_fusion_cannot_reproduce_steps_aside(case):
    def head():
        return [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax")]

    if case == "separable":
        model = _conv(0, separable=True)
    elif case == "conv1d":
        model = ktplus.ConvHyperModel(input_shape=(16, 2), num_classes=10, conv_blocks=1, filters=4,
                                      dropout=0.0).build(keras_tuner.HyperParameters())
    elif case == "conv3d":
        model = ktplus.ConvHyperModel(input_shape=(4, 4, 4, 1), num_classes=10, conv_blocks=1, filters=4,
                                      dropout=0.0).build(keras_tuner.HyperParameters())
    elif case == "renorm":
        model = _chain(keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(renorm=True), *head())
    elif case == "bn_subclass":
        model = _chain(keras.layers.Conv2D(4, 3), Renorm(), *head())
    elif case == "grouped":
        model = _chain(keras.layers.Conv2D(4, 3), keras.layers.Conv2D(4, 3, groups=2), *head())
    elif case == "dense_on_image":
        model = _chain(keras.layers.Conv2D(4, 3), keras.layers.Dense(4), *head())
    elif case == "bn_first":
        model = _chain(keras.layers.BatchNormalization(), keras.layers.Conv2D(4, 3), *head())
    else:
        model = _chain(keras.layers.Dropout(0.5), keras.layers.Conv2D(4, 3), *head())
    assert member_plan(model) is None
    # The same chain without what steps aside fuses.
    assert member_plan(_chain(keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(), *head())) is not None


def test_conv_groups_by_padded_compute():
    plans = [member_plan(_conv(0, filters=f)) for f in (8, 10, 32)]
    assert sorted(fusion_groups(plans)) == [[0, 1], [2]]  # 8 padded to 32 would cost ~16 times its own
    other = member_plan(_conv(0, reduction_type="flatten"))
    assert other.key != plans[0].key


def test_small_members_pad_freely_and_large_ones_within_a_factor():
    """Below the padding floor a member's step costs its overhead, not its
    arithmetic: 8 units and 64 units over two layers fuse (64*64 multiply-adds
    more than its own 8*8 scale, still small); 64 and 512 units do not (the
    64-unit member padded to 512 would do about 40 times its own work)."""
    small = [member_plan(_dense(i, layers=n, units=u, batch_norm=False, dropout=0.0))
             for i, (n, u) in enumerate(((1, 8), (2, 64)))]
    assert fusion_groups(small) == [[0, 1]]
    large = [member_plan(_dense(i, layers=2, units=u, batch_norm=False, dropout=0.0)) for i, u in enumerate((64, 512))]
    assert sorted(fusion_groups(large)) == [[0], [1]]


class SeededConv(ktplus.ConvHyperModel):
    """Initial weights drawn from a seed of the trial's own values, so a
    trial starts from the same weights fused or alone."""

    def build(self, hp):
        model = super().build(hp)
        rng = np.random.default_rng(int(round(hp.get("learning_rate") * 1e9)) % 2**32)
        for w in model.trainable_weights:
            w.assign(rng.normal(0.0, 0.3, w.shape).astype("float32"))
        return model


def _conv_search(tmp_path, digits, pack, name):
    (x, y), val = digits
    hm = SeededConv(input_shape=(8, 8, 1), num_classes=10, conv_blocks=1, convs_per_block=1, filters=8,
                    dropout=0.0, learning_rate=(1e-3, 1e-2))
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=4, seed=0, pack=pack,
                                directory=tmp_path, project_name=name)
    tuner.search(x, y, validation_data=val, epochs=2, shuffle=False, verbose=0)
    return tuner


def test_conv_search_trains_trials_fused(tmp_path, digits):
    fused = _conv_search(tmp_path, digits, 4, "fused")
    trials = fused.oracle.trials
    assert len(trials) == 4 and all(t.status == "COMPLETED" for t in trials.values())
    assert fused.packed_trials and all(n >= 2 for n in fused.packed_trials.values())
    alone = _conv_search(tmp_path, digits, 1, "alone")
    assert not alone.packed_trials
    for tid in fused.packed_trials:
        t, a = trials[tid], alone.oracle.trials[tid]
        assert t.hyperparameters.values == a.hyperparameters.values
        assert t.score == pytest.approx(a.score, rel=1e-5, abs=1e-6)
        for name in ("loss", "val_loss"):
            assert t.metrics.get_last_value(name) == pytest.approx(a.metrics.get_last_value(name), rel=1e-5)
    assert fused.get_best_models(1)[0].output_shape == (None, 10)


@pytest.mark.parametrize("optimizer", [keras.optimizers.Adam(clipnorm=1.0), keras.optimizers.SGD(global_clipnorm=1.0),
                                       keras.optimizers.Adam(use_ema=True), keras.optimizers.RMSprop(clipvalue=0.5),
                                       keras.optimizers.Adam(gradient_accumulation_steps=2)],
                         ids=["clipnorm", "global_clipnorm", "ema", "clipvalue", "accumulation"])
def test_optimizer_settings_fusion_cannot_reproduce_step_aside(optimizer):
    """Clipping by a norm would be taken over every member's variables at once; an EMA or gradient
    accumulation is not reproduced per member."""
    model = _chain(keras.layers.Flatten(), keras.layers.Dense(4), keras.layers.Dense(10, activation="softmax"))
    assert member_plan(model) is not None
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    assert member_plan(model) is None


def _train_step_graph(k):
    """The traced train step of ``k`` equal dense members."""
    models = [_dense(i, batch_norm=False, dropout=0.1) for i in range(k)]
    fused = _fused(models, [1e-2] * k)
    x, y = np.zeros((16, 64), "float32"), np.zeros((16,), "int64")
    data = _dataset(x, y, k)
    fused.model.build_members(data.element_spec[1])
    return tf.function(fused.model.train_step).get_concrete_function(data.element_spec).graph


def _train_step_ops(k):
    """Operations in a traced train step of ``k`` equal dense members."""
    return len(_train_step_graph(k).get_operations())


def test_fused_dense_layers_are_plain_matmuls():
    """Each member's Dense is one 2-D matmul forward (and its two gradient
    matmuls): no batched matmul and no transposes, which oneDNN runs several
    times slower on a CPU at these sizes (the fused step cost about the sum
    of its members' steps alone with them)."""
    kinds = collections.Counter(op.type for op in _train_step_graph(3).get_operations())
    assert not {"BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Transpose"} & set(kinds), kinds
    # 3 members x 3 kernels: forward 9; gradients 9 for the kernels and 6 for the hidden inputs
    assert kinds["MatMul"] == 24, kinds


def test_the_traced_step_is_the_size_of_one_model_whatever_k():
    """Every member's loss and metrics are computed at once: a member more
    adds only the reads of its logs, not a loss, a tracker and metrics of
    its own (about 140 operations each when Keras traced one per member)."""
    two, five = _train_step_ops(2), _train_step_ops(5)
    assert (five - two) / 3 <= 30, (two, five)


def test_per_member_metrics_and_class_weights_log_as_each_model_alone(digits):
    """A metric that is not a mean of per-sample values (AUC) keeps one
    object per member; class weights are each member's own sample weights;
    every log matches the member's model trained alone."""
    (x, y), (xv, yv) = digits
    x, xv = x.reshape(len(x), -1), xv.reshape(len(xv), -1)
    specs = [dict(units=16, learning_rate=1e-2), dict(units=12, learning_rate=3e-3)]
    weights = [{c: 1.0 + c / 4 for c in range(10)}, None]
    metrics = ["accuracy", "auc"]
    common = dict(batch_norm=False, dropout=0.0, metrics=metrics)
    alone = [_dense(i, **common, **s) for i, s in enumerate(specs)]
    members = [_dense(i, **common, **s) for i, s in enumerate(specs)]
    for a, m in zip(alone, members, strict=True):
        m.set_weights(a.get_weights())
    histories = [a.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, class_weight=cw,
                       validation_data=(xv, yv)).history for a, cw in zip(alone, weights, strict=True)]
    plans = [member_plan(m) for m in members]
    fused = FusedModel(plans, members, "sparse_categorical_crossentropy",
                       [[make_metric(s, True) for s in metrics] for _ in members])
    fused.set_learning_rates([s["learning_rate"] for s in specs])
    vectors = [class_weight_vector(cw, 10) for cw in weights]
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).map(member_targets(2, vectors))
    logs = fused.model.fit(train, epochs=2, verbose=0, validation_data=_dataset(xv, yv, 2)).history
    assert {"m0_auc", "m1_auc", "m0_accuracy"} <= set(logs)
    for m in range(2):
        for epoch in range(2):
            got = member_logs({name: values[epoch] for name, values in logs.items()}, m)
            for name in ("loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc"):
                assert got[name] == pytest.approx(histories[m][name][epoch], rel=1e-5, abs=1e-6), (m, epoch, name)


def test_members_of_different_depths_train_as_each_model_alone(digits):
    """A member with fewer hidden layers trains through identity blocks
    (kernel I, bias 0, held fixed) up to the deepest member's depth: its
    logs and weights are its own model's trained alone, and the identity
    blocks do not move."""
    (x, y), (xv, yv) = digits
    flat = ((x.reshape(len(x), -1), y), (xv.reshape(len(xv), -1), yv))
    specs = [dict(layers=3, units=16, learning_rate=1e-2, regularizer="l2", regularizer_strength=1e-3),
             dict(layers=1, units=12, learning_rate=3e-3, regularizer="l1", regularizer_strength=1e-4),
             dict(layers=2, units=8, learning_rate=5e-3, regularizer=None)]
    fused = _check_equivalence(_dense, specs, flat, dict(batch_norm=False, dropout=0.0))
    assert len(fused.kernel_layers) == 4 and fused.widths == [16, 16, 16, 10]
    kernels = [keras.ops.convert_to_numpy(layer.kernel) for layer in fused.kernel_layers]
    np.testing.assert_array_equal(kernels[1][1][:12, :12], np.eye(12))  # member 1: identity blocks 1 and 2
    np.testing.assert_array_equal(kernels[2][1][:12, :12], np.eye(12))
    np.testing.assert_array_equal(kernels[2][2][:8, :8], np.eye(8))  # member 2: identity block 2


@pytest.mark.parametrize("case", ["batch_norm", "tanh", "adamw"])
def test_depth_padding_steps_aside_where_identity_is_not_exact(case):
    """Members of different depths fuse only where an identity block is
    exact: not with batch normalization, an activation that does not pass
    its own output on (tanh), or weight decay (it would shrink the identity)."""
    common = dict(batch_norm=case == "batch_norm", activation="tanh" if case == "tanh" else "relu",
                  optimizer="adamw" if case == "adamw" else "adam", dropout=0.0)
    plans = [member_plan(_dense(i, layers=n, units=16, **common)) for i, n in enumerate((1, 2))]
    assert plans[0].key != plans[1].key
    same_depth = [member_plan(_dense(i, layers=2, units=16, **common)) for i in range(2)]
    assert same_depth[0].key == same_depth[1].key  # what they share still fuses


def _depth_chain(layers, activation, separate):
    inputs = keras.Input((8,))
    x = inputs
    for _ in range(layers):
        if separate:
            x = keras.layers.Activation(activation)(keras.layers.Dense(16)(x))
        else:
            x = keras.layers.Dense(16, activation=activation)(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    return member_plan(model)


@pytest.mark.parametrize(("activation", "separate", "fuses"), [
    ("relu", False, True),  # a Dense's own ReLU
    ("relu", True, True),  # Dense, then Activation("relu")
    ("linear", False, False),  # no ReLU: an identity block would not undo the layer's sign
    ("tanh", True, False),
])
def test_which_chains_pad_in_depth(activation, separate, fuses):
    one, three = _depth_chain(1, activation, separate), _depth_chain(3, activation, separate)
    assert (one.key == three.key) == fuses
    assert bool(one.block) == fuses
