"""Warnings, left as the user had them.

Changing Python's warnings filters, even when they are put back (as
``warnings.catch_warnings`` does), makes Python forget every warning it
already showed "once" or "default": each module's ``__warningregistry__``
is emptied the next time it is used, and the warnings are shown again.
`warnings_registries_kept` undoes that for a block that changes the filters
(scikit-learn's random forest under fANOVA importance, an "error" filter
that needs overriding).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any


def _not_a_class(message: str) -> Warning:
    return UserWarning(message)


def _filters_version() -> int | None:
    """Python's version of the warnings filters, which every registry of
    warnings already shown (a module's ``__warningregistry__``) holds under
    "version": Python empties a registry whose version is not the current
    one, and so shows its warnings again. Read from the registry that
    ``warnings.warn_explicit`` fills in before it consults the filters (its
    category, a function and no class, then stops it with a TypeError:
    nothing is shown). None where it cannot be read so."""
    if not warnings.filters:
        return None  # no filter would stop the call
    registry: dict[Any, Any] = {}
    try:
        warnings.warn_explicit("ktplus", _not_a_class, "ktplus", 0, registry=registry)  # type: ignore[call-overload]
    except TypeError:
        version = registry.get("version")
        return version if type(version) is int else None
    return None


def _registries() -> list[dict[Any, Any]]:
    """Every registry of warnings shown: each module's and the "once" one."""
    found = [vars(m).get("__warningregistry__") for m in list(sys.modules.values()) if hasattr(m, "__dict__")]
    found.append(getattr(warnings, "onceregistry", None))
    return [r for r in found if isinstance(r, dict)]


@contextlib.contextmanager
def warnings_registries_kept() -> Iterator[None]:
    """Runs a block that changes the warnings filters and puts them back
    (scikit-learn's random forest, under fANOVA, does so on every call with
    ``warnings.catch_warnings``), then keeps the registries of the warnings
    already shown valid: a warning Python showed once before the block is
    not shown again after it."""
    before = _filters_version()
    saved = [] if before is None else [(r, dict(r)) for r in _registries() if r.get("version") == before]
    try:
        yield
    finally:
        after = _filters_version()
        if before is not None and after is not None and after != before:
            for registry, entries in saved:
                since = {k: v for k, v in registry.items() if k != "version"}  # shown during the block
                registry.update(entries)
                registry.update(since)
                registry["version"] = after
