"""Shared by the examples: quick mode and the output directory.

``KTPLUS_QUICK=1`` shrinks trials and epochs so every example runs in the
test suite in seconds; ``KTPLUS_EXAMPLE_DIR`` sets where searches are written.
"""

from __future__ import annotations

import os
import tempfile

QUICK = os.environ.get("KTPLUS_QUICK") == "1"


def directory() -> str:
    return os.environ.get("KTPLUS_EXAMPLE_DIR") or tempfile.mkdtemp(prefix="ktplus-example-")


def budget(full: int, quick: int) -> int:
    return quick if QUICK else full
