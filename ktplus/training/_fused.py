"""Fused training: the models of K trials that share a structure, trained
as one Keras model whose layers carry a leading member dimension (HFTA's
horizontal fusion). The traced graph is the size of one model, whatever K.

A member is an ordinary compiled model (what the trial's ``build`` gave); a
chain of layers fuses when every layer is one of:

* data-preparation layers and ``Flatten`` before the first ``Dense``: the
  same configuration (and statistics) in every member, applied once;
* ``Dense``: one batched matmul over a kernel of shape ``[K, in, out]``;
  members may differ in width (the narrower ones masked, see below) and in
  their kernel regularizer's strength (L1, L2 or both);
* ``Activation`` (the same in every member) and ``Dropout`` (a rate per
  member; a member without the layer has rate 0, which is the identity).

Members also differ in learning rate and schedule (one rate per member,
set every epoch) and may stop at different epochs: a stopped member's
variables are left exactly as they were (`FusedOptimizer`).

Why a masked member trains exactly as the narrow model: a member of width
``u`` in a layer fused at width ``W > u`` has its units ``u..W`` multiplied
by 0 after the activation, and the kernel rows and columns that touch them
start at 0. A masked unit outputs 0, so the gradient of every kernel row fed
by it is 0; the gradient reaching it is multiplied by 0, so its own kernel
column and bias get gradient 0. Adam, RMSprop and SGD move a variable whose
gradients were always 0 by exactly 0, weight decay scales 0 to 0, and the
member's regularization penalty is taken over the masked kernel (0 there).
The padded weights therefore stay 0, the member's outputs and loss are the
narrow model's plus exact zeros, and its weights are the narrow model's,
up to the order of floating-point summation.

Each member's output is a model output of its own (``m<k>``) with its own
loss (the member's loss plus its regularization penalty; its class weights
are sample weights of the training data) and its own metric objects, so Keras logs ``m<k>_loss``,
``val_m<k>_accuracy``, ...: `member_logs` gives a member the logs its
unfused model would have.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras import ops
from keras.src.losses.losses import LossFunctionWrapper

#: Keras optimizers a fused model reproduces (their own ``update_step``,
#: with one learning rate per member).
FUSABLE_OPTIMIZERS = (keras.optimizers.Adam, keras.optimizers.AdamW, keras.optimizers.SGD,
                      keras.optimizers.RMSprop)
_SHARED_LAYERS = (keras.layers.Normalization, keras.layers.Flatten, keras.layers.Rescaling,
                  keras.layers.RandomFlip, keras.layers.RandomRotation, keras.layers.RandomZoom,
                  keras.layers.RandomTranslation, keras.layers.RandomContrast, keras.layers.RandomCrop,
                  keras.layers.Resizing, keras.layers.GaussianNoise)
_IGNORED_CONFIG = ("name", "seed", "trainable", "dtype", "units", "rate", "kernel_regularizer",
                   "kernel_initializer", "bias_initializer")


def member_name(k: int) -> str:
    """The output name of member ``k`` in a fused model."""
    return f"m{k}"


def _config(layer: keras.layers.Layer) -> tuple:
    config = layer.get_config()
    return tuple(sorted((k, repr(v)) for k, v in config.items() if k not in _IGNORED_CONFIG))


def _weights_digest(layer: keras.layers.Layer) -> str:
    h = hashlib.sha1()
    for w in layer.weights:
        h.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return h.hexdigest()


def _regularization(layer: keras.layers.Dense) -> tuple[float, float] | None:
    """``(l1, l2)`` of a Dense layer's kernel regularizer (None: one that
    cannot be fused)."""
    reg = layer.kernel_regularizer
    if reg is None:
        return 0.0, 0.0
    if type(reg) is keras.regularizers.L1:
        return float(reg.l1), 0.0
    if type(reg) is keras.regularizers.L2:
        return 0.0, float(reg.l2)
    if type(reg) is keras.regularizers.L1L2:
        return float(reg.l1), float(reg.l2)
    return None


@dataclass
class MemberPlan:
    """One member model read as a fusable chain.

    ``key`` is what members must share; the rest is what each may differ in.
    """

    key: tuple
    shared: list[keras.layers.Layer]
    dense: list[keras.layers.Dense]
    widths: list[int]
    regularization: list[tuple[float, float]]
    #: ``(position, rate)``: a dropout after the position-th fused op.
    dropout: dict[int, float] = field(default_factory=dict)


def member_plan(model: Any) -> MemberPlan | None:
    """``model`` read as a fusable chain, or None when it is not one (a
    layer kind, a branch, a regularizer or an optimizer fusion cannot
    reproduce)."""
    if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
        return None
    if type(model.optimizer) not in FUSABLE_OPTIMIZERS:
        return None
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    previous = model.inputs[0]
    key: list[Any] = [tuple(model.inputs[0].shape[1:]), str(model.inputs[0].dtype)]
    shared: list[keras.layers.Layer] = []
    dense: list[keras.layers.Dense] = []
    widths: list[int] = []
    regs: list[tuple[float, float]] = []
    dropout: dict[int, float] = {}
    ops_count = 0
    for layer in layers:
        try:
            if layer.input is not previous:  # not a chain
                return None
        except (AttributeError, ValueError):
            return None
        previous = layer.output
        if layer.losses and not isinstance(layer, keras.layers.Dense):
            return None
        if not dense and isinstance(layer, _SHARED_LAYERS):
            shared.append(layer)
            key.append(("shared", type(layer).__name__, _config(layer), _weights_digest(layer)))
            continue
        if type(layer) is keras.layers.Dense:
            reg = _regularization(layer)
            if reg is None or layer.bias_regularizer is not None or layer.activity_regularizer is not None \
                    or layer.kernel_constraint is not None or layer.bias_constraint is not None:
                return None
            dense.append(layer)
            widths.append(int(layer.units))
            regs.append(reg)
            key.append(("dense", _config(layer)))
            ops_count += 1
        elif type(layer) is keras.layers.Activation:
            key.append(("activation", _config(layer)))
            ops_count += 1
        elif type(layer) is keras.layers.Dropout:
            if layer.noise_shape is not None or not dense:
                return None
            dropout[ops_count] = float(layer.rate)
        else:
            return None
    if not dense:
        return None
    key.append(("widths_of", len(widths), widths[-1]))  # the head's width is the output's
    optimizer = model.optimizer.get_config()
    key.append(("optimizer", type(model.optimizer).__name__,
                tuple(sorted((k, repr(v)) for k, v in optimizer.items()
                             if k not in ("name", "learning_rate")))))
    return MemberPlan(tuple(key), shared, dense, widths, regs, dropout)


#: How much wider than its own model a member's fused layers may be: the
#: compute a masked member wastes is at most this factor of its own.
MAX_PADDING = 2.0


def _cost(fan_in: int, widths: list[int]) -> int:
    """Multiply-adds per sample of a chain of dense layers."""
    cost, previous = 0, fan_in
    for width in widths:
        cost += previous * width
        previous = width
    return cost


def fusion_groups(plans: list[MemberPlan], size: int | None = None) -> list[list[int]]:
    """Members (indices into ``plans``) grouped to train fused: the same
    ``key``, and widths close enough that padding every member to the
    group's widest costs at most `MAX_PADDING` times its own compute;
    at most ``size`` members a group. Singletons train alone."""
    by_key: dict[tuple, list[int]] = {}
    for i, plan in enumerate(plans):
        by_key.setdefault(plan.key, []).append(i)
    groups: list[list[int]] = []
    for members in by_key.values():
        fan_in = int(plans[members[0]].dense[0].kernel.shape[0])
        own = {i: _cost(fan_in, plans[i].widths) for i in members}
        open_groups: list[list[int]] = []
        for i in sorted(members, key=lambda i: -own[i]):
            for group in open_groups:
                if size is not None and len(group) >= size:
                    continue
                widths = [max(plans[j].widths[n] for j in (*group, i)) for n in range(len(plans[i].widths))]
                padded = _cost(fan_in, widths)
                if all(padded <= MAX_PADDING * own[j] for j in (*group, i)):
                    group.append(i)
                    break
            else:
                open_groups.append([i])
        groups.extend(sorted(g) for g in open_groups)
    return groups


# -- layers with a member dimension ------------------------------------------


class FusedDense(keras.layers.Layer):
    """K Dense layers as one: ``[K, B, in] @ [K, in, out]`` (a shared
    ``[B, in]`` input is broadcast to every member)."""

    def __init__(self, members: int, units: int, activation: Any, use_bias: bool,
                 out_mask: np.ndarray | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.members = members
        self.units = units
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self._out_mask = None if out_mask is None else out_mask.astype("float32")

    def build(self, input_shape: tuple) -> None:
        fan_in = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(self.members, fan_in, self.units),
                                      initializer="zeros")
        self.bias = (self.add_weight(name="bias", shape=(self.members, self.units), initializer="zeros")
                     if self.use_bias else None)
        if self._out_mask is not None:
            self.out_mask = self.add_weight(name="out_mask", shape=(self.members, self.units),
                                            initializer="zeros", trainable=False)
            self.out_mask.assign(self._out_mask)

    def call(self, x: Any) -> Any:
        if len(x.shape) == 2:  # a shared input: one matmul over every member's columns
            fan_in = self.kernel.shape[1]
            wide = ops.reshape(ops.transpose(self.kernel, (1, 0, 2)), (fan_in, self.members * self.units))
            y = ops.transpose(ops.reshape(ops.matmul(x, wide), (-1, self.members, self.units)), (1, 0, 2))
        else:
            y = ops.matmul(x, self.kernel)
        if self.bias is not None:
            y = y + ops.expand_dims(self.bias, 1)
        y = self.activation(y)
        if self._out_mask is not None:
            y = y * ops.expand_dims(self.out_mask, 1)
        return y

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        batch = input_shape[0] if len(input_shape) == 2 else input_shape[1]
        return (self.members, batch, self.units)


class FusedActivation(keras.layers.Layer):
    """An activation over every member, padded units kept at 0."""

    def __init__(self, activation: Any, out_mask: np.ndarray | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self._out_mask = None if out_mask is None else out_mask.astype("float32")

    def build(self, input_shape: tuple) -> None:
        if self._out_mask is not None:
            self.out_mask = self.add_weight(name="out_mask", shape=self._out_mask.shape,
                                            initializer="zeros", trainable=False)
            self.out_mask.assign(self._out_mask)

    def call(self, x: Any) -> Any:
        y = self.activation(x)
        if self._out_mask is not None:
            y = y * ops.expand_dims(self.out_mask, 1)
        return y

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape


class FusedDropout(keras.layers.Layer):
    """Dropout at one rate per member (rate 0: the identity, exactly)."""

    def __init__(self, rates: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rates = [float(r) for r in rates]
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, x: Any, training: Any = None) -> Any:
        if not training:
            return x
        rates = np.asarray(self.rates, dtype="float32").reshape(-1, 1, 1)
        keep = keras.random.uniform(ops.shape(x), seed=self.seed_generator, dtype=x.dtype) >= rates
        return ops.where(keep, x * (1.0 / (1.0 - rates)), 0.0)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape


class MemberOutput(keras.layers.Layer):
    """Member ``k``'s slice of a fused tensor: one model output."""

    def __init__(self, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index

    def call(self, x: Any) -> Any:
        out = x[self.index]
        logits = getattr(x, "_keras_logits", None)
        if logits is not None:
            # Keras' cross-entropies read a softmax's or sigmoid's logits from its output (the stable
            # form an unfused model's loss takes): the member's slice keeps its own.
            try:
                out._keras_logits = logits[self.index]
            except AttributeError:
                pass
        return out

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape[1:])


