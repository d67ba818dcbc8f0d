"""Shared by the examples: quick mode and the output directory.

``KTPLUS_QUICK=1`` shrinks trials, epochs and training rows so every example
runs in the test suite in seconds; ``KTPLUS_EXAMPLE_DIR`` sets where searches are written.
"""

from __future__ import annotations

import os
import tempfile

QUICK = os.environ.get("KTPLUS_QUICK") == "1"


def directory() -> str:
    return os.environ.get("KTPLUS_EXAMPLE_DIR") or tempfile.mkdtemp(prefix="ktplus-example-")


def budget(full: int, quick: int) -> int:
    return quick if QUICK else full


def rows(*arrays: object, quick: int = 300) -> tuple:
    """The arrays as they are, or their first ``quick`` rows in quick mode."""
    return tuple(a[:quick] for a in arrays) if QUICK else arrays  # type: ignore[index]
