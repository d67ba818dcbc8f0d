"""`CLIError`: the one kind of error the command reports as a single line."""

from __future__ import annotations


class CLIError(Exception):
    """An error reported as one line on stderr, with exit status 2."""