class LossTracker(keras.metrics.Mean):
    """A member's ``loss`` log: the mean of its loss over the batches,
    weighted by their sizes, as Keras' own loss tracker averages a model's
    loss (Keras' per-output loss logs weigh every batch alike). Its member's
    loss records each value; Keras only resets and reads it."""

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        return None

    def record(self, value: Any, batch_size: Any) -> None:
        super().update_state(value, sample_weight=ops.cast(batch_size, self.dtype))


#: The name a member's loss tracker logs under (`member_logs` renames it ``loss``).
LOSS_TRACKER = "ktplus_member_loss"


class _MemberLoss(keras.losses.Loss):
    """A member's loss: its model's loss (its class weights arrive as
    sample weights of the training data, as Keras applies ``class_weight``)
    plus its regularization penalty, as its unfused model's total loss is."""

    def __init__(self, base: Any, penalty: Any, tracker: LossTracker, name: str) -> None:
        super().__init__(name=name)
        self.tracker = tracker
        base = keras.losses.get(base) if isinstance(base, str) else base
        # As Keras' compile does: a loss function is reduced over the batch by a wrapper.
        self.base = base if isinstance(base, keras.losses.Loss) else LossFunctionWrapper(base)
        self.penalty = penalty

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        value = self.base(y_true, y_pred, sample_weight)
        penalty = self.penalty()
        value = value if penalty is None else value + penalty
        self.tracker.record(value, ops.shape(y_pred)[0])
        return value

    def call(self, y_true: Any, y_pred: Any) -> Any:  # pragma: no cover - __call__ is used
        raise NotImplementedError


