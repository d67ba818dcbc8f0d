"""A TensorBoard run writer built on the tensorboard package alone.

It writes event files with tensorboard's own protos and record format
(``RecordWriter``: length, CRCs, the serialized ``Event``), so logging works
on every Keras backend (TensorFlow, JAX, PyTorch) as long as the tensorboard
package is installed. Events are written synchronously to a plain local
file, named as tensorboard's ``EventFileWriter`` names its files:
``EventFileWriter`` starts a thread per file and ``flush`` waits for that
thread, which on a busy machine cost a trial milliseconds per epoch; here a
flush is one ``write`` call.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.scalar import summary_v2 as scalar_summary
from tensorboard.plugins.text import summary_v2 as text_summary
from tensorboard.summary.writer.record_writer import RecordWriter

#: The last part of each event file's name, unique in this process (as
#: tensorboard's own counter makes it for its writers).
_uid = itertools.count()


class RunWriter:
    """Writes scalars, text and raw summaries to one run directory.

    Open it with ``with RunWriter(path) as w:`` or call `close`: each writer
    holds one open file.
    """

    def __init__(self, logdir: str | os.PathLike, filename_suffix: str = "") -> None:
        os.makedirs(logdir, exist_ok=True)
        self.logdir = str(logdir)
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}."
                f"ktplus{next(_uid)}{filename_suffix}")
        self.file = os.path.join(self.logdir, name)
        self._records = RecordWriter(open(self.file, "wb"))  # noqa: SIM115 (closed by close())
        self._add(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2",
                                  source_metadata=event_pb2.SourceMetadata(writer="ktplus")))
        self.flush()

    def _add(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())

    def summary(self, summary: Any, step: int = 0, wall_time: float | None = None) -> None:
        if not isinstance(summary, summary_pb2.Summary):
            # tensorboard's helpers build TensorFlow's own proto class when
            # TensorFlow is importable: same wire format, other class.
            summary = summary_pb2.Summary.FromString(summary.SerializeToString())
        self._add(event_pb2.Event(wall_time=wall_time or time.time(), step=int(step), summary=summary))

    def scalar(self, tag: str, value: float, step: int = 0) -> None:
        self.summary(scalar_summary.scalar_pb(tag, float(value)), step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        self.summary(text_summary.text_pb(tag, text), step)

    def flush(self) -> None:
        """Hands what was written to the operating system (a killed process
        loses nothing flushed)."""
        if not self._records.closed:
            self._records.flush()

    @property
    def path(self) -> str:
        return self.logdir

    def close(self) -> None:
        if not self._records.closed:
            self._records.close()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextlib.contextmanager
def replacing(run_dir: str, suffix: str) -> Iterator[RunWriter]:
    """A `RunWriter` of a new event file in ``run_dir`` that replaces the
    run's earlier files with the same ``suffix`` once it is written (a
    kill in between leaves the old records, never none; nothing is removed
    when the body raises).

    Example:

    >>> import tempfile
    >>> from ktplus.logging._writer import replacing
    >>> run = tempfile.mkdtemp()
    >>> for value in (1.0, 0.0):
    ...     with replacing(run, ".ktplus-demo") as w:
    ...         w.scalar("pareto", value)
    >>> len(os.listdir(run))
    1
    """
    old = [name for name in os.listdir(run_dir) if name.endswith(suffix)] if os.path.isdir(run_dir) else []
    with RunWriter(run_dir, filename_suffix=suffix) as writer:  # listed before: never among ``old``
        yield writer
    for name in old:
        with contextlib.suppress(FileNotFoundError):  # another process removed it first
            os.unlink(os.path.join(run_dir, name))
