"""keras-tuner hyperparameters as Optuna distributions, in one place.

Every keras-tuner type has its Optuna distribution:

* ``Int``: `IntDistribution` (with ``step``; ``sampling="log"`` as ``log=True``);
* ``Float``: `FloatDistribution` (with ``step``; ``sampling="log"`` as ``log=True``);
* ``Choice``: `CategoricalDistribution` of its values;
* ``Boolean``: `CategoricalDistribution` of ``(False, True)``;
* ``Fixed``: `CategoricalDistribution` of its one value.

Two keras-tuner forms have no Optuna equivalent and keep their exact domain
as a `CategoricalDistribution` of the values they can take: a log-sampled
``Int``/``Float`` with a ``step`` (keras-tuner multiplies by ``step``: 32,
64, 128, ...); ``sampling="reverse_log"`` is sampled on the same domain as
"linear". Only the hyperparameters that are active under the values chosen
before them (keras-tuner's conditional scopes, in the order the space
declares them) are suggested, so a trial holds its active values only.
"""

from __future__ import annotations

import math
from typing import Any

import keras_tuner
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

_Int = keras_tuner.engine.hyperparameters.Int
_Float = keras_tuner.engine.hyperparameters.Float
_Choice = keras_tuner.engine.hyperparameters.Choice
_Boolean = keras_tuner.engine.hyperparameters.Boolean
_Fixed = keras_tuner.engine.hyperparameters.Fixed

#: Hyperband's bookkeeping values: never sampled, never enqueued.
_RESERVED = "tuner/"


def _geometric(low: float, high: float, factor: float, cast: type) -> list[Any]:
    """keras-tuner's log-sampled values with a step: low, low*step, ... <= high."""
    values: list[Any] = []
    value = low
    while value <= high * (1 + 1e-9):
        values.append(cast(round(value)) if cast is int else cast(value))
        value *= factor
    return values


