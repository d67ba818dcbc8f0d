"""The tuner's side of data preparation: the training data's statistics
before the first trial (each fold's training part with ``cv``), the
checks they need, and the raw data each fit's statistics come from."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ktplus._errors import invalid
from ktplus.hypermodels._base import BaseHyperModel


def _can_balance(hypermodel: BaseHyperModel) -> bool:
    return any("balanced" in spec.knobs["class_weight"].candidates
               for spec in hypermodel.prep_specs() if "class_weight" in spec.knobs)


def adapt_hypermodel(hypermodel: Any, args: tuple, kwargs: dict, cv: Any) -> None:
    """Computes the statistics a ktplus hypermodel's data preparation needs,
    once per search, from the training data only (never ``validation_data``).

    Raises:
        ValueError: for ``class_weight``/``sample_weight`` given to
            ``search()`` while the hypermodel's ``class_weight`` can be
            "balanced", or training data the statistics cannot be computed
            from (a generator, an infinite dataset) — before any trial.
    """
    if not isinstance(hypermodel, BaseHyperModel) or not hypermodel.needs_statistics:
        return
    if _can_balance(hypermodel):
        for name in ("class_weight", "sample_weight"):
            if kwargs.get(name) is not None:
                given = kwargs[name] if isinstance(kwargs[name], dict) else f"<{type(kwargs[name]).__name__}>"
                raise invalid(name, given,
                              f"no {name} in search() when the hypermodel's class_weight can be 'balanced' "
                              "(it weights the classes itself, and Keras takes one kind of weights); drop "
                              f"search()'s {name} or the hypermodel's class_weight")
    try:
        if cv is None:
            x = args[0] if args else kwargs.get("x")
            y = args[1] if len(args) > 1 else kwargs.get("y")
            hypermodel.adapt(x, y, validation_split=kwargs.get("validation_split"))
        else:
            for (x_train, y_train), _ in cv.parts:
                hypermodel.adapt(x_train, y_train)
    except ValueError as e:
        raise ValueError(f"search(): {e}") from None


@contextlib.contextmanager
def training_data(hypermodel: Any, args: tuple, kwargs: dict) -> Iterator[None]:
    """One execution's fit: a ktplus hypermodel's statistics are those of
    the raw data ``args``/``kwargs`` (the fast path may hand its fit a
    ``tf.data`` pipeline of the same arrays)."""
    if isinstance(hypermodel, BaseHyperModel):
        with hypermodel.training_data(args, kwargs):
            yield
    else:
        yield
