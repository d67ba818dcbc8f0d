"""The options every ktplus tuner adds to keras-tuner's, validated once.

`TunerOptions` is one frozen dataclass: the tuners build it from their
keyword arguments, and the ``ktplus`` command line builds the same object
from its flags, so both accept and refuse exactly the same values.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from typing import Any

from ktplus._errors import invalid
from ktplus.evaluation._cv import parse_cv
from ktplus.training import _schedules
from ktplus.training._callbacks import parse_early_stopping
from ktplus.training._pruning import Pruner, parse_pruning

#: The parts of the fast path, each its own switch.
FAST_PARTS = ("data", "steps_per_execution", "checkpoint", "gc_freeze", "release_gradients", "pack")
#: Names that switch on several parts at once.
FAST_ALIASES = {"trial_overhead": ("checkpoint", "gc_freeze")}


def parse_fast_path(value: Any) -> frozenset[str]:
    """``fast_path=``: True (every part), False/None (none), one part's name
    or a list of names (see `FAST_PARTS`; "trial_overhead" is "checkpoint"
    plus "gc_freeze")."""
    expected = (f"True, False, one of {', '.join(map(repr, (*FAST_PARTS, *FAST_ALIASES)))} "
                "or a list of those")
    if value is True:
        return frozenset(FAST_PARTS)
    if value is False or value is None:
        return frozenset()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple, set, frozenset)) or not all(
            isinstance(n, str) and (n in FAST_PARTS or n in FAST_ALIASES) for n in names):
        raise invalid("fast_path", value, expected)
    parts: set[str] = set()
    for name in names:
        parts.update(FAST_ALIASES.get(name, (name,)))
    return frozenset(parts)


def _parse_tensorboard(value: Any) -> bool | str:
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, (str, os.PathLike)) and os.fspath(value) != "":
        path = os.fspath(value)
        if "://" in path:
            raise invalid("tensorboard", value, "a local or mounted directory (remote paths such as "
                          "gs://... are not supported), True or False")
        return path
    raise invalid("tensorboard", value,
                  "True (<directory>/<project_name>/tensorboard), False/None, or a directory path")


def _parse_keep_checkpoints(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid("keep_checkpoints", value,
                      "None (keep every trial's checkpoint) or an integer k >= 1 (keep the k best)")
    return int(value)


def _parse_worker_timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
        raise invalid("worker_timeout", value, "a finite number of seconds > 0")
    return float(value)


def parse_pack(value: Any) -> int | str:
    """``pack=``: an int K >= 1 (1: off) or "auto"."""
    if value == "auto" and isinstance(value, str):
        return "auto"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise invalid("pack", value,
                      "'auto' or an integer K >= 1: how many trials to ask for at once and train as "
                      "fused models where their models share a structure (1: off)")
    return int(value)


@dataclass(frozen=True)
class TunerOptions:
    """ktplus's options of one tuner, validated.

    Build it with `TunerOptions.parse` from the tuners' keyword arguments;
    `as_kwargs` gives them back in a form every ktplus tuner accepts.

    Args:
        lr_decay: The parsed schedule: an `LRDecay`, a `TunedLRDecay` or None.
        early_stopping: EarlyStopping options (a dict), a
            `keras.callbacks.EarlyStopping`, or None.
        pruner: A `ktplus.Pruner` or None.
        fast_path: The fast-path parts switched on.
        tensorboard: True (the project's ``tensorboard`` folder), False, or
            a directory.
        worker_timeout: Seconds without a heartbeat after which the chief of
            a distributed search declares a worker lost.
        cv: None, the number of folds, or a scikit-learn splitter.
        keep_checkpoints: None (keep all) or how many of the best trials'
            checkpoints to keep on disk.
        pack: "auto" or K: how many trials to ask for at once and train as
            fused models (1: off).

    Example:

    >>> from ktplus.tuners import TunerOptions
    >>> TunerOptions.parse(early_stopping=3, fast_path="data").fast_path
    frozenset({'data'})
    """

    lr_decay: Any = None
    early_stopping: Any = None
    pruner: Pruner | None = None
    fast_path: frozenset[str] = field(default_factory=lambda: frozenset(FAST_PARTS))
    tensorboard: bool | str = True
    worker_timeout: float = 60.0
    cv: Any = None
    keep_checkpoints: int | None = None
    pack: int | str = "auto"

    @classmethod
    def parse(cls, *, lr_decay: Any = None, lr_warmup: Any = 0, early_stopping: Any = None,
              pruning: Any = None, fast_path: Any = True, tensorboard: Any = True,
              worker_timeout: Any = 60.0, cv: Any = None, keep_checkpoints: Any = None,
              pack: Any = "auto") -> TunerOptions:
        """Validates the tuners' keyword arguments (see `ktplus.Tuner`).

        Raises:
            ValueError: naming the argument, the value and what is allowed.
        """
        return cls(
            lr_decay=_schedules.parse_lr_decay(lr_decay, lr_warmup),
            early_stopping=parse_early_stopping(early_stopping),
            pruner=parse_pruning(pruning),
            fast_path=parse_fast_path(fast_path),
            tensorboard=_parse_tensorboard(tensorboard),
            worker_timeout=_parse_worker_timeout(worker_timeout),
            cv=parse_cv(cv),
            keep_checkpoints=_parse_keep_checkpoints(keep_checkpoints),
            pack=parse_pack(pack),
        )

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of a ktplus tuner."""
        return {"lr_decay": self.lr_decay, "early_stopping": self.early_stopping,
                "pruning": self.pruner, "fast_path": sorted(self.fast_path),
                "tensorboard": self.tensorboard, "worker_timeout": self.worker_timeout,
                "cv": self.cv, "keep_checkpoints": self.keep_checkpoints, "pack": self.pack}

    def check_objective(self, objective: Any, given: Any) -> None:
        """Refuses options that watch one per-epoch metric with an objective
        that is not one (a list; none: keras-tuner's default objective; or a
        built-in trial-level objective such as "num_params", constant over
        a trial's epochs).

        Args:
            objective: The tuner's `keras_tuner.Objective`.
            given: The ``objective`` argument as the user passed it.
        """
        from ktplus._compat import DefaultObjective, MultiObjective
        from ktplus._objectives import is_trial_level

        multi = isinstance(objective, MultiObjective)
        default = isinstance(objective, DefaultObjective)
        trial_level = not (multi or default) and is_trial_level(objective.name)
        if not (multi or default or trial_level):
            return
        without = ("several objectives" if multi else "no objective" if default else
                   f"the trial-level objective {objective.name!r} (one value per trial, the same at "
                   "every epoch)")
        watching = (("early_stopping", self.early_stopping, self.early_stopping is not None),
                    ("lr_decay", self.lr_decay, _schedules.needs_single_metric(self.lr_decay)),
                    ("pruning", self.pruner, self.pruner is not None))
        for arg, value, used in watching:
            if used:
                raise invalid(arg, value,
                              "an objective that is one per-epoch metric name or keras_tuner.Objective "
                              f"to watch (received objective={given!r}); leave {arg} off with {without}")