def distribution(hp: Any) -> BaseDistribution:
    """The Optuna distribution of a keras-tuner hyperparameter.

    Args:
        hp: A `keras_tuner.HyperParameter` (Int, Float, Choice, Boolean or Fixed).

    Returns:
        An `optuna.distributions.BaseDistribution` with the same domain.

    Example:

    >>> import keras_tuner
    >>> from ktplus.oracles import distribution
    >>> hps = keras_tuner.HyperParameters()
    >>> _ = hps.Int("units", 8, 64, step=8)
    >>> distribution(hps.space[0])
    IntDistribution(high=64, log=False, low=8, step=8)
    """
    if isinstance(hp, _Fixed):
        return CategoricalDistribution((hp.value,))
    if isinstance(hp, _Boolean):
        return CategoricalDistribution((False, True))
    if isinstance(hp, _Choice):
        return CategoricalDistribution(tuple(hp.values))
    if isinstance(hp, (_Int, _Float)):
        cast = int if isinstance(hp, _Int) else float
        log = hp.sampling == "log"
        step = hp.step
        if log and step is not None and step > 1:
            return CategoricalDistribution(tuple(_geometric(hp.min_value, hp.max_value, step, cast)))
        if cast is int:
            low, step = int(hp.min_value), 1 if log else int(step or 1)
            return IntDistribution(low, low + (int(hp.max_value) - low) // step * step, log=log, step=step)
        if step is None or log:
            return FloatDistribution(float(hp.min_value), float(hp.max_value), log=log)
        count = math.floor((hp.max_value - hp.min_value) / step + 1e-9)
        high = float(f"{hp.min_value + count * step:.12g}")  # 0.8999999999999999 would lose a grid point
        return FloatDistribution(float(hp.min_value), high, step=float(step))
    raise TypeError(f"ktplus: no Optuna distribution for the hyperparameter {hp!r} of type {type(hp).__name__}")


def contains(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` lies in ``dist``'s domain (on its grid when it has a step)."""
    if isinstance(dist, CategoricalDistribution):
        return any(type(value) is type(c) and value == c for c in dist.choices) or (
            not isinstance(value, bool) and any(not isinstance(c, bool) and value == c for c in dist.choices))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if isinstance(dist, IntDistribution):
        if int(value) != value or not dist.low <= value <= dist.high:
            return False
        return dist.log or (int(value) - dist.low) % dist.step == 0
    if isinstance(dist, FloatDistribution):
        tol = 1e-9 * max(1.0, abs(dist.high), abs(dist.low))
        if not dist.low - tol <= value <= dist.high + tol:
            return False
        if dist.step is None:
            return True
        k = (value - dist.low) / dist.step
        return abs(k - round(k)) < 1e-6
    return False


def describe(dist: BaseDistribution) -> str:
    """A distribution's domain in words, for error messages."""
    if isinstance(dist, CategoricalDistribution):
        return f"one of {list(dist.choices)!r}"
    assert isinstance(dist, (IntDistribution, FloatDistribution))
    kind = "an integer" if isinstance(dist, IntDistribution) else "a number"
    text = f"{kind} in [{dist.low}, {dist.high}]"
    step = getattr(dist, "step", None)
    if step not in (None, 1):
        text += f" on the grid {dist.low} + k * {step}"
    return text


def tunable(space: Any) -> list[Any]:
    """The hyperparameters of ``space`` a sampler may choose (Hyperband's
    ``tuner/*`` bookkeeping values left out)."""
    return [hp for hp in space.space if not hp.name.startswith(_RESERVED)]


def suggest(trial: Any, space: Any) -> dict[str, Any]:
    """Asks an Optuna trial for the active hyperparameters of ``space``.

    Args:
        trial: An `optuna.trial.Trial` (from ``study.ask()``).
        space: The oracle's `keras_tuner.HyperParameters`.

    Returns:
        The values, by name, of the hyperparameters active under the values
        chosen before them; inactive ones are never suggested.
    """
    hps = space.copy()
    hps.values = {}
    for hp in tunable(hps):
        if not hps.is_active(hp):
            continue
        hps.values[hp.name] = _ask(trial, hp.name, distribution(hp))
    return dict(hps.values)


def _ask(trial: Any, name: str, dist: BaseDistribution) -> Any:
    """``trial.suggest_*`` for one distribution (Optuna's public calls)."""
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, CategoricalDistribution)
    return trial.suggest_categorical(name, dist.choices)


def active_params(space: Any, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """The params and distributions an Optuna trial holds for keras-tuner
    ``values``: the active hyperparameters of ``space`` whose value lies in
    its distribution (a value the sampler could not have chosen is left out)."""
    hps = space.copy()
    hps.values = {}
    params: dict[str, Any] = {}
    dists: dict[str, BaseDistribution] = {}
    for hp in tunable(hps):
        if hp.name not in values or not hps.is_active(hp):
            continue
        hps.values[hp.name] = values[hp.name]
        dist = distribution(hp)
        if contains(dist, values[hp.name]):
            params[hp.name] = values[hp.name]
            dists[hp.name] = dist
    return params, dists


def check_values(space: Any, values: Any, arg: str = "values") -> dict[str, Any]:
    """Validates a (partial) dict of hyperparameter values against ``space``.

    Args:
        space: The search space (`keras_tuner.HyperParameters`).
        values: The values to check.
        arg: The argument's name, for the error message.

    Returns:
        ``values`` as a plain dict.

    Raises:
        ValueError: for a name the space does not have, or a value outside
            its hyperparameter's domain, naming both and what is allowed.
    """
    from ktplus._errors import invalid

    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise invalid(arg, values, "a dict of hyperparameter values by name")
    known = {hp.name: hp for hp in tunable(space)}
    for name, value in values.items():
        hp = known.get(name)
        if hp is None:
            raise invalid(arg, values, f"names of the search space ({', '.join(sorted(known)) or 'none'}); "
                                       f"{name!r} is not one of them")
        dist = distribution(hp)
        if not contains(dist, value):
            raise invalid(arg, values, f"{name!r} to be {describe(dist)}; got {value!r}")
    return dict(values)


def with_defaults(space: Any, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` completed with the defaults of the other active
    hyperparameters, in the space's order (a partial enqueued trial on an
    oracle that cannot sample the rest)."""
    hps = space.copy()
    hps.values = {}
    for hp in tunable(hps):
        if hps.is_active(hp):
            hps.values[hp.name] = values.get(hp.name, hp.default)
    return dict(hps.values)
