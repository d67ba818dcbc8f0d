"""Architecture search: the family itself is a hyperparameter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras_tuner

from ktplus.hypermodels._base import BaseHyperModel, Shared
from ktplus.hypermodels._conv import ConvHyperModel
from ktplus.hypermodels._dense import DenseHyperModel
from ktplus.hypermodels._knobs import invalid
from ktplus.hypermodels._prep import IMAGE_FAMILIES, IMAGE_KNOBS, PREP_KNOBS
from ktplus.hypermodels._residual import ResidualHyperModel

FAMILIES: dict[str, type[BaseHyperModel]] = {
    "dense": DenseHyperModel,
    "conv": ConvHyperModel,
    "residual": ResidualHyperModel,
}


def families_for_shape(input_shape: Sequence[int]) -> list[str]:
    """The family names whose models accept inputs of this rank."""
    rank = len(input_shape)
    return [n for n, cls in FAMILIES.items() if cls.ranks is None or rank in cls.ranks]


class AutoHyperModel(BaseHyperModel):
    """One search over several architecture families.

    The hyperparameter ``family`` chooses dense, conv or residual; each
    family's own hyperparameters live in a name scope (``conv/filters``) and
    a conditional scope, so they are active only in trials of that family.
    The shared options (dropout, regularizer, optimizer, learning rate, ...)
    are shared by all families. The data-preparation knobs
    (``normalization``, ``augment_*``, ``class_weight``) are scoped per
    family like the family options (``conv/augment_rotation``): each family
    named in ``families`` gets them (image augmentation only the conv and
    residual families; the dense family flattens images), a hypermodel
    given in ``families`` keeps its own.

    Args:
        input_shape: Shape of one sample, without the batch dimension.
        num_classes: Number of classes (>= 2) for classification.
        families: None (every family the input's rank allows), or a list of
            family names ("dense", "conv", "residual") and/or ktplus
            hypermodels with the same ``input_shape`` whose family options
            (e.g. ``units`` or ``filters``) are to be used.
        batch_norm: Batch normalization in every family.
        **kwargs: The shared options of `ktplus.BaseHyperModel`.

    Example:

    >>> import keras_tuner
    >>> import ktplus
    >>> hm = ktplus.AutoHyperModel(input_shape=(8, 8, 1), num_classes=10)
    >>> hp = keras_tuner.HyperParameters()
    >>> hm.build(hp).output_shape
    (None, 10)
    >>> hp.get("family")
    'dense'
    """

    family = "auto"
    ranks = None

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int | None = None,
        *,
        families: Sequence[str | BaseHyperModel] | None = None,
        batch_norm: Any = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_shape, num_classes, batch_norm=batch_norm, **kwargs)
        allowed = families_for_shape(self.input_shape)
        expected = (
            f"None or a non-empty list of distinct families allowed for "
            f"input_shape={self.input_shape}: {allowed} (names or ktplus hypermodels)"
        )
        specs = list(allowed) if families is None else families
        if isinstance(specs, (str, BaseHyperModel)) or not specs:
            raise invalid("families", families, expected)
        self.members: dict[str, BaseHyperModel] = {}
        prep_args = {n: self._shared_config[n] for n in PREP_KNOBS}
        for spec in specs:
            if isinstance(spec, str) and spec in allowed:
                member_prep = {n: v for n, v in prep_args.items()
                               if spec in IMAGE_FAMILIES or n not in IMAGE_KNOBS}
                member = FAMILIES[spec](self.input_shape, self.num_classes, task=self.task,
                                        num_outputs=self.num_outputs, **member_prep)
            elif (isinstance(spec, BaseHyperModel) and spec.family in allowed
                  and tuple(spec.input_shape) == self.input_shape):
                member = spec
            else:
                raise invalid("families", families, expected)
            if member.family in self.members:
                raise invalid("families", families, expected)
            self.members[member.family] = member
        image_knobs = [n for n in IMAGE_KNOBS if self.prep.can_be_on(n)]
        if image_knobs and not any(f in IMAGE_FAMILIES for f in self.members):
            raise invalid(image_knobs[0], prep_args[image_knobs[0]],
                          "None or 0 when families has no conv or residual family: image augmentation is "
                          "for those (the dense family flattens its input)")
        self._family_config = {
            "families": None if families is None else [
                s if isinstance(s, str)
                else {"class_name": type(s).__name__, "config": s.get_config()}
                for s in specs
            ],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BaseHyperModel:
        config = dict(config)
        if config.get("families"):
            config["families"] = [
                FAMILIES_BY_CLASS[s["class_name"]].from_config(s["config"])
                if isinstance(s, dict) else s
                for s in config["families"]
            ]
        return super().from_config(config)

    def _declare(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        names = list(self.members)
        family = hp.Fixed("family", names[0]) if len(names) == 1 else hp.Choice("family", names)
        params, prep = {}, {}
        for name, member in self.members.items():
            with hp.conditional_scope("family", [name]), hp.name_scope(name):
                params[name] = member._declare(hp)
                prep[name] = member.prep.register(hp)
        return {"family": family, "params": params[family], "prep": prep[family]}

    def _declare_prep(self, hp: keras_tuner.HyperParameters, params: dict[str, Any]) -> dict[str, Any]:
        return dict(params["prep"])

    def prep_values(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        family = hp.values.get("family", next(iter(self.members)))
        member = self.members.get(family)
        if member is None:
            return {}
        scoped = {n: f"{family}/{n}" for n in member.prep.knobs}
        return {n: hp.values[s] for n, s in scoped.items() if s in hp.values}

    def prep_specs(self) -> list[Any]:
        return [m.prep for m in self.members.values()]

    def _body(self, inputs: Any, params: dict[str, Any], shared: Shared) -> Any:
        return self.members[params["family"]]._body(inputs, params["params"], shared)


FAMILIES_BY_CLASS = {cls.__name__: cls for cls in FAMILIES.values()}
