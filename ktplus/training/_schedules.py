"""Learning-rate decay by epoch, scaling whatever optimizer the model has.

Formulas, for the learning rate the model was compiled with ``lr0``, the
epoch ``e`` (0-based, absolute: a Hyperband continuation at
``initial_epoch=k`` starts at ``e=k``), the warmup length ``W`` and the total
number of epochs ``E``; with ``t = e - W`` and ``T = max(1, E - W)``:

* warmup (``e < W``): ``lr0 * (e + 1) / (W + 1)``
* "exponential": ``lr0 * decay_rate ** t``
* "step": ``lr0 * factor ** floor(t / step_size)``
* "cosine": ``lr0 * (alpha + (1 - alpha) * 0.5 * (1 + cos(pi * t / T)))``
* "polynomial": ``(lr0 - lr_end) * (1 - t / T) ** power + lr_end``, with
  ``lr_end = lr0 * end_factor``
* "plateau": ``lr0 * factor ** k``, where ``k`` is the number of times the
  objective did not improve for ``patience`` epochs (``min_factor`` floors it)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import keras
import keras_tuner

from ktplus.hypermodels._knobs import invalid

SCHEDULES = ("exponential", "step", "cosine", "polynomial", "plateau")

#: Parameters of each schedule and their defaults.
DEFAULTS: dict[str, dict[str, float]] = {
    "exponential": {"decay_rate": 0.9},
    "step": {"factor": 0.5, "step_size": 0.0},  # 0: a third of the epochs
    "cosine": {"alpha": 0.0},
    "polynomial": {"power": 1.0, "end_factor": 0.01},
    "plateau": {"factor": 0.5, "patience": 3.0, "min_factor": 1e-3},
}

#: The search space of ``lr_decay="tune"``.
TUNE_SPACE: dict[str, dict[str, tuple[float, float]]] = {
    "exponential": {"decay_rate": (0.8, 0.99)},
    "step": {"factor": (0.1, 0.7)},
    "cosine": {"alpha": (0.0, 0.1)},
    "polynomial": {"power": (0.5, 2.0)},
    "plateau": {"factor": (0.1, 0.7)},
}


@dataclass(frozen=True)
class LRDecay:
    """A learning-rate schedule applied per epoch by ktplus tuners.

    Args:
        schedule: "exponential", "step", "cosine", "polynomial" or "plateau".
        warmup_epochs: Epochs of linear warmup before the schedule.
        params: Schedule parameters overriding ``DEFAULTS[schedule]``, e.g.
            ``{"decay_rate": 0.8}`` or ``{"factor": 0.1, "step_size": 5}``.

    Example:

    >>> from ktplus.training import LRDecay
    >>> decay = LRDecay("step", params={"factor": 0.5, "step_size": 2})
    >>> [decay.factor(e, total_epochs=6) for e in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """

    schedule: str
    warmup_epochs: int = 0
    params: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise invalid("lr_decay", self.schedule,
                          f"None, 'tune' or one of {', '.join(map(repr, SCHEDULES))}")
        if not isinstance(self.warmup_epochs, int) or self.warmup_epochs < 0:
            raise invalid("lr_warmup", self.warmup_epochs, "an integer >= 0")
        unknown = set(self.params) - set(DEFAULTS[self.schedule])
        if unknown:
            raise invalid("lr_decay", self.params,
                          f"parameters of {self.schedule!r} among {sorted(DEFAULTS[self.schedule])}")
        p = self.param
        bad = (
            (self.schedule == "exponential" and not 0 < p("decay_rate") <= 1)
            or (self.schedule in ("step", "plateau") and not 0 < p("factor") < 1)
            or (self.schedule == "step" and p("step_size") < 0)
            or (self.schedule == "cosine" and not 0 <= p("alpha") <= 1)
            or (self.schedule == "polynomial" and (p("power") <= 0 or not 0 <= p("end_factor") <= 1))
            or (self.schedule == "plateau" and (p("patience") < 0 or not 0 < p("min_factor") <= 1))
        )
        if bad:
            raise invalid("lr_decay", dict(self.params),
                          f"valid parameters for {self.schedule!r} (see ktplus.training._schedules)")

    def param(self, name: str) -> float:
        return float(self.params.get(name, DEFAULTS[self.schedule][name]))

    def factor(self, epoch: int, total_epochs: int, plateau_reductions: int = 0) -> float:
        """The multiplier of the base learning rate at ``epoch``."""
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


def parse_lr_decay(value: Any, warmup: Any = 0) -> LRDecay | str | None:
    """Validates ``lr_decay=`` (and ``lr_warmup=``): None, "tune", a
    schedule name, a dict ``{"schedule": ..., **params}`` or an `LRDecay`."""
    expected = (f"None, 'tune', one of {', '.join(map(repr, SCHEDULES))}, a dict such as "
                "{'schedule': 'step', 'factor': 0.5}, or a ktplus.training.LRDecay")
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise invalid("lr_warmup", warmup, "an integer >= 0 (epochs of linear warmup)")
    if value is None:
        if warmup:
            raise invalid("lr_warmup", warmup, "0 unless lr_decay is set")
        return None
    if isinstance(value, LRDecay):
        return value
    if isinstance(value, str):
        if value == "tune":
            return "tune"
        if value not in SCHEDULES:
            raise invalid("lr_decay", value, expected)
        return LRDecay(value, warmup)
    if isinstance(value, dict) and isinstance(value.get("schedule"), str):
        params = {k: v for k, v in value.items() if k not in ("schedule", "warmup_epochs")}
        return LRDecay(value["schedule"], int(value.get("warmup_epochs", warmup)), params)
    raise invalid("lr_decay", value, expected)


def declare_tuned_decay(hp: keras_tuner.HyperParameters) -> None:
    """Registers the ``lr_decay="tune"`` hyperparameters in ``hp``."""
    hp.Choice("lr_decay", ["none", *SCHEDULES], default="none")
    for schedule, space in TUNE_SPACE.items():
        with hp.conditional_scope("lr_decay", [schedule]):
            for name, (lo, hi) in space.items():
                hp.Float(f"lr_decay_{name}", lo, hi)
    with hp.conditional_scope("lr_decay", list(SCHEDULES)):
        hp.Int("lr_warmup_epochs", 0, 3)


def decay_from_hp(hp: keras_tuner.HyperParameters) -> LRDecay | None:
    """The schedule a trial's ``lr_decay="tune"`` values describe."""
    schedule = hp.values.get("lr_decay", "none")
    if schedule == "none":
        return None
    params = {name: hp.values[f"lr_decay_{name}"] for name in TUNE_SPACE[schedule]
              if f"lr_decay_{name}" in hp.values}
    return LRDecay(schedule, int(hp.values.get("lr_warmup_epochs", 0)), params)


def _set_lr(optimizer: Any, value: float) -> bool:
    lr = optimizer.learning_rate
    if isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        return False
    if hasattr(lr, "assign"):
        lr.assign(value)
    else:
        optimizer.learning_rate = value
    return True


class LearningRateDecay(keras.callbacks.Callback):
    """Sets the optimizer's learning rate at the start of each epoch.

    The base rate is the optimizer's rate at the start of training, so it
    works with any optimizer a model was compiled with. Each epoch's rate is
    written to the logs as ``learning_rate``.

    Args:
        decay: The `LRDecay` to apply.
        total_epochs: The epoch budget the schedule spans.
        monitor: Metric watched by "plateau".
        mode: "min" or "max", the better direction of ``monitor``.
    """

    def __init__(self, decay: LRDecay, total_epochs: int, monitor: str = "val_loss",
                 mode: str = "min") -> None:
        super().__init__()
        self.decay = decay
        self.total_epochs = total_epochs
        self.monitor = monitor
        self.mode = mode
        self.base_lr: float | None = None
        self.current: float | None = None
        self._best: float | None = None
        self._wait = 0
        self._reductions = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.base_lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if isinstance(self.model.optimizer._learning_rate,
                      keras.optimizers.schedules.LearningRateSchedule):
            warnings.warn("lr_decay is ignored for a model compiled with a "
                          "LearningRateSchedule: the schedule already sets the rate.",
                          stacklevel=2)
            self.base_lr = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.base_lr is None:
            return
        self.current = self.base_lr * self.decay.factor(epoch, self.total_epochs, self._reductions)
        _set_lr(self.model.optimizer, self.current)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None or self.current is None:
            return
        logs["learning_rate"] = self.current
        if self.decay.schedule != "plateau" or epoch < self.decay.warmup_epochs:
            return
        value = logs.get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        improved = self._best is None or (value < self._best if self.mode == "min" else value > self._best)
        if improved:
            self._best, self._wait = value, 0
            return
        self._wait += 1
        if self._wait >= self.decay.param("patience"):
            self._reductions += 1
            self._wait = 0
