"""Crash-safe state files.

keras-tuner writes ``oracle.json``, ``trial.json`` and the tuner state by
opening the file for writing and writing the JSON: a kill during the write
leaves a truncated file that blocks resuming. ktplus replaces keras-tuner's
``save_json`` (every one of those writes goes through it) with a version
that writes a temporary file in the same directory, fsyncs it and renames it
over the target, so a reader sees the old file or the new one, never half of
one. Remote paths (``gs://...``) keep keras-tuner's own writer.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

_installed = False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: mkstemp creates 0600 files; state files get the usual umask-based mode,
#: so other users of a shared directory (workers, TensorBoard) can read them.
_FILE_MODE = 0o666 & ~_umask()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` via a temporary file, fsync and rename."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Writes JSON atomically (see `atomic_write_text`)."""
    atomic_write_text(path, json.dumps(data))


def install() -> None:
    """Makes keras-tuner's JSON state writes atomic (idempotent)."""
    global _installed
    if _installed:
        return
    from keras_tuner.src import utils

    original = utils.save_json

    def save_json(path: Any, obj: Any) -> str:
        if "://" in str(path):
            return original(path, obj)
        text = json.dumps(obj)
        atomic_write_text(path, text)
        return text

    save_json.__wrapped__ = original  # type: ignore[attr-defined]
    utils.save_json = save_json
    _installed = True
