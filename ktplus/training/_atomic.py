"""Moved to ktplus._atomic (kept while the tree is being reorganised)."""

from ktplus._atomic import atomic_write_json, atomic_write_text  # noqa: F401
