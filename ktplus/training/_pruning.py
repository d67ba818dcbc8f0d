"""Pruning of hopeless trials, from epoch curves shared through files.

keras-tuner 1.4.8 ignores a STOPPED status from ``Oracle.update_trial`` and
its ``Tuner.on_epoch_end`` does nothing, so ktplus prunes from a callback
that sets ``model.stop_training``. Each trial's curve (its objective value by
epoch) is written atomically to ``<project>/ktplus_curves/trial_<id>.json``;
every worker of a distributed search sharing the directory reads all of
them, so a decision uses the curves of trials run anywhere.

The rules follow Optuna's pruners (``optuna.pruners.PercentilePruner``,
``MedianPruner``, ``ThresholdPruner``), with the 0-based epoch index as
Optuna's ``step``:

- ``n_startup_trials``: no pruning until that many trials have completed
  (pruned and failed trials do not count);
- ``n_warmup_epochs`` (Optuna's ``n_warmup_steps``): no pruning while
  ``epoch < n_warmup_epochs``; the earliest a trial can be pruned is at
  ``epoch == n_warmup_epochs``;
- no pruning at an epoch where no completed trial has a value (Optuna's
  ``n_min_trials=1``).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import keras
import numpy as np

from ktplus._atomic import atomic_write_json
from ktplus._errors import invalid

#: Curve states written by `PruningCallback`.
RUNNING, COMPLETED, PRUNED, FAILED = "running", "completed", "pruned", "failed"


def _values(raw: Any) -> dict[int, float]:
    """``{"3": 0.5, ...}`` from a file -> ``{3: 0.5}`` (null -> NaN)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"a curve must be a JSON object, got {type(raw).__name__}")
    return {int(k): math.nan if v is None else float(v) for k, v in raw.items()}


class _Curve(NamedTuple):
    trial_id: str
    state: str | None
    values: dict[int, float]  # the epochs the trial itself trained
    inherited: dict[int, float]  # the epochs of its Hyperband ancestors
    fold: int | None = None  # the cross-validation fold, None without cv


