"""Pruning of hopeless trials, from epoch curves shared through files.

keras-tuner 1.4.8 ignores a STOPPED status from ``Oracle.update_trial`` and
its ``Tuner.on_epoch_end`` does nothing, so ktplus prunes from a callback
that sets ``model.stop_training``. Each trial's curve (its objective value by
epoch) is written atomically to ``<project>/ktplus_curves/trial_<id>.json``;
every worker of a distributed search sharing the directory reads all of
them, so a decision uses the curves of trials run anywhere.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ktplus.hypermodels._knobs import invalid
from ktplus.training._atomic import atomic_write_json


class CurveStore:
    """Per-trial objective curves in a directory (one file per trial).

    A curve is ``{"values": {epoch: value}, "state": "running" | "completed"
    | "pruned" | "failed"}``; epochs are 0-based and absolute.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def path(self, trial_id: str) -> Path:
        return self.directory / f"trial_{trial_id}.json"

    def write(self, trial_id: str, values: dict[int, float], state: str,
              compared_with: list[str] | None = None) -> None:
        data: dict[str, Any] = {
            "trial_id": trial_id, "state": state, "worker": os.environ.get("KERASTUNER_TUNER_ID"),
            "values": {str(k): v for k, v in sorted(values.items())},
        }
        if compared_with is not None:
            data["pruned_against"] = compared_with  # the finished trials the decision used
        atomic_write_json(self.path(trial_id), data)

    def read(self, trial_id: str) -> dict[int, float]:
        try:
            data = json.loads(self.path(trial_id).read_text())
        except (OSError, ValueError):
            return {}
        return {int(k): v for k, v in data.get("values", {}).items()}

    def finished(self, exclude: str | None = None,
                 states: tuple[str, ...] = ("completed",)) -> dict[str, dict[int, float]]:
        """Curves of trials in ``states`` (default: completed, so neither
        pruned nor failed), by trial id."""
        out: dict[str, dict[int, float]] = {}
        if not self.directory.is_dir():
            return out
        for p in sorted(self.directory.glob("trial_*.json")):
            try:
                data = json.loads(p.read_text())
            except (OSError, ValueError):
                continue  # a file being replaced; next epoch will see it
            if data.get("state") in states and data.get("trial_id") != exclude:
                out[data["trial_id"]] = {int(k): v for k, v in data["values"].items()}
        return out


