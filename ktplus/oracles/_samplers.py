"""The samplers `OptunaOracle` accepts, by name or as an Optuna object."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import optuna

from ktplus._errors import invalid, invalid_type
from ktplus._seed import generator_seed
from ktplus._warnings import warnings_registries_kept

#: The sampler names, each one Optuna sampler.
SAMPLERS = ("tpe", "cmaes", "gp", "qmc", "random", "nsga2")
#: Samplers that optimize one objective only.
SINGLE_OBJECTIVE = ("cmaes",)
#: Samplers that need several objectives.
MULTI_OBJECTIVE = ("nsga2",)


def _raises(category: type[Warning]) -> bool:
    """Whether the warnings filters turn a warning of ``category`` (raised
    in Optuna) into an error: the first filter that matches it says "error"."""
    for action, message, cat, module, _lineno in warnings.filters:
        if not issubclass(category, cat):
            continue
        if module is not None and not module.match("optuna"):
            continue
        if action == "error":
            return True  # (for some messages only, perhaps: the safe side)
        if message is None:
            return False  # this filter decides for every message
    return False


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial INFO lines and experimental-feature warnings off
    while ktplus drives a study (the user's own studies are untouched after).

    The warnings filters are left alone: changing them (as
    ``warnings.catch_warnings`` does, even when it puts them back) makes
    Python show every warning it already showed once again. An experimental
    warning is instead not shown, and what Python recorded of it (its
    ``__warningregistry__`` entry) is undone, so the user's own use of that
    Optuna feature still warns."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    if _raises(optuna.exceptions.ExperimentalWarning):
        # An "error" filter raises before anything is shown: only a filter of
        # ktplus's own stops it; the registries of warnings shown are kept valid.
        try:
            with warnings_registries_kept(), warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                yield
        finally:
            logger.setLevel(level)
        return
    show = warnings.showwarning
    hidden: list[tuple[dict, tuple]] = []

    def show_others(message: Any, category: Any, filename: str, lineno: int, *args: Any, **kwargs: Any) -> None:
        if not issubclass(category, optuna.exceptions.ExperimentalWarning):
            show(message, category, filename, lineno, *args, **kwargs)
            return
        frame = sys._getframe(1)
        while frame is not None and (frame.f_code.co_filename, frame.f_lineno) != (filename, lineno):
            frame = frame.f_back  # type: ignore[assignment]
        registry = frame.f_globals.get("__warningregistry__") if frame is not None else None
        text = str(message)
        if isinstance(registry, dict):
            hidden.extend((registry, key) for key in ((text, category, lineno), (text, category, 0)))
        once = getattr(warnings, "onceregistry", None)  # the "once" action's record
        if isinstance(once, dict):
            hidden.append((once, (text, category)))

    warnings.showwarning = show_others
    try:
        yield
    finally:
        if warnings.showwarning is show_others:
            warnings.showwarning = show
        for registry, key in hidden:
            registry.pop(key, None)
        logger.setLevel(level)


def check_sampler(sampler: Any, directions: Sequence[str]) -> None:
    """Refuses a sampler the study cannot use, before anything is built.

    Args:
        sampler: A name of `SAMPLERS` or an `optuna.samplers.BaseSampler`.
        directions: The study's directions, one per objective.

    Raises:
        ValueError: an unknown name, "nsga2" with one objective, "cmaes"
            with several, "gp" without PyTorch installed.
        TypeError: (also a ValueError) an object that is no Optuna sampler.
    """
    expected = (f"one of {', '.join(map(repr, SAMPLERS))} or an optuna.samplers.BaseSampler instance")
    if isinstance(sampler, optuna.samplers.BaseSampler):
        if len(directions) > 1 and isinstance(sampler, optuna.samplers.CmaEsSampler):
            raise invalid("sampler", sampler, "a multi-objective sampler (CmaEsSampler optimizes one "
                          "objective): optuna.samplers.NSGAIISampler, TPESampler, GPSampler, ...")
        return
    if not isinstance(sampler, str):
        raise invalid_type("sampler", sampler, expected)
    name = sampler.lower()
    if name not in SAMPLERS:
        raise invalid("sampler", sampler, expected)
    if name in MULTI_OBJECTIVE and len(directions) < 2:
        raise invalid("sampler", sampler, "a single-objective sampler ('tpe', 'cmaes', 'gp', 'qmc' or "
                      "'random'): NSGA-II needs two or more objectives, e.g. "
                      "objective=['val_accuracy', 'num_params']")
    if name in SINGLE_OBJECTIVE and len(directions) > 1:
        raise invalid("sampler", sampler, "'tpe', 'nsga2', 'gp', 'qmc' or 'random' with several objectives "
                      "(CMA-ES optimizes one objective)")
    if name == "cmaes" and importlib.util.find_spec("cmaes") is None:
        raise ImportError("ktplus: sampler='cmaes' needs the `cmaes` package: pip install cmaes")
    if name == "gp" and importlib.util.find_spec("torch") is None:
        raise ImportError("ktplus: sampler='gp' (Optuna's GPSampler) needs PyTorch: "
                          "pip install 'ktplus[gp]' (or pip install torch)")


def make_sampler(sampler: Any, seed: int | None, shared: bool = False) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for ``sampler`` (checked by `check_sampler`).

    Names build Optuna's sampler seeded with ``seed``: "tpe" is the
    multivariate TPE with grouped (conditional) search spaces, also for
    several objectives; "qmc" a scrambled Sobol sequence; "nsga2" NSGA-II.
    With ``shared`` (a study many workers share through a storage), TPE
    runs with ``constant_liar=True``, as Optuna recommends for parallel
    workers: the other workers' running trials count as bad results, so
    workers asking at once do not all sample next to the same point.
    A `BaseSampler` instance is used as it is.
    """
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    name = sampler.lower()
    seed = generator_seed(seed)
    with quiet_optuna():
        if name == "tpe":
            if shared:
                return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False,
                                              warn_asynchronous_seeding=False)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)