def fused_optimizer(template: keras.optimizers.Optimizer, members: int) -> keras.optimizers.Optimizer:
    """An optimizer of ``template``'s class and settings whose learning
    rate is one value per member (``member_lr``) and which leaves the
    variables of inactive members (``active`` 0) exactly unchanged."""
    base = type(template)
    config = {k: v for k, v in template.get_config().items() if k not in ("name",)}
    config["learning_rate"] = 1.0

    class Fused(base):  # type: ignore[misc, valid-type]
        def build(self, variables: list) -> None:
            super().build(variables)
            self.member_lr = self.add_variable((members,), initializer="zeros", name="member_lr")
            self.active = self.add_variable((members,), initializer="ones", name="active")

        def _member(self, vector: Any, variable: Any) -> Any:
            return ops.reshape(ops.cast(vector, variable.dtype), (members,) + (1,) * (len(variable.shape) - 1))

        def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
            if len(variable.shape) == 0 or variable.shape[0] != members:
                return
            before = ops.convert_to_tensor(variable)
            super().update_step(gradient, variable, self._member(self.member_lr, variable))
            keep = ops.cast(self._member(self.active, variable), "bool")
            self.assign(variable, ops.where(keep, variable, before))

        def _apply_weight_decay(self, variables: list) -> None:
            if self.weight_decay is None:
                return
            for variable in variables:
                if self._use_weight_decay(variable) and len(variable.shape) and variable.shape[0] == members:
                    lr = self._member(self.member_lr * self.active, variable)
                    wd = ops.cast(self.weight_decay, variable.dtype)
                    variable.assign(variable - variable * wd * lr)

    Fused.__name__ = f"Fused{base.__name__}"
    return Fused(**config)


