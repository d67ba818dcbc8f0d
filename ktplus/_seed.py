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

from ktplus._errors import invalid, invalid_type

#: numpy's (and so scikit-learn's and Optuna's samplers') bound on a seed.
_MAX_SEED = 2**32


def check_seed(seed: Any, arg: str = "seed") -> int | None:
    """``seed`` as a plain int (None stays None).

    Args:
        seed: None (a random seed, drawn once by the oracle) or an integer
            from 0 to 2**32 - 1.
        arg: The argument's name in the error message.

    Raises:
        ValueError: for anything else (a TypeError too, for a non-integer).

    Example:

    >>> from ktplus._seed import check_seed
    >>> check_seed(0), check_seed(None)
    (0, None)
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise invalid_type(arg, seed, "None or an integer from 0 to 2**32 - 1")
    if not 0 <= int(seed) < _MAX_SEED:
        raise invalid(arg, seed, "None or an integer from 0 to 2**32 - 1")
    return int(seed)


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