class Pruner:
    """Decides whether a trial is hopeless. Subclasses implement `prune`.

    Args:
        n_startup_trials: No pruning until this many trials finished.
        n_warmup_epochs: No pruning before this many epochs of a trial.
    """

    def __init__(self, *, n_startup_trials: int = 3, n_warmup_epochs: int = 2) -> None:
        for arg, v in (("n_startup_trials", n_startup_trials), ("n_warmup_epochs", n_warmup_epochs)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise invalid(arg, v, "an integer >= 0")
        self.n_startup_trials = n_startup_trials
        self.n_warmup_epochs = n_warmup_epochs

    def prune(self, epoch: int, curve: dict[int, float], others: list[dict[int, float]],
              direction: str) -> bool:
        """Whether to stop a trial after ``epoch`` (0-based) given its curve
        so far and the curves of finished trials."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def _best(values: list[float], direction: str) -> float:
    return max(values) if direction == "max" else min(values)


class PercentilePruner(Pruner):
    """Stops a trial whose best value so far is worse than the given
    percentile of finished trials' values at the same epoch (Optuna's rule).

    Args:
        percentile: In (0, 100); 50 is the median rule, 25 keeps only trials
            in the best quarter.
        n_startup_trials: No pruning until this many trials finished.
        n_warmup_epochs: No pruning before this many epochs of a trial.
    """

    def __init__(self, percentile: float = 50.0, *, n_startup_trials: int = 3,
                 n_warmup_epochs: int = 2) -> None:
        super().__init__(n_startup_trials=n_startup_trials, n_warmup_epochs=n_warmup_epochs)
        if not isinstance(percentile, (int, float)) or not 0 < percentile < 100:
            raise invalid("percentile", percentile, "a number in (0, 100)")
        self.percentile = float(percentile)

    def prune(self, epoch: int, curve: dict[int, float], others: list[dict[int, float]],
              direction: str) -> bool:
        if epoch + 1 < max(1, self.n_warmup_epochs):
            return False
        at_epoch = [c[epoch] for c in others if epoch in c and c[epoch] is not None
                    and math.isfinite(c[epoch])]
        if len(at_epoch) < max(1, self.n_startup_trials):
            return False
        mine = [v for e, v in curve.items() if e <= epoch and v is not None and math.isfinite(v)]
        if not mine:
            return True
        best = _best(mine, direction)
        # For "max", the best trials are at the top: compare to the (100-p)th.
        q = 100 - self.percentile if direction == "max" else self.percentile
        threshold = float(np.percentile(at_epoch, q))
        return best < threshold if direction == "max" else best > threshold


class MedianPruner(PercentilePruner):
    """The median stopping rule: stop a trial at epoch t when its best value
    so far is worse than the median of finished trials' values at epoch t.

    Args:
        n_startup_trials: No pruning until this many trials finished.
        n_warmup_epochs: No pruning before this many epochs of a trial.

    Example:

    >>> from ktplus.training import MedianPruner
    >>> p = MedianPruner(n_startup_trials=2, n_warmup_epochs=1)
    >>> others = [{0: 0.9, 1: 0.95}, {0: 0.8, 1: 0.9}]
    >>> p.prune(1, {0: 0.3, 1: 0.4}, others, "max"), p.prune(1, {0: 0.9, 1: 0.96}, others, "max")
    (True, False)
    """

    def __init__(self, *, n_startup_trials: int = 3, n_warmup_epochs: int = 2) -> None:
        super().__init__(50.0, n_startup_trials=n_startup_trials, n_warmup_epochs=n_warmup_epochs)

    def __repr__(self) -> str:
        return (f"MedianPruner(n_startup_trials={self.n_startup_trials}, "
                f"n_warmup_epochs={self.n_warmup_epochs})")


class ThresholdPruner(Pruner):
    """Stops a trial whose latest value is below ``lower`` or above ``upper``.

    Args:
        lower: Minimum acceptable value (None: no lower bound).
        upper: Maximum acceptable value (None: no upper bound).
        n_warmup_epochs: No pruning before this many epochs of a trial.
    """

    def __init__(self, lower: float | None = None, upper: float | None = None, *,
                 n_warmup_epochs: int = 0) -> None:
        super().__init__(n_startup_trials=0, n_warmup_epochs=n_warmup_epochs)
        if lower is None and upper is None:
            raise invalid("lower", lower, "a number for lower and/or upper")
        if lower is not None and upper is not None and lower > upper:
            raise invalid("lower", lower, f"a number <= upper={upper}")
        self.lower, self.upper = lower, upper

    def prune(self, epoch: int, curve: dict[int, float], others: list[dict[int, float]],
              direction: str) -> bool:
        if epoch + 1 < self.n_warmup_epochs or epoch not in curve:
            return False
        v = curve[epoch]
        return (self.lower is not None and v < self.lower) or (self.upper is not None and v > self.upper)


PRUNERS = {"median": MedianPruner, "percentile": lambda: PercentilePruner(25.0)}


def parse_pruning(value: Any) -> Pruner | None:
    """Validates ``pruning=``: None, "median", "percentile" or a `Pruner`."""
    if value is None or value is False:
        return None
    if isinstance(value, Pruner):
        return value
    if isinstance(value, str) and value in PRUNERS:
        return PRUNERS[value]()
    raise invalid("pruning", value,
                  "None, 'median', 'percentile' (keeps the best quarter) or a ktplus.training.Pruner "
                  "(MedianPruner, PercentilePruner, ThresholdPruner)")


class PruningCallback(keras.callbacks.Callback):
    """Records the trial's curve each epoch and stops hopeless trials.

    Args:
        pruner: The rule, or None to only record curves.
        store: Where curves are shared.
        trial_id: This trial's id.
        objective: The tuner's `keras_tuner.Objective`.
        initial_curve: Values of earlier epochs (a Hyperband parent's curve).
    """

    def __init__(self, pruner: Pruner | None, store: CurveStore, trial_id: str,
                 objective: Any, initial_curve: dict[int, float] | None = None) -> None:
        super().__init__()
        self.pruner = pruner
        self.store = store
        self.trial_id = trial_id
        self.objective = objective
        self.curve: dict[int, float] = dict(initial_curve or {})
        self.pruned_epoch: int | None = None
        self.pruned_against: list[str] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        try:
            value = float(self.objective.get_value(logs))
        except (KeyError, TypeError, ValueError):
            return
        self.curve[epoch] = value
        if self.pruner is not None:
            others = self.store.finished(exclude=self.trial_id)
            if self.pruner.prune(epoch, self.curve, list(others.values()), self.objective.direction):
                self.pruned_epoch = epoch
                self.pruned_against = sorted(others)
                self.model.stop_training = True
        self.store.write(self.trial_id, self.curve,
                         "pruned" if self.pruned_epoch is not None else "running", self.pruned_against)

    def finish(self, state: str) -> None:
        """Marks the curve as finished ("completed", "pruned" or "failed")."""
        self.store.write(self.trial_id, self.curve, state, self.pruned_against)
