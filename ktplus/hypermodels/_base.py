"""What every ktplus hypermodel shares, written once.

Input shape and task head, activation, batch norm, dropout, kernel
regularizer, optimizer, learning rate, batch size and metrics. A family
(dense, conv, residual) only declares its own hyperparameters and builds its
body; see ``_dense.py`` for the shortest example.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import keras
import keras_tuner

from ktplus.hypermodels import _knobs, _prep
from ktplus.hypermodels._knobs import NONE, Knob, invalid
from ktplus.hypermodels._metrics import check_metric, make_metric
from ktplus.hypermodels._statistics import DataStatistics, StatisticsCache

ACTIVATIONS = (
    "relu", "gelu", "elu", "selu", "tanh", "swish", "silu", "leaky_relu",
    "relu6", "mish", "softplus", "sigmoid",
)
REGULARIZERS = ("l1", "l2", "l1_l2")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
TASKS = ("classification", "regression")
SGD_MOMENTUM = 0.9


@dataclass
class Shared:
    """The shared hyperparameter values of one build, with layer helpers."""

    activation: str
    batch_norm: bool
    dropout: float
    regularizer: str
    regularizer_strength: float | None

    def kernel_regularizer(self) -> keras.regularizers.Regularizer | None:
        """A fresh kernel regularizer for one layer, or None."""
        s = self.regularizer_strength
        if self.regularizer == "l1":
            return keras.regularizers.L1(s)
        if self.regularizer == "l2":
            return keras.regularizers.L2(s)
        if self.regularizer == "l1_l2":
            return keras.regularizers.L1L2(l1=s, l2=s)
        return None

    def norm_act(self, x: Any) -> Any:
        """Batch norm (if on) followed by the activation."""
        if self.batch_norm:
            x = keras.layers.BatchNormalization()(x)
        return keras.layers.Activation(self.activation)(x)

    def drop(self, x: Any) -> Any:
        """Dropout at the shared rate (no layer at rate 0)."""
        if self.dropout and self.dropout > 0:
            x = keras.layers.Dropout(self.dropout)(x)
        return x


def _check_input_shape(value: Any, ranks: Sequence[int] | None, family: str) -> tuple[int, ...]:
    allowed = (
        "a tuple of positive integers"
        if ranks is None
        else f"a tuple of positive integers of rank {' or '.join(map(str, ranks))} "
        f"(the {family} family's supported ranks)"
    )
    if not isinstance(value, (tuple, list)) or not value:
        raise invalid("input_shape", value, allowed)
    if not all(_knobs._is_int(d) and d > 0 for d in value):
        raise invalid("input_shape", value, allowed)
    shape = tuple(int(d) for d in value)
    if ranks is not None and len(shape) not in ranks:
        raise invalid("input_shape", value, allowed)
    return shape


class BaseHyperModel(keras_tuner.HyperModel):
    """Base class of ktplus hypermodels: the shared knobs and the task head.

    Every knob takes a fixed value (registered as ``hp.Fixed``, so it is still
    visible in every trial), a ``(min, max)`` tuple to tune over a range, or a
    list of choices to tune.

    Args:
        input_shape: Shape of one sample, without the batch dimension.
        num_classes: Number of classes (>= 2) for classification.
        task: "classification" (default) or "regression".
        num_outputs: Number of regression targets (regression only).
        output_activation: None (softmax over ``num_classes`` units, or
            linear for regression) or "sigmoid" (``num_classes=2`` only: one
            sigmoid unit with binary cross-entropy).
        activation: Hidden activation, e.g. "relu", "gelu", or a list.
        batch_norm: Whether to use batch normalization (or ``[False, True]``).
        dropout: Dropout rate in [0, 1), or a (min, max) range.
        regularizer: Kernel regularizer: "l1", "l2", "l1_l2", None, or a list
            such as ``["l2", None]``.
        regularizer_strength: Regularization factor (> 0), tuned on a log
            scale when a range; only used when a regularizer is chosen.
        optimizer: "adam", "adamw", "sgd" (momentum 0.9) or "rmsprop", or a
            list of them.
        learning_rate: Learning rate (> 0); a range is tuned on a log scale.
        batch_size: None (leave it to ``fit``), an int, a range or a list:
            applied by ``HyperModel.fit`` to array inputs.
        metrics: Metrics to compile; defaults to ``["accuracy"]`` for
            classification and ``["mae"]`` for regression. The strings "auc",
            "precision", "recall" and "f1" work with integer labels.
        loss: Optional loss overriding the task's default.
        normalization: None (default), "standardize" (a
            ``keras.layers.Normalization`` with the training data's mean and
            variance per channel), "minmax" (scaled to [0, 1] by the training
            data's minimum and maximum), or a list such as
            ``[None, "standardize"]``. The statistics come from the training
            data only (each fold's training part with ``cv``), computed once
            per search (`adapt`), and are weights of the model: what
            ``get_best_models`` returns or an export saves takes raw inputs.
        augment_flip: Random flips of 2D images (conv, residual and auto
            families): None, "horizontal", "vertical",
            "horizontal_and_vertical", or a list.
        augment_rotation: Random rotation of 2D images, as a fraction of a
            full turn in [0, 1) (``keras.layers.RandomRotation``'s factor), or
            a range to tune; 0 (or None) means no layer, as for every
            augmentation factor below.
        augment_zoom: Random zoom of 2D images, a factor in [0, 1) or a range.
        augment_translation: Random translation of 2D images, a fraction of
            the side in [0, 1) or a range.
        augment_contrast: Random contrast of 2D images, a factor in [0, 1)
            or a range.
        augment_crop: Random crop of 2D images resized back to the input
            size: the fraction of the side cut away, in [0, 1), or a range.
        augment_noise: Gaussian noise standard deviation (after
            normalization) for any input, >= 0 or a range.
        class_weight: None (default), "balanced" (scikit-learn's
            ``compute_class_weight("balanced")`` of the training labels,
            applied by `fit`) or ``[None, "balanced"]``; classification
            only, and not together with ``search(class_weight=...)``.
        name: Optional name of the hypermodel.
        tunable: Whether the hyperparameters can be overridden by a tuner.
    """

    #: Family name, used for the model name and ``AutoHyperModel``.
    family: ClassVar[str] = "base"
    #: Input ranks the family accepts (None: any rank).
    ranks: ClassVar[tuple[int, ...] | None] = None

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int | None = None,
        *,
        task: str = "classification",
        num_outputs: int = 1,
        output_activation: str | None = None,
        activation: Any = "relu",
        batch_norm: Any = False,
        dropout: Any = (0.0, 0.5),
        regularizer: Any = None,
        regularizer_strength: Any = (1e-6, 1e-3),
        optimizer: Any = "adam",
        learning_rate: Any = (1e-4, 1e-2),
        batch_size: Any = None,
        metrics: Sequence[Any] | None = None,
        loss: Any = None,
        normalization: Any = None,
        augment_flip: Any = None,
        augment_rotation: Any = 0.0,
        augment_zoom: Any = 0.0,
        augment_translation: Any = 0.0,
        augment_contrast: Any = 0.0,
        augment_crop: Any = 0.0,
        augment_noise: Any = 0.0,
        class_weight: Any = None,
        name: str | None = None,
        tunable: bool = True,
    ) -> None:
        super().__init__(name=name, tunable=tunable)
        self.input_shape = _check_input_shape(input_shape, self.ranks, self.family)
        if task not in TASKS:
            raise invalid("task", task, "'classification' or 'regression'")
        self.task = task
        if task == "classification":
            if num_classes is None or not _knobs._is_int(num_classes) or num_classes < 2:
                raise invalid(
                    "num_classes", num_classes,
                    "an integer >= 2 for classification (use task='regression' "
                    "for a numeric target)",
                )
            num_classes = int(num_classes)
        elif num_classes is not None:
            raise invalid("num_classes", num_classes, "None when task='regression'")
        if not _knobs._is_int(num_outputs) or num_outputs < 1:
            raise invalid("num_outputs", num_outputs, "an integer >= 1")
        if output_activation not in (None, "sigmoid", "softmax", "linear"):
            raise invalid("output_activation", output_activation,
                          "None, 'softmax', 'sigmoid' (num_classes=2 only) or 'linear'")
        if output_activation == "sigmoid" and num_classes != 2:
            raise invalid("output_activation", output_activation,
                          "'sigmoid' only with num_classes=2")
        if output_activation == "linear" and task != "regression":
            raise invalid("output_activation", output_activation,
                          "'linear' only with task='regression'")
        if output_activation == "softmax" and task != "classification":
            raise invalid("output_activation", output_activation,
                          "'softmax' only with task='classification'")
        self.num_classes = num_classes
        self.num_outputs = int(num_outputs)
        self.output_activation = output_activation
        if metrics is None:
            metrics = ["accuracy"] if task == "classification" else ["mae"]
        if isinstance(metrics, (str, keras.metrics.Metric)) or not isinstance(
            metrics, (list, tuple)
        ):
            raise invalid("metrics", metrics, "a list of metrics, e.g. ['accuracy', 'auc']")
        for m in metrics:
            check_metric("metrics", m)
        self.metrics = list(metrics)
        self.loss = loss
        self.knobs: dict[str, Knob | None] = {
            "activation": _knobs.choice_knob("activation", activation, ACTIVATIONS),
            "batch_norm": _knobs.bool_knob("batch_norm", batch_norm),
            "dropout": _knobs.float_knob("dropout", dropout, low=0.0, high=1.0),
            "regularizer": _knobs.choice_knob(
                "regularizer", regularizer, REGULARIZERS, allow_none=True
            ),
            "regularizer_strength": _knobs.float_knob(
                "regularizer_strength", regularizer_strength, low=0.0, low_open=True, log=True
            ),
            "optimizer": _knobs.choice_knob("optimizer", optimizer, OPTIMIZERS),
            "learning_rate": _knobs.float_knob(
                "learning_rate", learning_rate, low=0.0, low_open=True, log=True
            ),
            "batch_size": None
            if batch_size is None
            else _knobs.int_knob("batch_size", batch_size, minimum=1, log=True),
        }
        self._shared_config = {
            "input_shape": self.input_shape,
            "num_classes": num_classes,
            "task": task,
            "num_outputs": self.num_outputs,
            "output_activation": output_activation,
            "activation": activation,
            "batch_norm": batch_norm,
            "dropout": dropout,
            "regularizer": regularizer,
            "regularizer_strength": regularizer_strength,
            "optimizer": optimizer,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "metrics": self.metrics,
            "loss": loss,
            "name": name,
            "tunable": tunable,
        }
        prep_args = {
            "normalization": normalization, "augment_flip": augment_flip,
            "augment_rotation": augment_rotation, "augment_zoom": augment_zoom,
            "augment_translation": augment_translation, "augment_contrast": augment_contrast,
            "augment_crop": augment_crop, "augment_noise": augment_noise, "class_weight": class_weight,
        }
        #: The data-preparation knobs that can be on (`ktplus.hypermodels._prep`).
        self.prep = _prep.parse_prep(self.family, self.input_shape, task, prep_args)
        self._shared_config.update(prep_args)
        self._family_config: dict[str, Any] = {}
        #: The training data's statistics last adapted to (see `adapt`).
        self.statistics: DataStatistics | None = None
        self._statistics_cache = StatisticsCache()
        self._pinned = False

    # -- what a family provides -------------------------------------------

    def _declare(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """Registers the family's hyperparameters; returns their values."""
        raise NotImplementedError

    def _body(self, inputs: Any, params: dict[str, Any], shared: Shared) -> Any:
        """Builds the family's layers from ``inputs`` to a feature tensor."""
        raise NotImplementedError

    # -- shared machinery -------------------------------------------------

    def _knob(self, name: str) -> Knob:
        knob = self.knobs[name]
        assert knob is not None
        return knob

    def _declare_shared(self, hp: keras_tuner.HyperParameters) -> Shared:
        activation = self._knob("activation").register(hp)
        batch_norm = self._knob("batch_norm").register(hp)
        dropout = self._knob("dropout").register(hp)
        reg_knob = self._knob("regularizer")
        regularizer = reg_knob.register(hp)
        strength = None
        active = reg_knob.values_where(lambda r: r != NONE)
        if active:
            with hp.conditional_scope("regularizer", active):
                strength = self._knob("regularizer_strength").register(hp)
        self._knob("optimizer").register(hp)
        self._knob("learning_rate").register(hp)
        if self.knobs["batch_size"] is not None:
            self.knobs["batch_size"].register(hp)
        return Shared(activation, batch_norm, dropout, regularizer, strength)

    def _declare_prep(self, hp: keras_tuner.HyperParameters, params: dict[str, Any]) -> dict[str, Any]:
        """Registers the data-preparation knobs; returns this build's values."""
        return self.prep.register(hp)

    def prep_values(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """The data-preparation values of ``hp``'s build (``AutoHyperModel``:
        of the chosen family), by knob name.

        Args:
            hp: The hyperparameters of a build.

        Returns:
            A dict such as ``{"normalization": "standardize"}``.
        """
        return {n: hp.values[n] for n in self.prep.knobs if n in hp.values}

    def prep_specs(self) -> list[_prep.PrepSpec]:
        """The data-preparation knobs of every family this hypermodel builds."""
        return [self.prep]

    @property
    def needs_statistics(self) -> bool:
        """Whether some configuration takes the training data's statistics."""
        return any(spec.needs_statistics for spec in self.prep_specs())

    def adapt(self, x: Any, y: Any = None, *, validation_split: float | None = None) -> None:
        """Computes the training data's statistics for data preparation.

        As ``keras.layers.Normalization.adapt``: the mean and variance (or
        minimum and maximum) per channel of ``x``, the class frequencies of
        ``y``, and a few samples for TensorBoard's augmentation preview.
        ktplus's tuners call it once per search (once per fold with
        ``cv``) with the training data only; `fit` calls it with the data it
        is given (the same data again costs nothing). Does nothing for a
        hypermodel without data-preparation knobs.

        Args:
            x: Training inputs: an array, a pandas object, a finite
                ``tf.data.Dataset`` of ``(x, y)`` batches or a
                ``keras.utils.PyDataset``.
            y: Training targets (not needed for a dataset).
            validation_split: ``model.fit``'s: the last fraction of the
                arrays is left out.

        Example:

        >>> import numpy as np
        >>> import ktplus
        >>> hm = ktplus.DenseHyperModel(input_shape=(2,), num_classes=2,
        ...                             normalization="standardize")
        >>> hm.adapt(np.array([[0.0, 10.0], [2.0, 30.0]]), np.array([0, 1]))
        >>> hm.statistics.mean
        array([ 1., 20.])
        """
        if self.needs_statistics:
            self.statistics = self._statistics_cache.get(x, y, validation_split)

    @contextlib.contextmanager
    def training_data(self, args: tuple, kwargs: dict[str, Any]) -> Iterator[None]:
        """For a tuner: adapts to ``fit``'s raw training data (as given to
        ``search()``, before any conversion) and keeps those statistics
        for the fits inside the block, whatever form the data then takes."""
        if not self.needs_statistics:
            yield
            return
        x = args[0] if args else kwargs.get("x")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        self.adapt(x, y, validation_split=kwargs.get("validation_split"))
        self._pinned = True
        try:
            yield
        finally:
            self._pinned = False

    def _head(self, x: Any) -> Any:
        if self.task == "regression":
            return keras.layers.Dense(self.num_outputs, name="output")(x)
        if self.output_activation == "sigmoid":
            return keras.layers.Dense(1, activation="sigmoid", name="output")(x)
        return keras.layers.Dense(self.num_classes, activation="softmax", name="output")(x)

    def _default_loss(self) -> str:
        if self.task == "regression":
            return "mse"
        if self.output_activation == "sigmoid":
            return "binary_crossentropy"
        return "sparse_categorical_crossentropy"

    def make_optimizer(self, hp: keras_tuner.HyperParameters) -> keras.optimizers.Optimizer:
        """The optimizer chosen in ``hp``, at the chosen learning rate."""
        name = hp.get("optimizer")
        lr = hp.get("learning_rate")
        if name == "adam":
            return keras.optimizers.Adam(learning_rate=lr)
        if name == "adamw":
            return keras.optimizers.AdamW(learning_rate=lr)
        if name == "sgd":
            return keras.optimizers.SGD(learning_rate=lr, momentum=SGD_MOMENTUM)
        return keras.optimizers.RMSprop(learning_rate=lr)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Builds and compiles one model for the values in ``hp``.

        Args:
            hp: A `keras_tuner.HyperParameters` instance.

        Returns:
            A compiled `keras.Model`.
        """
        params = self._declare(hp)
        shared = self._declare_shared(hp)
        prep = self._declare_prep(hp, params)
        inputs = keras.Input(shape=self.input_shape, name="inputs")
        features = self._body(_prep.apply(inputs, prep, self.statistics), params, shared)
        outputs = self._head(features)
        model = keras.Model(inputs, outputs, name=f"ktplus_{self.family}")
        classification = self.task == "classification"
        model.compile(
            optimizer=self.make_optimizer(hp),
            loss=self.loss if self.loss is not None else self._default_loss(),
            metrics=[make_metric(m, classification) for m in self.metrics],
        )
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        """Trains ``model``, applying a tuned ``batch_size`` to array inputs.

        Args:
            hp: A `keras_tuner.HyperParameters` instance.
            model: The model built by ``build(hp)``.
            *args: Positional arguments of ``model.fit``.
            **kwargs: Keyword arguments of ``model.fit``.

        Returns:
            The ``History`` returned by ``model.fit``.
        """
        x = args[0] if args else kwargs.get("x")
        if self.knobs["batch_size"] is not None and "batch_size" in hp.values:
            if _is_array_like(x):
                kwargs["batch_size"] = hp.get("batch_size")
        if self.needs_statistics:
            self._prepare_fit(hp, model, args, kwargs)
        return model.fit(*args, **kwargs)

    def _prepare_fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, args: tuple,
                     kwargs: dict[str, Any]) -> None:
        """Sets the statistics of the data being fitted into ``model`` and,
        with ``class_weight="balanced"``, its class weights into ``kwargs``."""
        x = args[0] if args else kwargs.get("x")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        balanced = self.prep_values(hp).get("class_weight") == "balanced"
        if balanced and kwargs.get("class_weight") is not None:
            raise invalid("class_weight", kwargs["class_weight"],
                          "no class_weight in fit()/search() when the hypermodel's class_weight can be "
                          "'balanced' (it sets the weights itself); drop one of them")
        if not self._pinned:  # a ktplus tuner adapted to the raw data already (`training_data`)
            self.adapt(x, y, validation_split=kwargs.get("validation_split"))
        assert self.statistics is not None
        _prep.load_statistics(model, self.statistics)
        if balanced:
            assert self.num_classes is not None
            kwargs["class_weight"] = self.statistics.class_weights(self.num_classes)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, so ``cls.from_config(config)`` rebuilds it.

        Returns:
            A dict of constructor arguments (metric objects serialized).
        """
        config = {**self._shared_config, **self._family_config}
        config["metrics"] = [
            keras.saving.serialize_keras_object(m) if isinstance(m, keras.metrics.Metric) else m
            for m in self.metrics
        ]
        return copy.deepcopy(config)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BaseHyperModel:
        """Rebuilds a hypermodel from ``get_config()``'s output."""
        config = dict(config)
        config["metrics"] = [
            keras.saving.deserialize_keras_object(m) if isinstance(m, dict) else m
            for m in config.get("metrics") or []
        ] or None
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_shape={self.input_shape}, num_classes={self.num_classes})"


def _is_array_like(x: Any) -> bool:
    """Arrays, tensors, lists and dicts of them take a ``batch_size``."""
    if x is None:
        return False
    if isinstance(x, (list, tuple, dict)):
        return True
    return hasattr(x, "shape") and hasattr(x, "dtype")