class CurveStore:
    """Per-trial objective curves in a directory, one JSON file per trial.

    A file holds::

        {"trial_id": "7", "state": "running" | "completed" | "pruned" | "failed",
         "worker": <KERASTUNER_TUNER_ID or null>,
         "values": {"3": 0.52, "4": 0.61},          # epochs this trial trained
         "inherited": {"0": 0.31, "1": 0.40, ...},  # its Hyperband parent's lineage
         "pruned_against": ["1", "2"],              # only when pruned
         "fold": 2}                                 # only with cross-validation

    With cross-validation (``cv=``) each fold of a trial has its own file,
    ``trial_<id>_fold_<k>.json``, and a pruning decision for fold ``k``
    compares with fold ``k`` of the other trials (`finished` with ``fold``).

    Epochs are 0-based and absolute (a Hyperband continuation starting at
    ``initial_epoch=3`` writes its epochs from 3). ``"inherited"`` may be
    absent (files written before it existed, or trials with no parent).

    `read` returns a trial's whole lineage (inherited epochs, then its own),
    which is what a continuation starts from; `finished` returns only the
    epochs each trial trained itself, so that a promoted trial is not
    counted again, at its parent's epochs, among the trials a decision
    compares with.

    One instance keeps the parsed files, keyed by each file's
    ``(st_ino, st_mtime_ns, st_size)``: `finished` costs one ``stat`` per
    file and parses only the files that changed since the last call. Share
    one instance between the trials of a search.

    Args:
        directory: Where the curve files are (created on the first write).

    Example:

    >>> import tempfile
    >>> store = CurveStore(tempfile.mkdtemp())
    >>> store.write("1", {0: 0.5, 1: 0.6}, "completed")
    >>> store.write("2", {2: 0.7}, "completed", inherited=store.read("1"))
    >>> store.read("2")
    {0: 0.5, 1: 0.6, 2: 0.7}
    >>> store.finished()
    {'1': {0: 0.5, 1: 0.6}, '2': {2: 0.7}}
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self._cache: dict[str, tuple[tuple[int, int, int], _Curve | None]] = {}

    def path(self, trial_id: str, fold: int | None = None) -> Path:
        """The file of ``trial_id``'s curve (of one fold with ``fold``)."""
        return self.directory / (f"trial_{trial_id}.json" if fold is None else f"trial_{trial_id}_fold_{fold}.json")

    def write(self, trial_id: str, values: Mapping[int, float], state: str,
              compared_with: list[str] | None = None, *,
              inherited: Mapping[int, float] | None = None, fold: int | None = None,
              durable: bool = True) -> None:
        """Writes a trial's curve atomically.

        Args:
            trial_id: The trial.
            values: The epochs the trial trained itself, ``{epoch: value}``.
            state: "running", "completed", "pruned" or "failed".
            compared_with: When pruned, the ids of the trials the decision
                used.
            inherited: The epochs before the trial's ``initial_epoch``, from
                its Hyperband parent (`read` of the parent).
            fold: The cross-validation fold this curve is of (None: no cv).
            durable: fsync the file (`ktplus._atomic`): False for the
                writes of every epoch, which a killed process cannot tear
                either (the rename is atomic) and the next epoch or the
                trial's end writes again.
        """
        data: dict[str, Any] = {
            "trial_id": trial_id, "state": state, "worker": os.environ.get("KERASTUNER_TUNER_ID"),
            "values": {str(k): v for k, v in sorted(values.items())},
        }
        if inherited:
            data["inherited"] = {str(k): v for k, v in sorted(inherited.items())}
        if compared_with is not None:
            data["pruned_against"] = compared_with  # the finished trials the decision used
        if fold is not None:
            data["fold"] = int(fold)
        atomic_write_json(self.path(trial_id, fold), data, durable=durable)

    def _load(self, path: Path, stat: os.stat_result | None = None) -> _Curve | None:
        """The parsed file, from the cache unless the file changed; None
        when it is missing or unreadable (e.g. being replaced)."""
        key = str(path)
        try:
            st = stat if stat is not None else path.stat()
        except OSError:
            self._cache.pop(key, None)
            return None
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == sig:
            return cached[1]
        curve: _Curve | None
        try:
            data = json.loads(path.read_text())
            curve = _Curve(str(data.get("trial_id", path.stem[len("trial_"):])), data.get("state"),
                           _values(data.get("values")), _values(data.get("inherited")),
                           None if data.get("fold") is None else int(data["fold"]))
        except FileNotFoundError:
            self._cache.pop(key, None)
            return None
        except (OSError, ValueError, TypeError, AttributeError):
            curve = None  # unreadable: parsed again once the file changes
        self._cache[key] = (sig, curve)
        return curve

    def read(self, trial_id: str) -> dict[int, float]:
        """The trial's whole curve: inherited epochs and its own, by epoch
        ({} when there is no readable file)."""
        curve = self._load(self.path(trial_id))
        if curve is None:
            return {}
        return dict(sorted({**curve.inherited, **curve.values}.items()))

    def finished(self, exclude: str | None = None,
                 states: tuple[str, ...] = (COMPLETED,), fold: int | None = None) -> dict[str, dict[int, float]]:
        """The epochs each trial in ``states`` trained itself (inherited
        epochs left out), by trial id.

        Args:
            exclude: A trial id to leave out (the one deciding).
            states: Which curves to return; the default, completed only,
                leaves out pruned and failed trials, as Optuna's pruners
                count only COMPLETE trials.
            fold: Only the curves of this cross-validation fold (None: the
                curves of searches without cv).
        """
        return {c.trial_id: dict(c.values) for c in self.curves(exclude, states) if c.fold == fold}

    def best_values(self, direction: str, states: tuple[str, ...] = (COMPLETED,)) -> dict[str, float]:
        """Each trial's best value, by trial id: the best epoch of its curve,
        averaged over its folds with cross-validation (NaN ignored; trials
        with no finite value left out)."""
        per_trial: dict[str, list[float]] = {}
        best_of = max if direction == "max" else min
        for curve in self.curves(None, states):
            finite = [v for v in curve.values.values() if v is not None and math.isfinite(v)]
            if finite:
                per_trial.setdefault(curve.trial_id, []).append(best_of(finite))
        return {t: float(np.mean(v)) for t, v in per_trial.items()}

    def trial_curve(self, trial_id: str) -> dict[int, float]:
        """The epochs ``trial_id`` trained itself, by epoch: its curve, or
        with cross-validation the mean over its folds of each epoch some
        fold reached ({} when there is none)."""
        curve = self._load(self.path(trial_id))
        if curve is not None:
            return dict(sorted(curve.values.items()))
        by_epoch: dict[int, list[float]] = {}
        for fold in range(1024):
            part = self._load(self.path(trial_id, fold))
            if part is None:
                break
            for epoch, value in part.values.items():
                by_epoch.setdefault(epoch, []).append(value)
        return {e: float(np.mean(v)) for e, v in sorted(by_epoch.items())}

    def curves(self, exclude: str | None = None, states: tuple[str, ...] = (COMPLETED,)) -> list[_Curve]:
        """The parsed curves in ``states`` (every fold's), ``exclude``'s left out."""
        out: list[_Curve] = []
        try:
            entries = sorted(os.scandir(self.directory), key=lambda e: e.name)
        except OSError:
            return out
        skip = self.path(exclude).name if exclude is not None else None
        seen = set()
        for entry in entries:
            name = entry.name
            if not (name.startswith("trial_") and name.endswith(".json")) or name == skip:
                continue
            path = self.directory / name
            seen.add(str(path))
            try:
                st = entry.stat()
            except OSError:
                continue
            curve = self._load(path, st)
            if curve is None:
                continue  # a file being replaced or damaged; skipped
            if curve.state in states and curve.trial_id != exclude:
                out.append(curve)
        keep = str(self.path(exclude)) if exclude is not None else None
        for key in [k for k in self._cache if k not in seen and k != keep]:
            del self._cache[key]  # files removed since the last call
        return out


