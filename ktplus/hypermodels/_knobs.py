"""Tunable knobs: one place that validates a user's value and registers it.

Every knob of every hypermodel takes either a fixed value, a ``(min, max)``
tuple (a range to tune) or a list (choices to tune). A fixed value is still
registered, as ``hp.Fixed``, so it shows in every trial.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras_tuner

from ktplus._errors import invalid  # noqa: F401 (re-exported)

#: The string a ``None`` choice is stored as in keras-tuner, which does not
#: allow ``None`` hyperparameter values.
NONE = "none"




@dataclass(frozen=True)
class Knob:
    """A validated hyperparameter specification.

    ``kind`` is "int", "float", "choice" or "bool"; exactly one of ``fixed``
    (with ``is_fixed``), ``choices`` or ``bounds`` describes the value.
    """

    arg: str
    kind: str
    is_fixed: bool = False
    fixed: Any = None
    choices: tuple[Any, ...] = ()
    bounds: tuple[Any, Any] | None = None
    log: bool = False

    @property
    def candidates(self) -> tuple[Any, ...]:
        """Every value the knob can take (for ranges: the two bounds)."""
        if self.is_fixed:
            return (self.fixed,)
        if self.choices:
            return self.choices
        assert self.bounds is not None
        return self.bounds

    @property
    def max_value(self) -> Any:
        return max(self.candidates)

    def can_be(self, predicate: Any) -> bool:
        """Whether some value of this knob satisfies ``predicate``."""
        if self.bounds is not None and self.kind == "float":
            lo, hi = self.bounds
            return predicate(lo) or predicate(hi) or predicate((lo + hi) / 2)
        if self.bounds is not None and self.kind == "int":
            lo, hi = self.bounds
            return any(predicate(v) for v in range(lo, hi + 1))
        return any(predicate(v) for v in self.candidates)

    def values_where(self, predicate: Any) -> list[Any]:
        """Discrete values satisfying ``predicate`` (for conditional scopes)."""
        if self.bounds is not None and self.kind == "int":
            lo, hi = self.bounds
            return [v for v in range(lo, hi + 1) if predicate(v)]
        return [v for v in self.candidates if predicate(v)]

    def register(self, hp: keras_tuner.HyperParameters, name: str | None = None) -> Any:
        """Registers this knob in ``hp`` and returns its current value.

        Returns ``None`` when the hyperparameter is inside an inactive
        conditional scope (keras-tuner's convention).
        """
        name = name or self.arg
        if self.is_fixed:
            return hp.Fixed(name, self.fixed)
        if self.choices:
            if self.kind == "bool" and set(self.choices) == {True, False}:
                return hp.Boolean(name, default=self.choices[0])
            return hp.Choice(name, list(self.choices), default=self.choices[0])
        assert self.bounds is not None
        lo, hi = self.bounds
        if self.kind == "int":
            if self.log and hi >= 2 * lo:
                return hp.Int(name, lo, hi, step=2, sampling="log")
            return hp.Int(name, lo, hi)
        sampling = "log" if self.log else "linear"
        return hp.Float(name, lo, hi, sampling=sampling)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _unique(values: Sequence[Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return tuple(out)


def int_knob(arg: str, value: Any, *, minimum: int = 1, log: bool = False) -> Knob:
    """An integer knob: an int, a ``(min, max)`` tuple or a list of ints."""
    expected = (
        f"an integer >= {minimum}, a (min, max) tuple of such integers with "
        "min <= max, or a non-empty list of such integers"
    )
    if _is_int(value):
        if value < minimum:
            raise invalid(arg, value, expected)
        return Knob(arg, "int", is_fixed=True, fixed=int(value))
    if isinstance(value, tuple):
        if len(value) != 2 or not all(_is_int(v) for v in value):
            raise invalid(arg, value, expected)
        lo, hi = int(value[0]), int(value[1])
        if lo < minimum or hi < lo:
            raise invalid(arg, value, expected)
        if lo == hi:
            return Knob(arg, "int", is_fixed=True, fixed=lo)
        return Knob(arg, "int", bounds=(lo, hi), log=log and lo > 0)
    if isinstance(value, list):
        if not value or not all(_is_int(v) and v >= minimum for v in value):
            raise invalid(arg, value, expected)
        choices = _unique([int(v) for v in value])
        if len(choices) == 1:
            return Knob(arg, "int", is_fixed=True, fixed=choices[0])
        return Knob(arg, "int", choices=choices)
    raise invalid(arg, value, expected)


def float_knob(
    arg: str,
    value: Any,
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = True,
    log: bool = False,
) -> Knob:
    """A float knob: a number, a ``(min, max)`` tuple or a list of numbers."""
    lo_br = "(" if low_open else "["
    if high is None:
        interval = f"{'>' if low_open else '>='} {low}"
    else:
        interval = f"in {lo_br}{low}, {high}{')' if high_open else ']'}"
    expected = (
        f"a number {interval}, a (min, max) tuple of such numbers with "
        "min <= max, or a non-empty list of such numbers"
    )

    def ok(v: Any) -> bool:
        if not _is_real(v):
            return False
        v = float(v)
        if v < low or (low_open and v == low):
            return False
        if high is not None and (v > high or (high_open and v == high)):
            return False
        return True

    if _is_real(value):
        if not ok(value):
            raise invalid(arg, value, expected)
        return Knob(arg, "float", is_fixed=True, fixed=float(value))
    if isinstance(value, tuple):
        if len(value) != 2 or not all(ok(v) for v in value):
            raise invalid(arg, value, expected)
        lo, hi = float(value[0]), float(value[1])
        if hi < lo:
            raise invalid(arg, value, expected)
        if lo == hi:
            return Knob(arg, "float", is_fixed=True, fixed=lo)
        return Knob(arg, "float", bounds=(lo, hi), log=log and lo > 0)
    if isinstance(value, list):
        if not value or not all(ok(v) for v in value):
            raise invalid(arg, value, expected)
        choices = _unique([float(v) for v in value])
        if len(choices) == 1:
            return Knob(arg, "float", is_fixed=True, fixed=choices[0])
        return Knob(arg, "float", choices=choices)
    raise invalid(arg, value, expected)


def choice_knob(
    arg: str, value: Any, allowed: Sequence[str], *, allow_none: bool = False
) -> Knob:
    """A string knob: one allowed string (or None) or a list of them."""
    names = [repr(a) for a in allowed] + (["None"] if allow_none else [])
    expected = f"one of {', '.join(names)}, or a non-empty list of them"

    def norm(v: Any) -> str:
        if v is None and allow_none:
            return NONE
        if isinstance(v, str) and v.lower() in allowed:
            return v.lower()
        raise invalid(arg, value, expected)

    if value is None or isinstance(value, str):
        return Knob(arg, "choice", is_fixed=True, fixed=norm(value))
    if isinstance(value, (list, tuple)):
        if not value:
            raise invalid(arg, value, expected)
        choices = _unique([norm(v) for v in value])
        if len(choices) == 1:
            return Knob(arg, "choice", is_fixed=True, fixed=choices[0])
        return Knob(arg, "choice", choices=choices)
    raise invalid(arg, value, expected)


def bool_knob(arg: str, value: Any) -> Knob:
    """A boolean knob: True, False, or a list such as ``[False, True]``."""
    expected = "True, False, or a non-empty list of booleans such as [False, True]"
    if isinstance(value, bool):
        return Knob(arg, "bool", is_fixed=True, fixed=value)
    if isinstance(value, (list, tuple)):
        if not value or not all(isinstance(v, bool) for v in value):
            raise invalid(arg, value, expected)
        choices = _unique(list(value))
        if len(choices) == 1:
            return Knob(arg, "bool", is_fixed=True, fixed=choices[0])
        return Knob(arg, "bool", choices=choices)
    raise invalid(arg, value, expected)
