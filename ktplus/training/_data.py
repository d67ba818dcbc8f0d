"""The fast training path: numpy inputs become, once per search, a cached
and prefetched ``tf.data`` pipeline reused by every trial (re-batched when
the batch size is tuned), and ``steps_per_execution`` is raised when the
callbacks in use allow it."""

from __future__ import annotations

import importlib.util
from typing import Any

import keras
import numpy as np

KERAS_DEFAULT_BATCH_SIZE = 32
#: Upper bound of steps_per_execution: logs are still per epoch, so the only
#: cost is coarser batch-level callbacks, which we refuse anyway.
MAX_STEPS_PER_EXECUTION = 64

_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end",
                "on_test_batch_begin", "on_test_batch_end")


def _is_numpy(x: Any) -> bool:
    return isinstance(x, np.ndarray)


def uses_batch_hooks(callback: Any) -> bool:
    """Whether a callback overrides a batch-level hook of keras' Callback."""
    if isinstance(callback, keras.callbacks.TensorBoard):
        return callback.update_freq != "epoch" or bool(getattr(callback, "_profile_batch", 0))
    if isinstance(callback, keras.callbacks.ProgbarLogger):
        return False
    cls = type(callback)
    return any(getattr(cls, h, None) is not getattr(keras.callbacks.Callback, h) for h in _BATCH_HOOKS
               if hasattr(keras.callbacks.Callback, h))


class DataCache:
    """tf.data pipelines for one search, built once and reused by trials.

    Only plain numpy ``x``/``y`` (and ``validation_data`` tuples of numpy
    arrays, and ``sample_weight``) are converted; anything else is passed
    to ``fit`` untouched.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._base: Any = None
        self._val_base: Any = None
        self._batched: dict[tuple, Any] = {}
        self._refs: tuple = ()
        self.n_train = 0

    @staticmethod
    def applicable(args: tuple, kwargs: dict) -> bool:
        if importlib.util.find_spec("tensorflow") is None:
            return False  # tf.data needs TensorFlow (other backends run without it)
        x = args[0] if args else kwargs.get("x")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        if not (_is_numpy(x) and _is_numpy(y)) or len(args) > 2:
            return False
        if kwargs.get("validation_split") or kwargs.get("steps_per_epoch"):
            return False
        sw = kwargs.get("sample_weight")
        if sw is not None and not _is_numpy(sw):
            return False
        val = kwargs.get("validation_data")
        if val is not None and not (isinstance(val, (tuple, list)) and len(val) in (2, 3)
                                    and all(_is_numpy(a) for a in val)):
            return False
        return True

    def convert(self, args: tuple, kwargs: dict, batch_size: int | None) -> tuple[tuple, dict]:
        """Returns ``(args, kwargs)`` for ``fit`` with the data as datasets."""
        import tensorflow as tf

        kwargs = dict(kwargs)
        x = args[0] if args else kwargs.pop("x")
        y = args[1] if len(args) > 1 else kwargs.pop("y")
        sw = kwargs.pop("sample_weight", None)
        val = kwargs.pop("validation_data", None)
        shuffle = kwargs.pop("shuffle", True)
        bs = int(batch_size or kwargs.get("batch_size") or KERAS_DEFAULT_BATCH_SIZE)
        kwargs.pop("batch_size", None)
        kwargs.pop("validation_batch_size", None)
        key = (id(x), id(y), id(sw), id(val) if val is None else tuple(id(a) for a in val))
        if key != self._key:
            # Keep the arrays referenced so their ids cannot be reused.
            self._key, self._batched, self._refs = key, {}, (x, y, sw, val)
            train = (x, y) if sw is None else (x, y, sw)
            self._base = tf.data.Dataset.from_tensor_slices(train).cache()
            self._val_base = (None if val is None
                              else tf.data.Dataset.from_tensor_slices(tuple(val)).cache())
            self.n_train = len(x)
        cache_key = (bs, bool(shuffle))
        if cache_key not in self._batched:
            ds = self._base
            if shuffle:
                ds = ds.shuffle(self.n_train, reshuffle_each_iteration=True)
            ds = ds.batch(bs).prefetch(tf.data.AUTOTUNE)
            vds = None
            if self._val_base is not None:
                vds = self._val_base.batch(max(bs, 256)).prefetch(tf.data.AUTOTUNE)
            self._batched[cache_key] = (ds, vds)
        ds, vds = self._batched[cache_key]
        kwargs["shuffle"] = False  # the pipeline shuffles itself
        if vds is not None:
            kwargs["validation_data"] = vds
        return (ds,), kwargs

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, -(-self.n_train // batch_size))