def _check_int(arg: str, value: Any) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise invalid(arg, value, "an integer >= 0")
    return int(value)


def _is_real(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and not math.isnan(value))


class Pruner:
    """Decides whether a trial is hopeless. Subclasses implement `prune`.

    Args:
        n_startup_trials: No pruning until this many trials have completed
            (pruned and failed trials do not count).
        n_warmup_epochs: No pruning while the 0-based epoch index is less
            than this (Optuna's ``n_warmup_steps``): the earliest a trial can
            be pruned is after epoch ``n_warmup_epochs``, i.e. after
            ``n_warmup_epochs + 1`` epochs; 0 allows pruning after the first.
    """

    def __init__(self, *, n_startup_trials: int = 3, n_warmup_epochs: int = 2) -> None:
        self.n_startup_trials = _check_int("n_startup_trials", n_startup_trials)
        self.n_warmup_epochs = _check_int("n_warmup_epochs", n_warmup_epochs)

    def prune(self, epoch: int, curve: Mapping[int, float], others: Sequence[Mapping[int, float]],
              direction: str) -> bool:
        """Whether to stop a trial after ``epoch``.

        Args:
            epoch: The 0-based index of the epoch just finished.
            curve: The trial's values by epoch so far, its Hyperband
                parent's epochs included.
            others: One curve per completed trial (`CurveStore.finished`):
                their number is what ``n_startup_trials`` counts.
            direction: "max" or "min", the objective's direction.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments; ``cls(**config)`` rebuilds the pruner."""
        return {"n_startup_trials": self.n_startup_trials, "n_warmup_epochs": self.n_warmup_epochs}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Pruner:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class PercentilePruner(Pruner):
    """Keeps the trials in the best ``percentile`` percent (Optuna's rule).

    After epoch ``t``, a trial is pruned when its best value so far (over
    epochs ``<= t``, NaN ignored) is worse than the ``percentile``-th
    percentile, counted from the best end, of the completed trials' values
    at epoch ``t``: for "max", below ``np.percentile(values, 100 -
    percentile)``; for "min", above ``np.percentile(values, percentile)``
    (NaN values of other trials are ignored). Never prunes while ``epoch <
    n_warmup_epochs`` or before ``n_startup_trials`` trials (and at least
    one) have completed. Past those, a trial whose values so far are all NaN
    is pruned; any other is kept at an epoch where no completed trial has a
    value.

    Args:
        percentile: In (0, 100): 25 keeps the best quarter, 50 is the median
            rule, 75 prunes only the worst quarter.
        n_startup_trials: No pruning until this many trials have completed
            (pruned and failed trials do not count).
        n_warmup_epochs: No pruning while the 0-based epoch index is less
            than this; 0 allows pruning after the first epoch.

    Example:

    >>> p = PercentilePruner(25.0, n_startup_trials=3, n_warmup_epochs=0)
    >>> others = [{0: 0.5}, {0: 0.6}, {0: 0.7}, {0: 0.8}, {0: 0.9}]
    >>> p.prune(0, {0: 0.75}, others, "max")  # below the best quarter (0.8)
    True
    >>> p.prune(0, {0: 0.85}, others, "max")
    False
    >>> PercentilePruner(75.0, n_warmup_epochs=0).prune(0, {0: 0.75}, others, "max")
    False
    """

    def __init__(self, percentile: float = 50.0, *, n_startup_trials: int = 3,
                 n_warmup_epochs: int = 2) -> None:
        super().__init__(n_startup_trials=n_startup_trials, n_warmup_epochs=n_warmup_epochs)
        if not _is_real(percentile) or not 0 < percentile < 100:
            raise invalid("percentile", percentile, "a number in (0, 100), e.g. 25.0")
        self.percentile = float(percentile)

    def prune(self, epoch: int, curve: Mapping[int, float], others: Sequence[Mapping[int, float]],
              direction: str) -> bool:
        if epoch < self.n_warmup_epochs:
            return False
        if len(others) == 0 or len(others) < self.n_startup_trials:
            return False
        mine = np.asarray([v for e, v in curve.items() if e <= epoch], dtype=float)
        if mine.size == 0:
            return False
        if np.isnan(mine).all():
            return True
        at_epoch = np.asarray([c[epoch] for c in others if epoch in c], dtype=float)
        at_epoch = at_epoch[~np.isnan(at_epoch)]
        if at_epoch.size == 0:
            return False  # no completed trial has a value at this epoch
        best = float(np.nanmax(mine) if direction == "max" else np.nanmin(mine))
        # For "max" the best trials are at the top: compare with the (100-p)th.
        q = 100 - self.percentile if direction == "max" else self.percentile
        threshold = float(np.percentile(at_epoch, q))
        if math.isnan(threshold):  # e.g. -inf and inf among the values
            return False
        return best < threshold if direction == "max" else best > threshold

    def get_config(self) -> dict[str, Any]:
        return {"percentile": self.percentile, **super().get_config()}


