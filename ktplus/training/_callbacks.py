"""Early stopping from the tuner's objective, and the NaN/inf guard."""

from __future__ import annotations

import copy
import math
from typing import Any

import keras
import keras_tuner

from ktplus._errors import invalid

DEFAULT_PATIENCE = 5


class NonFiniteLoss(keras_tuner.errors.FailedTrialError):
    """A trial's loss or objective became NaN or infinite."""


class NaNGuard(keras.callbacks.Callback):
    """Fails the trial (keras-tuner's FAILED status) when the loss or the
    objective becomes NaN or infinite, so it can never become the best.

    Args:
        names: The log entries to watch (the loss and the objective).
    """

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def _check(self, where: str, logs: dict | None) -> None:
        for name in self.names:
            value = (logs or {}).get(name)
            if value is None:
                continue
            value = float(value)
            if not math.isfinite(value):
                self.model.stop_training = True
                raise NonFiniteLoss(
                    f"{name} became {value} {where}: the trial is marked failed. Lower the "
                    "learning rate, add regularization or check the data for NaN/inf."
                )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._check(f"at epoch {epoch + 1}", logs)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: The EarlyStopping options a dict may hold, with their checks.
_OPTION_CHECKS: dict[str, tuple[Any, str]] = {
    "monitor": (lambda v: isinstance(v, str) and v != "", "a metric name"),
    "min_delta": (lambda v: _is_real(v) and v >= 0, "a number >= 0"),
    "patience": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "verbose": (lambda v: _is_int(v) and v >= 0, "0 or 1"),
    "mode": (lambda v: v in ("auto", "min", "max"), "'auto', 'min' or 'max'"),
    "baseline": (lambda v: v is None or _is_real(v), "None or a number"),
    "restore_best_weights": (lambda v: isinstance(v, bool), "True or False"),
    "start_from_epoch": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
}


def parse_early_stopping(value: Any) -> Any:
    """Validates ``early_stopping=``: None/False, True, an int patience, a
    dict of EarlyStopping options or a `keras.callbacks.EarlyStopping`.

    Every value of a dict is checked for its type before any trial runs.
    """
    expected = ("None, True, an int patience >= 0, a dict of keras.callbacks.EarlyStopping "
                "options, or a keras.callbacks.EarlyStopping")
    if value is None or value is False:
        return None
    if value is True:
        return {"patience": DEFAULT_PATIENCE}
    if _is_int(value):
        if value < 0:
            raise invalid("early_stopping", value, expected)
        return {"patience": value}
    if isinstance(value, dict):
        for key, option in value.items():
            if key not in _OPTION_CHECKS:
                raise invalid("early_stopping", value,
                              f"{expected}; unknown option {key!r}, the options are "
                              f"{', '.join(_OPTION_CHECKS)}")
            check, allowed = _OPTION_CHECKS[key]
            if not check(option):
                raise invalid(f"early_stopping[{key!r}]", option, allowed)
        return dict(value)
    if isinstance(value, keras.callbacks.EarlyStopping):
        return value
    raise invalid("early_stopping", value, expected)


def make_early_stopping(spec: Any, objective: Any) -> keras.callbacks.EarlyStopping:
    """A fresh EarlyStopping for one trial, monitoring the objective in its
    direction and restoring the best weights unless told otherwise."""
    if isinstance(spec, keras.callbacks.EarlyStopping):
        return copy.deepcopy(spec)
    options = {"monitor": objective.name, "mode": objective.direction,
               "restore_best_weights": True, **spec}
    return keras.callbacks.EarlyStopping(**options)
