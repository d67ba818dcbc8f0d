"""Crash-safe files: write a temporary file in the same directory, fsync
it and rename it over the target, so a reader sees the old file or the new
one, never half of one. Used for every state file ktplus writes (curves,
heartbeats, metadata) and, through `ktplus._compat.atomic_state_writes`, for
keras-tuner's own state files under a ktplus tuner's project.

The rename alone is what makes a write safe against a killed process (the
kernel holds the data written, whoever dies); the fsyncs make it survive an
operating-system crash or power loss too. Files rewritten every epoch whose
loss a reader tolerates (a trial's curve, TensorBoard's bookkeeping: read
with `read_json_dict`, which takes a missing or empty file as ``{}``) are
written with ``durable=False``: atomic, without the fsyncs (milliseconds
each)."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: mkstemp creates 0600 files; state files get the usual umask-based mode,
#: so other users of a shared directory (workers, TensorBoard) can read them.
_FILE_MODE = 0o666 & ~_umask()


def atomic_write_text(path: str | os.PathLike, text: str, *, durable: bool = True) -> None:
    """Writes ``text`` to ``path`` via a temporary file, fsync and rename.

    Args:
        path: The file to replace.
        text: Its new content.
        durable: Whether to fsync the file and its directory (an OS crash
            then cannot lose the write); without, the write is still atomic
            for every process, a killed one included.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if not durable:
        return
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write_json(path: str | os.PathLike, data: Any, *, durable: bool = True) -> None:
    """Writes JSON atomically (see `atomic_write_text`)."""
    atomic_write_text(path, json.dumps(data), durable=durable)


def read_json_dict(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON object written by `atomic_write_json`, or ``{}`` when the file
    is missing, unreadable or not an object."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
