"""The one error message format for bad arguments (no heavy imports)."""

from __future__ import annotations

from typing import Any


def invalid(arg: str, value: Any, expected: str) -> ValueError:
    """A ValueError naming the argument, the bad value and what is allowed."""
    return ValueError(
        f"Invalid value for argument `{arg}`: expected {expected}. "
        f"Received: {arg}={value!r}"
    )
