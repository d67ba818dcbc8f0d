"""Every family passes check_hypermodel over several input shapes, tiny
ones included: random hyperparameter sets (keras-tuner's own sampling) build,
train one step, keep stable names and round-trip their config."""

from __future__ import annotations

import keras_tuner
import pytest

import ktplus

ALL_OPTIONS = dict(
    regularizer=["l1", "l2", "l1_l2", None],
    dropout=(0.0, 0.5),
    batch_norm=[False, True],
    optimizer=["adam", "adamw", "sgd", "rmsprop"],
    activation=["relu", "gelu", "tanh"],
)

# (family, class, input shape, extra options, seed). Two random samples per
# case (plus the defaults); the seeds are picked so that, over each family's
# cases, the samples reach every regularizer, optimizer, activation,
# batch-norm and dropout setting, and each case's own extra options reach
# every value listed (e.g. 4 conv blocks on 2x2x3, 3 stages on 1x1x2).
CASES = [
    ("dense", ktplus.DenseHyperModel, (64,), {}, 77),
    ("dense", ktplus.DenseHyperModel, (1,), {}, 129),
    ("dense", ktplus.DenseHyperModel, (3, 4), {"batch_size": [2, 4]}, 0),
    ("conv", ktplus.ConvHyperModel, (8, 8, 1), {"separable": [False, True],
                                                  "pooling": ["max", "avg"],
                                                  "reduction_type": ["global_avg", "global_max", "flatten"]}, 0),
    ("conv", ktplus.ConvHyperModel, (2, 2, 3), {"conv_blocks": (1, 4)}, 15),
    ("conv", ktplus.ConvHyperModel, (16, 2), {"separable": [False, True], "kernel_size": [3, 5]}, 168),
    ("conv", ktplus.ConvHyperModel, (4, 4, 4, 1), {"conv_blocks": (1, 3)}, 0),
    ("residual", ktplus.ResidualHyperModel, (8, 8, 1), {"block_type": ["basic", "bottleneck"],
                                                          "preactivation": [False, True]}, 41),
    ("residual", ktplus.ResidualHyperModel, (1, 1, 2), {"stages": (1, 3)}, 1),
    ("residual", ktplus.ResidualHyperModel, (12, 3), {"block_type": ["basic", "bottleneck"],
                                                        "preactivation": [False, True]}, 8),
    ("auto", ktplus.AutoHyperModel, (8, 8, 1), {}, 425),
    ("auto", ktplus.AutoHyperModel, (10,), {}, 699),
]


@pytest.mark.parametrize(("family", "cls", "shape", "extra", "seed"), CASES,
                         ids=[f"{c[0]}-{'x'.join(map(str, c[2]))}" for c in CASES])
def test_family_passes_check(family, cls, shape, extra, seed):
    hm = cls(input_shape=shape, num_classes=3, **ALL_OPTIONS, **extra)
    values = ktplus.check_hypermodel(hm, n_samples=2, seed=seed)
    assert len(values) == 3
    # The samples really vary: not every build used the default values.
    assert any(v != values[0] for v in values[1:])


@pytest.mark.parametrize("cls", [ktplus.DenseHyperModel, ktplus.ConvHyperModel,
                                 ktplus.ResidualHyperModel])
def test_regression_head(cls):
    hm = cls(input_shape=(6, 2), task="regression", num_outputs=2, dropout=0.0)
    # The head does not depend on the body's options (sampled by the cases above): the defaults.
    assert len(ktplus.check_hypermodel(hm, n_samples=0)) == 1
    model = hm.build(keras_tuner.HyperParameters())
    assert model.output_shape == (None, 2)
    assert model.layers[-1].get_config()["activation"] == "linear"


def test_binary_sigmoid_head_with_auc_and_f1():
    hm = ktplus.DenseHyperModel(input_shape=(5,), num_classes=2, output_activation="sigmoid",
                                metrics=["accuracy", "auc", "f1", "precision", "recall"])
    assert len(ktplus.check_hypermodel(hm, n_samples=0)) == 1
    assert hm.build(keras_tuner.HyperParameters()).output_shape == (None, 1)


def test_check_hypermodel_on_a_user_build_function_class(rng):
    class Mine(keras_tuner.HyperModel):
        def build(self, hp):
            import keras

            model = keras.Sequential([keras.Input((4,)),
                                      keras.layers.Dense(hp.Int("units", 2, 8)),
                                      keras.layers.Dense(2, activation="softmax")])
            model.compile("adam", "sparse_categorical_crossentropy")
            return model

    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.integers(0, 2, size=8)
    assert len(ktplus.check_hypermodel(Mine(), n_samples=2, x=x, y=y)) == 3


def test_check_hypermodel_catches_a_broken_hypermodel():
    class Broken(ktplus.DenseHyperModel):
        def _body(self, inputs, params, shared):
            return inputs  # ignores dropout, layers, ...

    with pytest.raises(AssertionError, match="dropout"):
        ktplus.check_hypermodel(Broken(input_shape=(4,), num_classes=2, dropout=0.3),
                                n_samples=0, train=False)
