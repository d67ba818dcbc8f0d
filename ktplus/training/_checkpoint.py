"""Best-epoch checkpoint kept in memory and written once per execution.

keras-tuner's ``SaveBestEpoch`` writes the weights file at every improving
epoch. An interrupted trial restarts from epoch 0 anyway, so those mid-trial
writes buy nothing; on small models they cost more than the epochs. This
callback keeps the best epoch's weights in memory and writes the same file
once, when training ends (pruned and early-stopped trials included).
"""

from __future__ import annotations

from typing import Any

from keras_tuner.src.engine.tuner_utils import SaveBestEpoch


class DeferredSaveBestEpoch(SaveBestEpoch):
    """`SaveBestEpoch` that writes the best weights once, at train end.

    Args:
        original: keras-tuner's callback for this trial; its ``best_value``
            is continued and updated (it is shared by a trial's executions).
    """

    def __init__(self, original: SaveBestEpoch) -> None:
        super().__init__(original.objective, original.filepath)
        self.original = original
        self.best_value = original.best_value
        self._best_weights: list[Any] | None = None

    def _save_model(self) -> None:
        self._best_weights = self.model.get_weights()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.original.best_value = self.best_value
        if self._best_weights is None:
            return
        current = self.model.get_weights()
        self.model.set_weights(self._best_weights)
        try:
            super()._save_model()
        finally:
            self.model.set_weights(current)
            self._best_weights = None
