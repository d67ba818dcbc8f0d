"""The fast training path: six parts, each its own switch, each invisible
to the user's code or stepping aside ("pack", fused trials, lives in
`ktplus.tuners._pack`; the others here).

* "data": numpy ``x``/``y`` (and numpy validation data and sample weights)
  become, once per ``search()`` call, a prefetched ``tf.data`` pipeline
  reused by every trial (re-batched when the batch size changes), of the
  dtypes Keras' own array adapter gives the arrays (floats that are not
  ``keras.backend.floatx()`` cast to it). Steps aside when the hypermodel
  has its own ``fit`` (that fit receives exactly what keras-tuner would
  give it), for other data types, for ``validation_split``/
  ``steps_per_epoch``, and without TensorFlow installed (on every backend
  otherwise: Keras takes a ``tf.data`` dataset on each). When the trial's
  ``steps_per_execution`` divides an epoch's steps, shuffled training data
  is one endless pipeline (a new permutation each epoch) with
  ``steps_per_epoch`` set, so Keras makes its iterator once per fit
  (a model compiled with its own non-dividing value gets the largest
  common divisor for the trial's fit). On TensorFlow, the trial's model
  gets its optimizer's and compiled metrics' and loss's variables before
  its fit (`build_for_fit`, what Keras itself does under a distribution
  strategy): Keras otherwise creates them inside the first trace of its
  train step, and TensorFlow then traces that step a second time (plus an
  initializer function), the costliest trace of a trial.
* "steps_per_execution": raised to the steps of an epoch (at most 64) for
  the trial's own fit, when the data part applied, the backend runs it
  (not PyTorch's, which refuses a value above 1) and no callback given to
  ``search()`` has a batch-level hook as Keras tells it (an overriding
  method or a function set on the instance, as ``LambdaCallback`` does; a
  ``TensorBoard`` only when it writes per batch or profiles); models
  handed back later (``get_best_models``, ``load_model``) keep the value
  they were compiled with.
* "checkpoint": the best epoch's weights are kept in memory and written
  once, when training ends, instead of at every improving epoch.
* "gc_freeze": the objects alive when a search starts are moved out of the
  garbage collector's scans (``gc.freeze``) for the search, so the
  collections keras-tuner runs before every build cost milliseconds.
* "release_gradients": after each trial, the entries Keras' own training
  code added to TensorFlow's process-wide gradient registry are removed
  (TensorFlow backend only, a no-op on the others; never a user
  function's, see `ktplus.training._memory`).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import keras_tuner

from ktplus._compat import backend_runs_steps_per_execution
from ktplus.hypermodels._base import BaseHyperModel
from ktplus.training._data import (
    KERAS_DEFAULT_BATCH_SIZE,
    MAX_STEPS_PER_EXECUTION,
    DataCache,
    uses_batch_hooks,
)
from ktplus.training._memory import gradient_registry_snapshot, release_trial_gradients

#: HyperModel.fit implementations that pass the data on to ``model.fit``
#: unchanged (besides a tuned batch size, which the data part applies).
_KNOWN_FITS = (keras_tuner.HyperModel.fit, BaseHyperModel.fit)


def has_known_fit(hypermodel: Any) -> bool:
    """Whether ``hypermodel.fit`` is keras-tuner's or ktplus's own (a user's
    fit may use the arrays, a batch size or callbacks of its own)."""
    return getattr(type(hypermodel), "fit", None) in _KNOWN_FITS


def tuned_batch_size(hypermodel: Any, hp: Any, kwargs: dict) -> int | None:
    """The batch size a trial trains with: the hypermodel's tuned knob, else
    ``search(batch_size=...)``."""
    if (isinstance(hypermodel, BaseHyperModel) and hypermodel.knobs.get("batch_size") is not None
            and "batch_size" in hp.values):
        return int(hp.values["batch_size"])
    value = kwargs.get("batch_size")
    return int(value) if value else None


def build_for_fit(model: Any, element_spec: Any) -> bool:
    """Creates, before ``fit``, the variables Keras' TensorFlow trainer
    would create inside the first trace of its train step (the optimizer's
    slots, the compiled metrics' and loss's state), as Keras' own
    ``_symbolic_build`` does under a distribution strategy: the step is
    then traced once instead of twice (a ``tf.function`` that creates
    variables is traced again without them, after tracing their
    initializers). The variables are the same, with the same (zero) values,
    so training is too.

    Only for a compiled model of built layers whose ``train_step`` and
    ``test_step`` are Keras' own, on the TensorFlow backend without a
    distribution strategy; anything else is left to Keras. Returns whether
    it built.

    Args:
        model: The trial's freshly built model.
        element_spec: The ``element_spec`` of the training dataset
            (``(x, y[, sample_weight])``).
    """
    if keras.backend.backend() != "tensorflow" or not getattr(model, "compiled", False):
        return False
    if (getattr(model, "optimizer", None) is None
            or getattr(model, "_distribute_strategy", None) is not None  # Keras builds it itself
            or type(model).train_step is not keras.Model.train_step
            or type(model).test_step is not keras.Model.test_step):
        return False
    try:
        if not all(layer.built for layer in model._flatten_layers()):
            return False
        batch = keras.tree.map_structure(
            lambda s: keras.KerasTensor(tuple(s.shape.as_list()), s.dtype.name), element_spec)
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        # What Keras' train step builds on its first call, from the same structures: the compiled
        # metrics and loss (CompileMetrics.update_state, CompileLoss.__call__), then the optimizer.
        unbuilt = [c for c in (model._compile_metrics, model._compile_loss) if c is not None and not c.built]
        if unbuilt:
            # The outputs' structure as the step's ``model(x)`` gives it (a functional model walks its
            # graph of shapes: no tracing).
            training = {"training": False} if getattr(model, "_call_has_training_arg", False) else {}
            y_pred = model.compute_output_spec(x, **training)
            for container in unbuilt:
                container.build(y, y_pred)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    except Exception:  # left to Keras, which builds what is missing in the trace as usual
        return False
    return True


class FastPath:
    """The fast path of one tuner.

    Args:
        parts: The parts switched on (see the module docstring).
    """

    def __init__(self, parts: frozenset[str]) -> None:
        self.parts = parts
        self._data: DataCache | None = None
        self._caches: dict[Any, DataCache] = {}
        self._steps_per_execution = 1
        self._endless_steps: int | None = None  # steps_per_epoch of an endless training pipeline
        self._element_spec: Any = None  # the training dataset's, during a converted fit

    @contextmanager
    def search(self) -> Iterator[None]:
        """One ``search()`` call: the data cache and the gc freeze live
        exactly as long, however the search ends."""
        freeze = "gc_freeze" in self.parts and not gc.get_freeze_count()
        if freeze:
            gc.collect()
            gc.freeze()
        self._data = DataCache() if "data" in self.parts else None
        self._caches = {}
        try:
            yield
        finally:
            for cache in (self._data, *self._caches.values()):
                if cache is not None:
                    cache.close()
            self._data = None
            self._caches = {}
            if freeze:
                gc.unfreeze()

    @contextmanager
    def fold(self, index: int) -> Iterator[None]:
        """One cross-validation fold: its data has a cache of its own, so
        each fold's arrays become tensors and pipelines once per search."""
        if self._data is None:
            yield
            return
        outer = self._data
        self._data = self._caches.setdefault(index, DataCache())
        try:
            yield
        finally:
            self._data = outer

    @contextmanager
    def trial(self) -> Iterator[None]:
        """One trial: releases Keras' gradient-registry entries afterwards
        (a no-op off the TensorFlow backend)."""
        release = "release_gradients" in self.parts
        before = gradient_registry_snapshot() if release else frozenset()
        try:
            yield
        finally:
            if release:
                release_trial_gradients(before)

    @contextmanager
    def fit(self, hypermodel: Any, hp: Any, args: tuple, kwargs: dict,
            user_callbacks: list[Any]) -> Iterator[tuple[tuple, dict]]:
        """One execution's fit: yields the ``(args, kwargs)`` to fit with."""
        self._steps_per_execution = 1
        try:
            if self._data is None or not has_known_fit(hypermodel) or not DataCache.applicable(args, kwargs):
                yield args, kwargs
                return
            batch_size = tuned_batch_size(hypermodel, hp, kwargs) or KERAS_DEFAULT_BATCH_SIZE
            steps = max(1, -(-DataCache.train_length(args, kwargs) // batch_size))
            if ("steps_per_execution" in self.parts and backend_runs_steps_per_execution()
                    and not any(uses_batch_hooks(c) for c in user_callbacks)):
                self._steps_per_execution = min(MAX_STEPS_PER_EXECUTION, steps)
            args, kwargs = self._data.convert(args, kwargs, batch_size, self._steps_per_execution)
            self._endless_steps = kwargs.get("steps_per_epoch")
            self._element_spec = args[0].element_spec
            yield args, kwargs
        finally:
            self._steps_per_execution = 1
            self._endless_steps = None
            self._element_spec = None

    def after_build(self, model: Any) -> Any:
        """Raises a freshly built model's ``steps_per_execution`` and builds
        its training state (`build_for_fit`) during the trial's own fit only
        (never for models built to be handed back)."""
        if self._element_spec is not None:
            build_for_fit(model, self._element_spec)
        own = getattr(model, "steps_per_execution", 1)
        if self._steps_per_execution > 1 and own == 1:
            model.steps_per_execution = self._steps_per_execution
        elif self._endless_steps and own > 1 and self._endless_steps % own:
            # A model compiled with its own steps_per_execution that does not divide the epoch's steps
            # would run into the next epoch of the endless pipeline: the largest divisor of both.
            model.steps_per_execution = math.gcd(int(own), int(self._endless_steps))
        return model

    @property
    def defer_checkpoint(self) -> bool:
        return "checkpoint" in self.parts