class FusedModel:
    """K member models of one fusion key, trained as one Keras model.

    Args:
        plans: Each member's `MemberPlan` (the same ``key``).
        models: The member models (their current weights are loaded).
        loss: The members' loss (a Keras loss or its name).
        metrics: One list of fresh metric objects per member.
        steps_per_execution: For the fused model's compile.
    """

    def __init__(self, plans: list[MemberPlan], models: list[keras.Model], loss: Any,
                 metrics: list[list[Any]], steps_per_execution: int = 1) -> None:
        self.plans = plans
        self.k = k = len(plans)
        first = plans[0]
        n_dense = len(first.dense)
        self.widths = [max(p.widths[i] for p in plans) for i in range(n_dense)]
        masks: list[np.ndarray | None] = []
        for i, width in enumerate(self.widths):
            if all(p.widths[i] == width for p in plans):
                masks.append(None)
            else:
                mask = np.zeros((k, width), dtype="float32")
                for m, p in enumerate(plans):
                    mask[m, :p.widths[i]] = 1.0
                masks.append(mask)
        inputs = keras.Input(shape=tuple(models[0].inputs[0].shape[1:]), dtype=models[0].inputs[0].dtype,
                             name="inputs")
        x = inputs
        for layer in first.shared:
            x = layer(x)
        positions = sorted({pos for p in plans for pos in p.dropout})
        self.dense_layers: list[FusedDense] = []
        op = 0
        dense_i = 0
        last_mask: np.ndarray | None = None
        member_layers = [layer for layer in models[0].layers
                         if isinstance(layer, (keras.layers.Dense, keras.layers.Activation))
                         and layer not in first.shared]
        for layer in member_layers:
            if isinstance(layer, keras.layers.Dense):
                last_mask = masks[dense_i]
                fused = FusedDense(k, self.widths[dense_i], layer.get_config()["activation"], layer.use_bias,
                                   last_mask, name=f"fused_dense_{dense_i}")
                x = fused(x)
                self.dense_layers.append(fused)
                dense_i += 1
            else:
                x = FusedActivation(layer.get_config()["activation"], last_mask, name=f"fused_activation_{op}")(x)
            op += 1
            if op in positions:
                rates = [p.dropout.get(op, 0.0) for p in plans]
                x = FusedDropout(rates, name=f"fused_dropout_{op}")(x)
        outputs = [MemberOutput(m, name=member_name(m))(x) for m in range(k)]
        self.model = keras.Model(inputs, outputs, name="ktplus_fused")
        self._regs = [[p.regularization[i] for i in range(n_dense)] for p in plans]
        self._in_masks = [self._in_mask(i, masks) for i in range(n_dense)]
        trackers = [LossTracker(name=LOSS_TRACKER) for _ in range(k)]
        losses = {member_name(m): _MemberLoss(loss, self._penalty(m), trackers[m], name=f"{member_name(m)}_loss")
                  for m in range(k)}
        self.optimizer = fused_optimizer(models[0].optimizer, k)
        self.model.compile(optimizer=self.optimizer, loss=losses,
                           metrics={member_name(m): [*metrics[m], trackers[m]] for m in range(k)},
                           steps_per_execution=steps_per_execution)
        self.optimizer.build(self.model.trainable_variables)
        for m, model in enumerate(models):
            self.load(m, model)

    def _in_mask(self, i: int, out_masks: list[np.ndarray | None]) -> np.ndarray | None:
        """The kernel mask ``[K, in, out]`` of dense layer ``i`` (None when
        no member is padded there)."""
        out_mask = out_masks[i]
        in_mask = out_masks[i - 1] if i > 0 else None
        if out_mask is None and in_mask is None:
            return None
        layer = self.dense_layers[i]
        fan_in = int(layer.kernel.shape[1])
        a = in_mask if in_mask is not None else np.ones((self.k, fan_in), "float32")
        b = out_mask if out_mask is not None else np.ones((self.k, layer.units), "float32")
        return (a[:, :, None] * b[:, None, :]).astype("float32")

    def _penalty(self, m: int) -> Any:
        terms = [(i, l1, l2) for i, (l1, l2) in enumerate(self._regs[m]) if l1 or l2]
        if not terms:
            return lambda: None

        def penalty() -> Any:
            total = None
            for i, l1, l2 in terms:
                w = self.dense_layers[i].kernel[m]
                mask = self._in_masks[i]
                if mask is not None:
                    w = w * ops.convert_to_tensor(mask[m])
                value = None
                if l1:
                    value = l1 * ops.sum(ops.absolute(w))
                if l2:
                    term = l2 * ops.sum(ops.square(w))
                    value = term if value is None else value + term
                total = value if total is None else total + value
            return total

        return penalty

    # -- members' weights --------------------------------------------------

    def load(self, m: int, model: keras.Model) -> None:
        """Member ``m``'s slice of the fused weights := ``model``'s weights
        (the padded part 0)."""
        dense = [layer for layer in model.layers if type(layer) is keras.layers.Dense]
        for fused, layer in zip(self.dense_layers, dense, strict=True):
            kernel = keras.ops.convert_to_numpy(fused.kernel).copy()
            w = keras.ops.convert_to_numpy(layer.kernel)
            kernel[m] = 0.0
            kernel[m, :w.shape[0], :w.shape[1]] = w
            fused.kernel.assign(kernel)
            if fused.bias is not None:
                bias = keras.ops.convert_to_numpy(fused.bias).copy()
                b = keras.ops.convert_to_numpy(layer.bias)
                bias[m] = 0.0
                bias[m, :b.shape[0]] = b
                fused.bias.assign(bias)

    def store(self, members: list[int]) -> None:
        """Each member model in ``members`` (indices) := its slice of the
        fused weights (its plan's layers are its model's)."""
        for j, fused in enumerate(self.dense_layers):
            kernel = keras.ops.convert_to_numpy(fused.kernel)
            bias = keras.ops.convert_to_numpy(fused.bias) if fused.bias is not None else None
            for m in members:
                layer = self.plans[m].dense[j]
                shape = tuple(layer.kernel.shape)
                layer.kernel.assign(kernel[m, :shape[0], :shape[1]])
                if bias is not None:
                    layer.bias.assign(bias[m, :layer.units])

    def set_learning_rates(self, rates: list[float]) -> None:
        self.optimizer.member_lr.assign(np.asarray(rates, dtype="float32"))

    def set_active(self, active: list[bool]) -> None:
        self.optimizer.active.assign(np.asarray(active, dtype="float32"))