class MedianPruner(PercentilePruner):
    """The median stopping rule: after epoch ``t``, stop a trial whose best
    value so far is worse than the median of the completed trials' values
    at epoch ``t``. This is ``PercentilePruner(50.0)``.

    Args:
        n_startup_trials: No pruning until this many trials have completed
            (pruned and failed trials do not count).
        n_warmup_epochs: No pruning while the 0-based epoch index is less
            than this; 0 allows pruning after the first epoch.

    Example:

    >>> from ktplus.training import MedianPruner
    >>> p = MedianPruner(n_startup_trials=2, n_warmup_epochs=1)
    >>> others = [{0: 0.9, 1: 0.95}, {0: 0.8, 1: 0.9}]
    >>> p.prune(1, {0: 0.3, 1: 0.4}, others, "max"), p.prune(1, {0: 0.9, 1: 0.96}, others, "max")
    (True, False)
    >>> p.prune(0, {0: 0.3}, others, "max")  # epoch 0 < n_warmup_epochs
    False
    """

    def __init__(self, *, n_startup_trials: int = 3, n_warmup_epochs: int = 2) -> None:
        super().__init__(50.0, n_startup_trials=n_startup_trials, n_warmup_epochs=n_warmup_epochs)

    def get_config(self) -> dict[str, Any]:
        return Pruner.get_config(self)


class ThresholdPruner(Pruner):
    """Stops a trial whose latest value is below ``lower``, above ``upper``
    or NaN (Optuna's ThresholdPruner); other trials are not looked at.

    Args:
        lower: Prune when the value at the epoch just finished is smaller
            (None: no lower bound).
        upper: Prune when that value is larger (None: no upper bound).
        n_warmup_epochs: No pruning while the 0-based epoch index is less
            than this; 0 (the default) allows pruning after the first epoch.

    Example:

    >>> p = ThresholdPruner(lower=0.2)
    >>> p.prune(0, {0: 0.1}, [], "max"), p.prune(0, {0: 0.3}, [], "max")
    (True, False)
    >>> p.prune(0, {0: float("nan")}, [], "max")
    True
    """

    def __init__(self, lower: float | None = None, upper: float | None = None, *,
                 n_warmup_epochs: int = 0) -> None:
        super().__init__(n_startup_trials=0, n_warmup_epochs=n_warmup_epochs)
        for arg, v in (("lower", lower), ("upper", upper)):
            if v is not None and not _is_real(v):
                raise invalid(arg, v, "a real number (not NaN) or None")
        if lower is None and upper is None:
            raise invalid("lower", lower, "a number for `lower` and/or `upper`")
        if lower is not None and upper is not None and lower > upper:
            raise invalid("lower", lower, f"a number <= upper={upper!r}")
        self.lower = None if lower is None else float(lower)
        self.upper = None if upper is None else float(upper)

    def prune(self, epoch: int, curve: Mapping[int, float], others: Sequence[Mapping[int, float]],
              direction: str) -> bool:
        if epoch < self.n_warmup_epochs or epoch not in curve:
            return False
        v = curve[epoch]
        if v is None or math.isnan(v):
            return True
        return (self.lower is not None and v < self.lower) or (self.upper is not None and v > self.upper)

    def get_config(self) -> dict[str, Any]:
        return {"lower": self.lower, "upper": self.upper, "n_warmup_epochs": self.n_warmup_epochs}


