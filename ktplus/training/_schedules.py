"""Learning-rate decay by epoch, scaling whatever optimizer the model has.

Formulas, for the learning rate the model was compiled with ``lr0``, the
epoch ``e`` (0-based, absolute: a Hyperband continuation at
``initial_epoch=k`` starts at ``e=k``), the warmup length ``W`` and the total
number of epochs ``E``; with ``t = e - W`` and ``T = max(1, E - W)``:

* warmup (``e < W``): ``lr0 * (e + 1) / (W + 1)`` (the linear warmup of
  ``CosineDecay(0.0, warmup_target=lr0, warmup_steps=W + 1)`` at step ``e + 1``)
* "exponential": ``lr0 * decay_rate ** t``
  (``keras.optimizers.schedules.ExponentialDecay`` with ``decay_steps=1``)
* "step": ``lr0 * factor ** floor(t / step_size)``; ``step_size=0`` means
  ``max(1, T // 3)``
* "cosine": ``lr0 * (alpha + (1 - alpha) * 0.5 * (1 + cos(pi * min(t, T) / T)))``
  (``CosineDecay(decay_steps=T, alpha=alpha)``)
* "polynomial": ``(lr0 - lr_end) * (1 - min(t, T) / T) ** power + lr_end``, with
  ``lr_end = lr0 * end_factor`` (``PolynomialDecay(decay_steps=T)``)
* "plateau": ``lr0 * max(factor ** k, min_factor)``, where ``k`` is the number
  of reductions so far, counted from epoch ``W`` on exactly as
  ``keras.callbacks.ReduceLROnPlateau`` counts them: a value of the objective
  improves when it beats the best so far by more than ``min_delta``
  (``v < best - min_delta`` when minimizing, ``v > best + min_delta`` when
  maximizing); otherwise ``wait`` grows by one; when ``wait`` reaches
  ``patience``, ``k`` grows by one (unless the rate is already at
  ``lr0 * min_factor``) and ``wait`` goes back to 0. Each of the ``cooldown``
  epochs after a reduction resets ``wait`` to 0 and only the last of them
  counts (so ``cooldown=1`` changes nothing, as in ReduceLROnPlateau).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import keras
import keras_tuner

from ktplus._errors import invalid

SCHEDULES = ("exponential", "step", "cosine", "polynomial", "plateau")

#: Parameters of each schedule and their defaults.
DEFAULTS: dict[str, dict[str, float]] = {
    "exponential": {"decay_rate": 0.9},
    "step": {"factor": 0.5, "step_size": 0.0},  # 0: a third of the epochs
    "cosine": {"alpha": 0.0},
    "polynomial": {"power": 1.0, "end_factor": 0.01},
    "plateau": {"factor": 0.5, "patience": 3.0, "min_factor": 1e-3, "min_delta": 1e-4, "cooldown": 0.0},
}

#: The search space of ``lr_decay="tune"``.
TUNE_SPACE: dict[str, dict[str, tuple[float, float]]] = {
    "exponential": {"decay_rate": (0.8, 0.99)},
    "step": {"factor": (0.1, 0.7)},
    "cosine": {"alpha": (0.0, 0.1)},
    "polynomial": {"power": (0.5, 2.0)},
    "plateau": {"factor": (0.1, 0.7)},
}

#: The range of warmup epochs that ``lr_decay="tune"`` searches.
TUNE_WARMUP: tuple[int, int] = (0, 3)

_WHOLE = "a whole number >= 0"
_Rule = tuple[Callable[[float], bool], str]
_RULES: dict[str, dict[str, _Rule]] = {
    "exponential": {"decay_rate": (lambda v: 0 < v <= 1, "a number in (0, 1]")},
    "step": {"factor": (lambda v: 0 < v < 1, "a number in (0, 1)"),
             "step_size": (lambda v: v >= 0 and v.is_integer(), _WHOLE + " (0: a third of the epochs)")},
    "cosine": {"alpha": (lambda v: 0 <= v <= 1, "a number in [0, 1]")},
    "polynomial": {"power": (lambda v: v > 0, "a number > 0"),
                   "end_factor": (lambda v: 0 <= v <= 1, "a number in [0, 1]")},
    "plateau": {"factor": (lambda v: 0 < v < 1, "a number in (0, 1)"),
                "patience": (lambda v: v >= 0 and v.is_integer(), _WHOLE),
                "min_factor": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
                "min_delta": (lambda v: v >= 0, "a number >= 0"),
                "cooldown": (lambda v: v >= 0 and v.is_integer(), _WHOLE)},
}


def _is_real(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def _is_epochs(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0


@dataclass(frozen=True)
class LRDecay:
    """A learning-rate schedule applied per epoch by ktplus tuners.

    Args:
        schedule: "exponential", "step", "cosine", "polynomial" or "plateau".
        warmup_epochs: Epochs of linear warmup before the schedule.
        params: Schedule parameters overriding ``DEFAULTS[schedule]``, e.g.
            ``{"decay_rate": 0.8}``, ``{"factor": 0.1, "step_size": 5}`` or
            ``{"patience": 2, "min_delta": 0.01, "cooldown": 1}``. Every value
            is a real number; ``step_size``, ``patience`` and ``cooldown``
            are whole numbers.

    Example:

    >>> from ktplus.training import LRDecay
    >>> decay = LRDecay("step", params={"factor": 0.5, "step_size": 2})
    >>> [decay.factor(e, total_epochs=6) for e in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    >>> LRDecay("cosine", warmup_epochs=1).factor(0, total_epochs=5)
    0.5
    """

    schedule: str
    warmup_epochs: int = 0
    params: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, str) or self.schedule not in SCHEDULES:
            raise invalid("lr_decay", self.schedule,
                          f"None, 'tune' or one of {', '.join(map(repr, SCHEDULES))}")
        if not _is_epochs(self.warmup_epochs):
            raise invalid("warmup_epochs", self.warmup_epochs, "an integer >= 0 (epochs of linear warmup)")
        object.__setattr__(self, "warmup_epochs", int(self.warmup_epochs))
        if not isinstance(self.params, Mapping):
            raise invalid("lr_decay", self.params,
                          f"params of {self.schedule!r} as a dict with keys among {sorted(DEFAULTS[self.schedule])}")
        object.__setattr__(self, "params", dict(self.params))
        shown = {"schedule": self.schedule, **self.params}
        unknown = set(self.params) - set(DEFAULTS[self.schedule])
        if unknown:
            raise invalid("lr_decay", shown,
                          f"parameters of {self.schedule!r} among {sorted(DEFAULTS[self.schedule])} "
                          f"(unknown: {sorted(map(str, unknown))})")
        for name, value in self.params.items():
            check, allowed = _RULES[self.schedule][name]
            if not _is_real(value) or not check(float(value)):
                raise invalid("lr_decay", shown, f"{name!r} of {self.schedule!r} as {allowed}, "
                                                 f"not {value!r}")

    def param(self, name: str) -> float:
        """The value of parameter ``name`` (given or default)."""
        return float(self.params.get(name, DEFAULTS[self.schedule][name]))

    def factor(self, epoch: int, total_epochs: int, plateau_reductions: int = 0) -> float:
        """The multiplier of the base learning rate at ``epoch``.

        Args:
            epoch: The 0-based absolute epoch.
            total_epochs: The epoch budget the schedule spans.
            plateau_reductions: For "plateau", the reductions so far.

        Returns:
            The factor, in (0, 1].
        """
        w = self.warmup_epochs
        if epoch < w:
            return (epoch + 1) / (w + 1)
        t = epoch - w
        total = max(1, total_epochs - w)
        s, p = self.schedule, self.param
        if s == "exponential":
            return p("decay_rate") ** t
        if s == "step":
            step = int(p("step_size")) or max(1, total // 3)
            return p("factor") ** (t // step)
        if s == "cosine":
            a = p("alpha")
            return a + (1 - a) * 0.5 * (1 + math.cos(math.pi * min(t, total) / total))
        if s == "polynomial":
            end = p("end_factor")
            return (1 - end) * (1 - min(t, total) / total) ** p("power") + end
        return max(p("factor") ** plateau_reductions, p("min_factor"))


@dataclass(frozen=True)
class TunedLRDecay:
    """``lr_decay="tune"``: the schedule and its parameters are hyperparameters.

    The schedule is the ``lr_decay`` choice ("none" or one of `SCHEDULES`),
    each schedule's parameters of `TUNE_SPACE` are searched in its
    conditional scope, and so is ``lr_warmup_epochs`` unless this fixes it.

    Args:
        warmup_epochs: None to tune the warmup too (0 to 3 epochs), or the
            fixed number of warmup epochs (the tuners' ``lr_warmup``).

    Example:

    >>> import keras_tuner
    >>> from ktplus.training._schedules import TunedLRDecay, declare_tuned_decay, decay_from_hp
    >>> tuned = TunedLRDecay(warmup_epochs=2)
    >>> hp = keras_tuner.HyperParameters()
    >>> declare_tuned_decay(hp, tuned)
    >>> sorted(hp.values)
    ['lr_decay']
    >>> hp.values.update({"lr_decay": "cosine", "lr_decay_alpha": 0.05})  # a trial's values
    >>> decay_from_hp(hp, tuned)
    LRDecay(schedule='cosine', warmup_epochs=2, params={'alpha': 0.05})
    """

    warmup_epochs: int | None = None

    def __post_init__(self) -> None:
        if self.warmup_epochs is not None:
            if not _is_epochs(self.warmup_epochs):
                raise invalid("warmup_epochs", self.warmup_epochs,
                              "None (tune the warmup) or an integer >= 0 (epochs of linear warmup)")
            object.__setattr__(self, "warmup_epochs", int(self.warmup_epochs))


def parse_lr_decay(value: Any, warmup: Any = 0) -> LRDecay | TunedLRDecay | None:
    """Validates ``lr_decay=`` and ``lr_warmup=`` of the ktplus tuners.

    Args:
        value: None, "tune", a schedule name, a dict
            ``{"schedule": ..., **params}`` (optionally with
            ``"warmup_epochs"``), an `LRDecay` or a `TunedLRDecay`.
        warmup: Epochs of linear warmup, an integer >= 0. It applies to
            every form of ``value``; a form that sets its own warmup must
            agree with it (or ``warmup`` must be 0).

    Returns:
        An `LRDecay`, a `TunedLRDecay` for "tune", or None.

    Raises:
        ValueError: naming the argument, the value and what is allowed.

    Example:

    >>> parse_lr_decay("step", 2)
    LRDecay(schedule='step', warmup_epochs=2, params={})
    >>> parse_lr_decay("tune")
    TunedLRDecay(warmup_epochs=None)
    """
    expected = (f"None, 'tune', one of {', '.join(map(repr, SCHEDULES))}, a dict such as "
                "{'schedule': 'step', 'factor': 0.5}, or a ktplus.training.LRDecay")
    if not _is_epochs(warmup):
        raise invalid("lr_warmup", warmup, "an integer >= 0 (epochs of linear warmup)")
    warmup = int(warmup)
    if value is None:
        if warmup:
            raise invalid("lr_warmup", warmup, "0 unless lr_decay is set")
        return None
    if isinstance(value, str):
        if value == "tune":
            return TunedLRDecay(warmup if warmup else None)
        if value not in SCHEDULES:
            raise invalid("lr_decay", value, expected)
        return LRDecay(value, warmup)
    given = value
    if isinstance(value, Mapping) and isinstance(value.get("schedule"), str):
        params = {k: v for k, v in value.items() if k not in ("schedule", "warmup_epochs")}
        value = LRDecay(value["schedule"], value.get("warmup_epochs", 0), params)
    if isinstance(value, LRDecay | TunedLRDecay):
        own = value.warmup_epochs
        unset = 0 if isinstance(value, LRDecay) else None
        if not warmup or own == warmup:
            return value
        if own == unset:
            return dataclasses.replace(value, warmup_epochs=warmup)
        raise invalid("lr_warmup", warmup,
                      f"{'0' if own == 0 else f'0 or {own}'}, since lr_decay={given!r} already sets "
                      f"warmup_epochs={own} (set the warmup in one place)")
    raise invalid("lr_decay", value, expected)


def declare_tuned_decay(hp: keras_tuner.HyperParameters, tuned: TunedLRDecay | None = None) -> None:
    """Registers the ``lr_decay="tune"`` hyperparameters in ``hp``.

    ``lr_decay`` chooses "none" or a schedule; each schedule's `TUNE_SPACE`
    parameters live in its conditional scope, with ``lr_warmup_epochs``
    (tuned, or ``hp.Fixed`` when ``tuned.warmup_epochs`` is set).

    Args:
        hp: The `keras_tuner.HyperParameters` to add to.
        tuned: The parsed ``lr_decay="tune"`` (None: ``TunedLRDecay()``).
    """
    tuned = tuned if tuned is not None else TunedLRDecay()
    hp.Choice("lr_decay", ["none", *SCHEDULES], default="none")
    for schedule, space in TUNE_SPACE.items():
        with hp.conditional_scope("lr_decay", [schedule]):
            for name, (lo, hi) in space.items():
                hp.Float(f"lr_decay_{name}", lo, hi)
    with hp.conditional_scope("lr_decay", list(SCHEDULES)):
        if tuned.warmup_epochs is None:
            hp.Int("lr_warmup_epochs", *TUNE_WARMUP)
        else:
            hp.Fixed("lr_warmup_epochs", tuned.warmup_epochs)


def decay_from_hp(hp: keras_tuner.HyperParameters, tuned: TunedLRDecay | None = None) -> LRDecay | None:
    """The schedule a trial's ``lr_decay="tune"`` values describe.

    Args:
        hp: The trial's hyperparameters (declared by `declare_tuned_decay`).
        tuned: The parsed ``lr_decay="tune"``; its fixed warmup wins.

    Returns:
        The `LRDecay`, or None when the trial chose "none".
    """
    values = hp.values
    schedule = values.get("lr_decay", "none")
    if schedule == "none":
        return None
    params = {name: values[f"lr_decay_{name}"] for name in TUNE_SPACE[schedule]
              if f"lr_decay_{name}" in values}
    fixed = tuned.warmup_epochs if tuned is not None else None
    warmup = fixed if fixed is not None else int(values.get("lr_warmup_epochs", 0))
    return LRDecay(schedule, warmup, params)


def needs_single_metric(decay: Any) -> bool:
    """Whether ``decay`` watches the objective (so needs one metric to watch).

    Args:
        decay: What `parse_lr_decay` returned.

    Returns:
        True for a "plateau" `LRDecay` and for any `TunedLRDecay` (which may
        choose "plateau"), False otherwise.
    """
    return isinstance(decay, TunedLRDecay) or (isinstance(decay, LRDecay) and decay.schedule == "plateau")


def _inner_optimizer(optimizer: Any) -> Any:
    """The optimizer that holds the rate (through any LossScaleOptimizer)."""
    while isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    return optimizer


def _rate_is_settable(optimizer: Any) -> bool:
    """False for a LearningRateSchedule (or callable) rate, even wrapped."""
    rate = getattr(_inner_optimizer(optimizer), "_learning_rate", None)
    return not isinstance(rate, keras.optimizers.schedules.LearningRateSchedule) and (
        isinstance(rate, keras.Variable) or not callable(rate))


def _get_lr(optimizer: Any) -> float:
    return float(keras.ops.convert_to_numpy(_inner_optimizer(optimizer).learning_rate))


def _set_lr(optimizer: Any, value: float) -> bool:
    if not _rate_is_settable(optimizer):
        return False
    _inner_optimizer(optimizer).learning_rate = value
    return True


class LearningRateDecay(keras.callbacks.Callback):
    """Sets the optimizer's learning rate at the start of each epoch.

    The base rate is the optimizer's rate at the start of training, so it
    works with any optimizer a model was compiled with, also wrapped in a
    `keras.optimizers.LossScaleOptimizer` (mixed precision). A model
    compiled with a `LearningRateSchedule` keeps its schedule (with a
    warning). Each epoch's rate is written to the logs as ``learning_rate``.

    Args:
        decay: The `LRDecay` to apply.
        total_epochs: The epoch budget the schedule spans, or None for the
            epochs each fit trains (``epochs`` of ``model.fit``, which Keras
            hands callbacks as ``self.params["epochs"]``).
        monitor: Metric watched by "plateau".
        mode: "min" or "max", the better direction of ``monitor``.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(0.1), "mse")
    >>> cb = LearningRateDecay(LRDecay("exponential", params={"decay_rate": 0.5}), total_epochs=3)
    >>> history = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=3, verbose=0, callbacks=[cb])
    >>> [round(lr, 4) for lr in history.history["learning_rate"]]
    [0.1, 0.05, 0.025]
    """

    def __init__(self, decay: LRDecay, total_epochs: int | None, monitor: str = "val_loss",
                 mode: str = "min") -> None:
        super().__init__()
        if not isinstance(decay, LRDecay):
            raise invalid("decay", decay, "a ktplus.training.LRDecay (for lr_decay='tune', the one "
                                          "decay_from_hp(hp, tuned) returns)")
        if total_epochs is not None and (not isinstance(total_epochs, numbers.Integral)
                                         or isinstance(total_epochs, bool) or total_epochs < 1):
            raise invalid("total_epochs", total_epochs, "None (the epochs each fit trains) or an integer >= 1")
        if mode not in ("min", "max"):
            raise invalid("mode", mode, "'min' or 'max'")
        self.decay: LRDecay = decay
        self.total_epochs: int | None = None if total_epochs is None else int(total_epochs)
        self.monitor: str = monitor
        self.mode: str = mode
        self.base_lr: float | None = None
        self.current: float | None = None
        self._span: int = self.total_epochs or 1
        self._reset()

    def _reset(self) -> None:
        self._best: float | None = None
        self._wait = 0
        self._cooldown = 0
        self._reductions = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()
        self.current = None
        # The epochs this fit trains, as Keras' fit hands them (set before on_train_begin).
        self._span = self.total_epochs or max(1, int((self.params or {}).get("epochs") or 1))
        optimizer = self.model.optimizer
        if not _rate_is_settable(optimizer):
            warnings.warn("lr_decay is ignored for a model compiled with a "
                          "LearningRateSchedule: the schedule already sets the rate.",
                          stacklevel=2)
            self.base_lr = None
            return
        self.base_lr = _get_lr(optimizer)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.base_lr is None:
            return
        self.current = self.base_lr * self.decay.factor(epoch, self._span, self._reductions)
        _set_lr(self.model.optimizer, self.current)

    def _improves(self, value: float) -> bool:
        if self._best is None:
            return True
        delta = self.decay.param("min_delta")
        return value < self._best - delta if self.mode == "min" else value > self._best + delta

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None or self.current is None:
            return
        logs["learning_rate"] = self.current
        if self.decay.schedule != "plateau" or epoch < self.decay.warmup_epochs:
            return
        value = logs.get(self.monitor)
        if value is None:
            return
        value = float(value)
        if not math.isfinite(value):
            return
        # The bookkeeping of keras.callbacks.ReduceLROnPlateau, step for step.
        if self._cooldown > 0:
            self._cooldown -= 1
            self._wait = 0
        if self._improves(value):
            self._best, self._wait = value, 0
        elif self._cooldown == 0:
            self._wait += 1
            p = self.decay.param
            if self._wait >= p("patience") and p("factor") ** self._reductions > p("min_factor"):
                self._reductions += 1
                self._cooldown = int(p("cooldown"))
                self._wait = 0


def decay_callback(lr_decay: Any, hp: Any, total_epochs: int | None, monitor: str,
                   mode: str) -> LearningRateDecay | None:
    """The `LearningRateDecay` callback of a trial (None without a schedule).

    Args:
        lr_decay: The tuner's parsed ``lr_decay`` (an `LRDecay`, a
            `TunedLRDecay`, whose choice is read from ``hp``, or None).
        hp: The trial's hyperparameters.
        total_epochs: The epoch budget the schedule spans, or None for the
            epochs each fit trains (Keras' ``params["epochs"]``).
        monitor: The metric "plateau" watches.
        mode: "min" or "max", the better direction of ``monitor``.
    """
    if isinstance(lr_decay, TunedLRDecay):
        lr_decay = decay_from_hp(hp, lr_decay)
    if isinstance(lr_decay, LRDecay):
        return LearningRateDecay(lr_decay, total_epochs, monitor=monitor, mode=mode)
    return None
