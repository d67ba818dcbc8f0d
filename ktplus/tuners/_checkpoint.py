"""Best-epoch checkpoints that are written atomically, and by default once.

keras-tuner's ``SaveBestEpoch`` writes the weights file at every improving
epoch, in place: a kill during a write leaves a truncated file. An
interrupted trial restarts from epoch 0 anyway, so the mid-trial writes buy
nothing, and on small models they cost more than the epochs. This callback
keeps the best epoch's weights in memory and writes the same file once, when
training ends (pruned and early-stopped trials included); with
``defer=False`` it writes at each improving epoch like keras-tuner. Either
way the file is written under a temporary name and renamed into place.

It watches only the epoch-level part of the objective: keras-tuner's
callback saves at every epoch whose logs lack an objective's name, which a
built-in trial-level objective (``"num_params"``, ``"trial_seconds"``)
always does; without those names the checkpoint is the best epoch by the
real metrics, the epoch keras-tuner then reports as the trial's best.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ktplus._compat import BestEpochSaver, SaveBestEpoch
from ktplus._objectives import epoch_objective


class AtomicSaveBestEpoch(BestEpochSaver):
    """`SaveBestEpoch` with atomic writes, by default once at train end.

    Args:
        original: keras-tuner's callback for this trial; its ``best_value``
            is continued and updated (it is shared by a trial's executions).
            Its objective's epoch-level part is watched (the whole objective
            when nothing is left: every epoch is saved, as keras-tuner does).
        defer: Keep the best weights in memory and write them at train end.
        may_write: Called before the deferred write; False skips it (a
            distributed worker that no longer owns the trial).
    """

    def __init__(self, original: SaveBestEpoch, defer: bool = True,
                 may_write: Callable[[], bool] | None = None) -> None:
        super().__init__(epoch_objective(original.objective) or original.objective, original.filepath)
        self.original = original
        self.defer = defer
        self.may_write = may_write
        self.best_value = original.best_value
        self._best_weights: list[Any] | None = None

    def save_best(self) -> None:
        if self.defer:
            self._best_weights = self.model.get_weights()
        else:
            self._write()

    def _write(self) -> None:
        final: str = self.original.filepath
        directory, name = os.path.split(final)
        # Keras needs the ".weights.h5" ending; the rename makes the write atomic.
        self.filepath = os.path.join(directory, f".tmp-{os.getpid()}-{name}")
        try:
            self.write_weights()
            if os.path.exists(self.filepath):  # a non-chief replica writes elsewhere
                os.replace(self.filepath, final)
        finally:
            if os.path.exists(self.filepath):
                os.unlink(self.filepath)
            self.filepath = final

    def on_train_end(self, logs: dict | None = None) -> None:
        self.flush()

    def flush(self) -> None:
        """Writes the kept best weights, if any are waiting (also called
        after ``fit`` returns, for a fit loop that never ends training)."""
        self.original.best_value = self.best_value
        if self._best_weights is None or (self.may_write is not None and not self.may_write()):
            self._best_weights = None
            return
        current = self.model.get_weights()
        self.model.set_weights(self._best_weights)
        try:
            self._write()
        finally:
            self.model.set_weights(current)
            self._best_weights = None