PRUNERS: dict[str, Callable[[], Pruner]] = {
    "median": MedianPruner,
    "percentile": lambda: PercentilePruner(25.0),
}


def parse_pruning(value: Any) -> Pruner | None:
    """Validates ``pruning=``: None, "median", "percentile" or a `Pruner`.

    "median" is ``MedianPruner()``; "percentile" is ``PercentilePruner(25.0)``
    (keeps the best quarter). None or False: no pruning.
    """
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

    After each epoch it reads the objective from the logs, asks the pruner
    (with the curves of the completed trials in ``store``) and sets
    ``model.stop_training`` when it says prune; then it writes the trial's
    curve (state "running" or "pruned"). The tuner calls `finish` once
    ``fit`` returns.

    A Hyperband continuation passes its parent's curve (``store.read`` of
    the parent) as ``initial_curve``: those epochs count toward the trial's
    best value so far, and are written under "inherited", apart from the
    epochs the trial trains itself, so that other trials never compare with
    the parent's epochs twice.

    Args:
        pruner: The rule, or None to only record curves.
        store: Where curves are shared; one instance per tuner.
        trial_id: This trial's id.
        objective: The tuner's `keras_tuner.Objective` (its ``get_value``
            and ``direction``).
        initial_curve: The values of earlier epochs (a Hyperband parent's
            curve, its own ancestors included).
        fold: The cross-validation fold being trained (None without cv):
            the curve is the fold's, and pruning compares it with the same
            fold of the other trials, epoch by epoch.

    Attributes:
        pruned_epoch: The 0-based epoch after which the trial was pruned, or
            None.
        pruned_against: The ids of the completed trials that decision used.
    """

    def __init__(self, pruner: Pruner | None, store: CurveStore, trial_id: str,
                 objective: Any, initial_curve: Mapping[int, float] | None = None,
                 fold: int | None = None) -> None:
        super().__init__()
        self.fold = fold
        self.pruner = pruner
        self.store = store
        self.trial_id = trial_id
        self.objective = objective
        self.inherited: dict[int, float] = dict(initial_curve or {})
        self.values: dict[int, float] = {}  # the epochs this trial trains
        self.pruned_epoch: int | None = None
        self.pruned_against: list[str] | None = None

    @property
    def curve(self) -> dict[int, float]:
        """The trial's whole curve: inherited epochs, then its own."""
        return dict(sorted({**self.inherited, **self.values}.items()))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        try:
            value = float(self.objective.get_value(logs))
        except (KeyError, TypeError, ValueError):
            return
        self.values[epoch] = value
        if self.pruner is not None and self.pruned_epoch is None:
            others = self.store.finished(exclude=self.trial_id, fold=self.fold)
            if self.pruner.prune(epoch, self.curve, list(others.values()), self.objective.direction):
                self.pruned_epoch = epoch
                self.pruned_against = sorted(others)
                self.model.stop_training = True
        # Atomic without fsync: safe against a killed process, and rewritten durably when the trial ends.
        self._write(PRUNED if self.pruned_epoch is not None else RUNNING, durable=False)

    def finish(self, state: str) -> None:
        """Marks the curve as finished ("completed", "pruned" or "failed")."""
        self._write(state)

    def _write(self, state: str, durable: bool = True) -> None:
        self.store.write(self.trial_id, self.values, state, self.pruned_against,
                         inherited=self.inherited, fold=self.fold, durable=durable)
