"""The one error message format for bad arguments (no heavy imports)."""

from __future__ import annotations

from typing import Any


def invalid(arg: str, value: Any, expected: str) -> ValueError:
    """A ValueError naming the argument, the bad value and what is allowed."""
    return ValueError(
        f"Invalid value for argument `{arg}`: expected {expected}. "
        f"Received: {arg}={value!r}"
    )


class ArgumentTypeError(TypeError, ValueError):
    """A bad argument of the wrong type: a TypeError (as Python raises for
    types) that ``except ValueError`` also catches, like every other bad
    argument of ktplus."""


def invalid_type(arg: str, value: Any, expected: str) -> ArgumentTypeError:
    """`invalid`'s message for a value of the wrong type."""
    return ArgumentTypeError(str(invalid(arg, value, expected)))
