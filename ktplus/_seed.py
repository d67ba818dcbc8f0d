"""One seed per search: the ``seed`` a tuner or an oracle is given, checked
once, with ``seed=0`` kept as the seed 0.

keras-tuner's ``Oracle.__init__`` keeps ``seed or random.randint(1, 10000)``:
``seed=0``, like ``seed=None``, becomes a random seed, so a search given
``seed=0`` is not reproducible. ktplus gives keras-tuner's oracles a truthy
integer 0 instead (`oracle_seed`): the oracle keeps it, and it seeds every
random generator (Python's, numpy's, scikit-learn's) exactly as 0 does.
"""

from __future__ import annotations

import numbers
from typing import Any

from ktplus._errors import invalid_type

#: numpy's (and so scikit-learn's and Optuna's samplers') seeds are 0 .. 2**32 - 1.
_GENERATOR_SEEDS = 2**32


def check_seed(seed: Any, arg: str = "seed") -> int | None:
    """``seed`` as a plain int (None stays None).

    Args:
        seed: None (a random seed, drawn once by the oracle) or an integer
            (any, as keras-tuner takes it; see `generator_seed`).
        arg: The argument's name in the error message.

    Raises:
        TypeError: for anything but None or an integer (a bool included).

    Example:

    >>> from ktplus._seed import check_seed
    >>> check_seed(0), check_seed(None), check_seed(-1)
    (0, None, -1)
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise invalid_type(arg, seed, "None or an integer")
    return int(seed)


def generator_seed(seed: int | None) -> int | None:
    """The search's seed as numpy, scikit-learn and Optuna's samplers take
    it (0 .. 2**32 - 1): a keras-tuner seed outside that range (negative,
    or larger) is reduced modulo 2**32; None stays None.

    Example:

    >>> from ktplus._seed import generator_seed
    >>> generator_seed(5), generator_seed(-1), generator_seed(None)
    (5, 4294967295, None)
    """
    return None if seed is None else int(seed) % _GENERATOR_SEEDS


class _SeedZero(int):
    """The seed 0, truthy: ``seed or random.randint(...)`` keeps it."""

    def __bool__(self) -> bool:
        return True

    def __reduce__(self) -> Any:
        return (_SeedZero, (0,))


def oracle_seed(seed: int | None) -> int | None:
    """The seed to give a keras-tuner oracle so that it keeps ``seed``:
    0 as a truthy int equal to 0, any other seed as it is.

    Example:

    >>> import keras_tuner
    >>> from ktplus._seed import oracle_seed
    >>> keras_tuner.oracles.RandomSearchOracle(objective="val_loss", seed=oracle_seed(0)).seed == 0
    True
    """
    return _SeedZero(0) if seed == 0 else seed