def member_logs(logs: dict[str, Any] | None, m: int) -> dict[str, Any]:
    """Member ``m``'s entries of a fused model's logs, under the names its
    unfused model logs them (``m3_loss`` -> ``loss``, ``val_m3_accuracy``
    -> ``val_accuracy``)."""
    prefix = member_name(m) + "_"
    out: dict[str, Any] = {}
    for name, value in (logs or {}).items():
        if name.startswith(prefix):
            out[name[len(prefix):]] = value
        elif name.startswith("val_" + prefix):
            out["val_" + name[len("val_" + prefix):]] = value
    for name in ("", "val_"):  # the loss as Keras' loss tracker averages it
        if name + LOSS_TRACKER in out:
            out[name + "loss"] = out.pop(name + LOSS_TRACKER)
    return out


def class_weight_vector(class_weight: dict | None, num_classes: int | None) -> np.ndarray | None:
    """A ``class_weight`` dict as a vector indexed by class (a class the
    dict does not name weighs 1, as in Keras' ``class_weight``)."""
    if class_weight is None:
        return None
    size = max(int(num_classes or 0), max(int(c) for c in class_weight) + 1)
    vector = np.ones(size, dtype="float32")
    for c, w in class_weight.items():
        vector[int(c)] = float(w)
    return vector


def member_targets(members: int, class_weights: list[np.ndarray | None]) -> Any:
    """A ``tf.data`` map from ``(x, y)`` batches to a fused model's:
    ``y`` for every member and, when some member has class weights, each
    member's sample weights (as Keras' ``class_weight`` makes them: the
    weight of each sample's class, 1 for a member without)."""
    import tensorflow as tf

    names = range(members)
    tables = [None if cw is None else tf.constant(cw) for cw in class_weights]

    def classes(y: Any) -> Any:
        if y.shape.rank is not None and y.shape.rank >= 2:
            return tf.cond(tf.shape(y)[-1] != 1, lambda: tf.argmax(y, axis=-1),
                           lambda: tf.cast(tf.squeeze(y, axis=-1), "int64"))
        return tf.cast(tf.round(y), "int64")

    def fn(*batch: Any) -> Any:
        x, y = batch[0], batch[1]
        ys = tuple(y for _ in names)  # in the order of the model's outputs
        if all(t is None for t in tables):
            return x, ys
        c = classes(y)
        ones = tf.ones(tf.shape(c), "float32")
        return x, ys, tuple(ones if t is None else tf.gather(t, c) for t in tables)

    return fn
