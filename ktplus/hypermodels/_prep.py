"""Data preparation knobs: normalization, image augmentation, Gaussian noise
and class weights, tunable like every other knob and built into the model.

The layers sit between the model's input and the family's body, in this
order::

    inputs -> standardize | minmax            (keras.layers.Normalization)
           -> augment_flip                    (RandomFlip)
           -> augment_rotation                (RandomRotation)
           -> augment_zoom                    (RandomZoom)
           -> augment_translation             (RandomTranslation)
           -> augment_crop, augment_crop_resize  (RandomCrop, Resizing back)
           -> augment_contrast                (RandomContrast)
           -> augment_noise                   (GaussianNoise)
           -> the family's layers

Every augmentation layer acts only in training (Keras' preprocessing
layers); a knob at its off value (None or 0) adds no layer. The
normalization layer's statistics come from the training data
(`ktplus.hypermodels._statistics`) and are its non-trainable weights, so
checkpoints, ``get_best_models`` and exported models carry them: a model
takes raw inputs. ``class_weight`` acts in ``HyperModel.fit``.

A knob is registered as a hyperparameter only when it can be on (a knob
left off adds nothing to the search space, so searches that do not use
data preparation keep their spaces and saved trials).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import keras_tuner
import numpy as np

from ktplus.hypermodels import _knobs
from ktplus.hypermodels._knobs import NONE, Knob, invalid
from ktplus.hypermodels._statistics import DataStatistics

NORMALIZATIONS = ("standardize", "minmax")
FLIPS = ("horizontal", "vertical", "horizontal_and_vertical")
#: The knobs taking a factor in [0, 1) (0: no layer).
FACTOR_KNOBS = ("augment_rotation", "augment_zoom", "augment_translation", "augment_contrast",
                "augment_crop")
#: Knobs that need 2D images (inputs of rank 3).
IMAGE_KNOBS = ("augment_flip", *FACTOR_KNOBS)
#: Every data-preparation knob, in registration order.
PREP_KNOBS = ("normalization", *IMAGE_KNOBS, "augment_noise", "class_weight")
#: The families whose bodies take images as images (dense flattens them).
IMAGE_FAMILIES = ("conv", "residual", "auto")
#: Names of the layers this module adds, in model order.
PREP_LAYERS = ("standardize", "minmax", "augment_flip", "augment_rotation", "augment_zoom",
               "augment_translation", "augment_crop", "augment_crop_resize", "augment_contrast",
               "augment_noise")
AUGMENTATION_LAYERS = PREP_LAYERS[2:]


def _is_off(value: Any) -> bool:
    return value is None or value == NONE or value == 0 or value == 0.0


@dataclass(frozen=True)
class PrepSpec:
    """The validated data-preparation knobs of one hypermodel: only those
    that can be on (see the module docstring)."""

    knobs: dict[str, Knob]

    def can_be_on(self, name: str) -> bool:
        return name in self.knobs

    @property
    def augments_images(self) -> bool:
        return any(n in self.knobs for n in IMAGE_KNOBS)

    @property
    def needs_statistics(self) -> bool:
        """Whether a build or fit needs the training data's statistics."""
        return any(n != "augment_noise" for n in self.knobs)

    def register(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """Registers the knobs that can be on; returns their values."""
        return {name: self.knobs[name].register(hp) for name in PREP_KNOBS if name in self.knobs}


def _off_as_zero(value: Any) -> Any:
    """None (off, as ``augment_flip=None``) as 0 for a numeric knob, also
    inside a list of choices."""
    if value is None:
        return 0.0
    if isinstance(value, list):
        return [0.0 if v is None else v for v in value]
    return value


def _factor(name: str, value: Any) -> Knob:
    return _knobs.float_knob(name, _off_as_zero(value), low=0.0, high=1.0)


def parse_prep(family: str, input_shape: Sequence[int], task: str, values: dict[str, Any]) -> PrepSpec:
    """Validates the data-preparation arguments of a hypermodel.

    Raises:
        ValueError: naming the argument, the value and what is allowed, for
            a bad value or a knob that does not apply (image augmentation
            on a table, a sequence or the dense family; class weights for
            regression).
    """
    knobs: dict[str, Knob] = {}
    parsed: dict[str, Knob] = {
        "normalization": _knobs.choice_knob("normalization", values["normalization"], NORMALIZATIONS,
                                            allow_none=True),
        "augment_flip": _knobs.choice_knob("augment_flip", values["augment_flip"], FLIPS, allow_none=True),
        **{n: _factor(n, values[n]) for n in FACTOR_KNOBS},
        "augment_noise": _knobs.float_knob("augment_noise", _off_as_zero(values["augment_noise"]), low=0.0,
                                           high=None),
    }
    cw = values["class_weight"]
    if isinstance(cw, dict):
        raise invalid("class_weight", cw, "None, 'balanced' or a list such as [None, 'balanced'] (a dict of "
                      "weights per class goes to search(class_weight=...) instead)")
    parsed["class_weight"] = _knobs.choice_knob("class_weight", cw, ("balanced",), allow_none=True)
    for name, knob in parsed.items():
        if all(_is_off(v) for v in knob.candidates):
            continue
        if name in IMAGE_KNOBS:
            if family not in IMAGE_FAMILIES:
                raise invalid(name, values[name], f"None or 0 for the {family} family, which flattens its "
                              "input: image augmentation is for the conv, residual and auto families")
            if len(input_shape) != 3:
                raise invalid(name, values[name], f"None or 0 for input_shape={tuple(input_shape)}: image "
                              "augmentation needs 2D images, an input_shape (height, width, channels)")
        if name == "class_weight" and task != "classification":
            raise invalid(name, values[name], "None for task='regression': class weights are for "
                          "classification")
        knobs[name] = knob
    return PrepSpec(knobs)


def _crop_side(side: int, fraction: float) -> int:
    """The side of a random crop removing ``fraction`` of ``side``: at
    least one pixel fewer, at least one pixel left."""
    return max(1, min(side - 1, int(round(side * (1.0 - fraction))))) if side > 1 else side


def _contrast_range(stats: DataStatistics | None, mode: str) -> tuple[float, float]:
    """The value range RandomContrast clips to: the training data's, after
    the model's normalization."""
    if stats is None:
        return (-math.inf, math.inf)
    if mode == "minmax":
        return (0.0, 1.0)
    lo, hi = stats.minimum, stats.maximum
    if mode == "standardize":
        mean, var = stats.normalization(mode)
        lo, hi = (lo - mean) / np.sqrt(var), (hi - mean) / np.sqrt(var)
    return (float(np.min(lo)), float(np.max(hi)))


def apply(inputs: Any, values: dict[str, Any], stats: DataStatistics | None) -> Any:
    """The data-preparation layers for ``values`` (one trial's), applied to
    ``inputs``; the normalization takes ``stats`` when they are known (else
    `load_statistics` sets them before training)."""
    x = inputs
    mode = values.get("normalization", NONE)
    if mode in NORMALIZATIONS:
        layer = keras.layers.Normalization(axis=-1, name=mode)
        x = layer(x)
        if stats is not None:
            _set_normalization(layer, stats, mode)
    flip = values.get("augment_flip", NONE)
    if flip in FLIPS:
        x = keras.layers.RandomFlip(flip, name="augment_flip")(x)
    if values.get("augment_rotation"):
        x = keras.layers.RandomRotation(values["augment_rotation"], name="augment_rotation")(x)
    if values.get("augment_zoom"):
        x = keras.layers.RandomZoom(values["augment_zoom"], name="augment_zoom")(x)
    if values.get("augment_translation"):
        f = values["augment_translation"]
        x = keras.layers.RandomTranslation(f, f, name="augment_translation")(x)
    if values.get("augment_crop"):
        h, w = int(inputs.shape[1]), int(inputs.shape[2])
        f = values["augment_crop"]
        x = keras.layers.RandomCrop(_crop_side(h, f), _crop_side(w, f), name="augment_crop")(x)
        x = keras.layers.Resizing(h, w, name="augment_crop_resize")(x)
    if values.get("augment_contrast"):
        x = keras.layers.RandomContrast(values["augment_contrast"], value_range=_contrast_range(stats, mode),
                                        name="augment_contrast")(x)
    if values.get("augment_noise"):
        x = keras.layers.GaussianNoise(values["augment_noise"], name="augment_noise")(x)
    return x


def _set_normalization(layer: keras.layers.Normalization, stats: DataStatistics, mode: str) -> None:
    mean, variance = stats.normalization(mode)
    layer.adapt_mean.assign(np.asarray(mean, dtype="float32").reshape(layer.adapt_mean.shape))
    layer.adapt_variance.assign(np.asarray(variance, dtype="float32").reshape(layer.adapt_variance.shape))
    layer.finalize_state()  # Keras reads the variables into its tensors here


def _layer(model: keras.Model, name: str) -> Any:
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def load_statistics(model: keras.Model, stats: DataStatistics) -> None:
    """Sets the training data's statistics into ``model``'s normalization
    layer and contrast range (before training: Keras traces them then)."""
    mode = NONE
    for name in NORMALIZATIONS:
        layer = _layer(model, name)
        if isinstance(layer, keras.layers.Normalization):
            _set_normalization(layer, stats, name)
            mode = name
    contrast = _layer(model, "augment_contrast")
    if isinstance(contrast, keras.layers.RandomContrast):
        contrast.value_range = _contrast_range(stats, mode)


def prep_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The data-preparation layers of ``model``, in model order."""
    return [layer for layer in model.layers if layer.name in PREP_LAYERS]


def preview(model: keras.Model, x: np.ndarray, training: bool) -> np.ndarray:
    """``x`` as the model's first layer after data preparation sees it, in
    training (augmented) or inference mode."""
    out: Any = x
    for layer in prep_layers(model):
        out = layer(out, training=training)
    return np.asarray(keras.ops.convert_to_numpy(out))
