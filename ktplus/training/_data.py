"""The fast training path's data: numpy inputs become, once per search,
tensors that every trial's ``tf.data`` pipeline batches from, of the
dtypes Keras' own array adapter would give them (floats that are not
``keras.backend.floatx()`` cast to it, in the one copy made), and
``steps_per_execution`` is raised when the callbacks in use allow it.

Memory: each array is copied once, into a 64-byte aligned numpy buffer
that TensorFlow then uses in place (DLPack): exactly one extra copy of the
data, at rest and at peak. (``tf.convert_to_tensor`` of a numpy array
briefly holds two copies, TensorFlow 2.21 on CPU, measured; it is the
fallback for dtypes DLPack does not carry.) Batches are gathered from those
tensors by shuffled *indices*: a permutation of ``n`` int64 per epoch,
never a cache or a shuffle buffer of the data itself (the former
``from_tensor_slices(...).cache()`` plus ``shuffle(n)`` peaked at two extra
copies and held up to three). Pipelines per ``(batch_size, shuffle)`` are
then cheap to build. benchmarks/bench_data_memory.py measures all this.

Time: Keras creates a new iterator of each dataset at every epoch's start
and another at its end, and every ``tf.data`` function (``map``,
``flat_map``) is instantiated again in each iterator (milliseconds each,
measured 4-9 ms in a search: tens of milliseconds per epoch, the
per-trial regression of ktplus issue 22). So validation data and
unshuffled training data are batched straight from the tensors
(``from_tensor_slices(...).batch(...)``: no function, no copy), and a
shuffled training pipeline is *endless* where it can be: one permutation
per epoch, drawn from a seed stream, batches gathered by index, and
``fit`` told ``steps_per_epoch`` so Keras keeps one iterator for the whole
fit (its epochs are still exactly one permutation each: used only when
``steps_per_execution`` divides the steps of an epoch).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import keras
import numpy as np

from ktplus._compat import has_batch_hooks, keras_array_dtype

KERAS_DEFAULT_BATCH_SIZE = 32
#: Validation batches are at least this large: evaluation has no gradient
#: to vary with the batch size, only a per-step overhead.
MIN_VALIDATION_BATCH_SIZE = 256
#: Upper bound of steps_per_execution: logs are still per epoch, so the only
#: cost is coarser batch-level callbacks, which we refuse anyway.
MAX_STEPS_PER_EXECUTION = 64

def _is_numpy(x: Any) -> bool:
    return isinstance(x, np.ndarray)


def _has_samples(x: Any) -> bool:
    return x.ndim > 0 and x.size > 0 and not x.dtype.hasobject  # object arrays: not for TensorFlow


def uses_batch_hooks(callback: Any) -> bool:
    """Whether a callback acts at batch level, as Keras' ``CallbackList``
    tells it (`ktplus._compat.has_batch_hooks`: an overriding method or a
    function set on the instance, as ``LambdaCallback`` does), for every
    batch hook of `keras.callbacks.Callback`. Keras' ``TensorBoard`` counts
    only when it writes per batch or profiles, its ``ProgbarLogger`` never
    (both define batch hooks that then only update a display)."""
    if isinstance(callback, keras.callbacks.TensorBoard):
        return callback.update_freq != "epoch" or bool(getattr(callback, "_profile_batch", 0))
    if isinstance(callback, keras.callbacks.ProgbarLogger):
        return False
    return has_batch_hooks(callback)


#: TensorFlow's CPU kernels require tensor buffers aligned to this (Eigen's
#: EIGEN_MAX_ALIGN_BYTES); a DLPack tensor on a less aligned buffer aborts.
_ALIGNMENT = 64


def _to_tensor(array: np.ndarray) -> Any:
    """One copy of ``array`` as a CPU tensor (never sharing the caller's
    buffer, so later writes to the array cannot reach a running trial), of
    the dtype Keras' own array adapter would give it (floats cast to
    ``keras.backend.floatx()``, see `ktplus._compat.keras_array_dtype`), in
    the machine's byte order."""
    import tensorflow as tf

    dtype = keras_array_dtype(array.dtype) if array.dtype.kind in "biufc" else None
    if dtype is not None:
        dtype = dtype.newbyteorder("=")
        buffer = np.empty(array.size * dtype.itemsize + _ALIGNMENT, np.uint8)
        start = -buffer.ctypes.data % _ALIGNMENT
        copy = buffer[start:start + array.size * dtype.itemsize].view(dtype).reshape(array.shape)
        np.copyto(copy, array, casting="unsafe")  # the cast Keras' adapter makes (astype), in the one copy
        try:
            return tf.experimental.dlpack.from_dlpack(copy.__dlpack__())  # the tensor now owns `copy`
        except Exception:  # a dtype TensorFlow's DLPack importer does not take
            if copy.dtype != array.dtype:
                array = copy  # cast: TensorFlow converts the cast copy
            del copy, buffer
    with tf.device("/CPU:0"):  # strings and the like, converted by TensorFlow
        return tf.convert_to_tensor(array)


def _steps(n: int, batch_size: int) -> int:
    """Batches in an epoch of ``n`` samples, the last one partial."""
    return -(-n // batch_size)


def _batched_slices(tensors: tuple, batch_size: int) -> Any:
    """Batches of ``tensors`` in order (the last one partial), prefetched:
    no ``tf.data`` function to instantiate at each iteration, and no copy
    of the tensors (the dataset holds them)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False  # as in _gathered
    return (tf.data.Dataset.from_tensor_slices(tensors).batch(batch_size)
            .prefetch(tf.data.AUTOTUNE).with_options(options))


def _batched_indices(n: int, batch_size: int, shuffle: bool, endless: bool = False) -> Any:
    """A dataset of int64 index vectors covering ``range(n)`` once per
    iteration, in batches of ``batch_size`` (the last one partial, as Keras
    keeps it), in a new random order at every iteration when ``shuffle``.
    ``endless`` (with ``shuffle``): one iteration that never ends, each
    ``ceil(n / batch_size)`` batches a new permutation (an epoch)."""
    import tensorflow as tf

    full = n // batch_size

    @tf.autograph.experimental.do_not_convert  # plain tensor code: no source parsing
    def split(indices: Any) -> Any:
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(indices[:full * batch_size], [full, batch_size]))
        if n % batch_size:
            batches = batches.concatenate(tf.data.Dataset.from_tensors(indices[full * batch_size:]))
        return batches

    if not shuffle:
        return split(tf.range(n, dtype=tf.int64))

    @tf.autograph.experimental.do_not_convert  # plain tensor code: no source parsing
    def permutation(seed: Any) -> Any:
        # Stateless, seeded from a stream re-drawn at every iteration (epoch):
        # a stateful tf.random.shuffle here would repeat its permutation every
        # epoch once a global seed is set.
        return tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([seed, tf.constant(0, tf.int64)]))

    seeds = tf.data.Dataset.random(rerandomize_each_iteration=True)
    return (seeds if endless else seeds.take(1)).map(permutation).flat_map(split)


def _gathered(indices: Any, tensors: tuple, steps: int | None) -> Any:
    """Batches of ``tensors`` (a tuple, as ``fit`` unpacks it) at the index
    vectors of ``indices`` (``steps`` of them; None: endless), prefetched."""
    import tensorflow as tf

    @tf.autograph.experimental.do_not_convert  # plain tensor code: no source parsing
    def gather(i: Any) -> tuple:
        return tuple(tf.gather(t, i, axis=0) for t in tensors)

    options = tf.data.Options()
    # Keras' own array adapter does the same: the static rewrites would
    # serialize the pipeline graph, the data's tensor included, for nothing.
    options.experimental_optimization.apply_default_optimizations = False
    batches = indices.map(gather).prefetch(tf.data.AUTOTUNE).with_options(options)
    if steps is None:
        return batches
    # flat_map hides the length: without it Keras learns the epoch's steps
    # only by running out of data (a warning, no progress-bar total).
    return batches.apply(tf.data.experimental.assert_cardinality(steps))


class DataCache:
    """The data of one ``search()`` as tensors, batched on demand.

    Only plain numpy ``x``/``y`` (and ``validation_data`` tuples of numpy
    arrays, and ``sample_weight``) are converted; anything else is passed
    to ``fit`` untouched (see `applicable`). Each array is converted once;
    ``convert`` then returns ``tf.data`` pipelines that gather batches by
    index, one pipeline per ``(batch_size, shuffle)``.

    The cache holds the arrays it converted (their identity is its key: the
    same objects are converted once, other objects replace them) and lives
    for one search: the tuner creates it when a search starts and calls
    `close` when the search ends, however it ends.

    Example:

    >>> import numpy as np
    >>> x, y = np.zeros((100, 3), "float32"), np.zeros(100, "int64")
    >>> cache = DataCache()
    >>> DataCache.applicable((x, y), {})
    True
    >>> (ds,), kwargs = cache.convert((x, y), {"epochs": 2}, batch_size=32)
    >>> [len(batch[0]) for batch in ds], kwargs
    ([32, 32, 32, 4], {'epochs': 2, 'shuffle': False})
    >>> cache.steps_per_epoch(32)
    4
    >>> cache.close()
    """

    def __init__(self) -> None:
        self._sources: tuple = ()  # the arrays converted, held for their identity
        self._train: tuple = ()  # (x, y[, sample_weight]) as tensors
        self._val: tuple | None = None  # validation_data as tensors
        self._pipelines: dict[tuple[int, bool, int, bool], tuple[Any, Any]] = {}
        self.n_train = 0
        self.n_val = 0

    @staticmethod
    def applicable(args: tuple, kwargs: dict) -> bool:
        """Whether ``fit(*args, **kwargs)`` has data the cache converts:
        non-empty numpy ``x`` and ``y`` of one length, no
        ``validation_split`` or ``steps_per_epoch``, numpy sample weights
        and validation data (if any) of matching lengths, and TensorFlow
        installed. Anything else (including empty arrays, which the tuner's
        input validation reports) goes to ``fit`` untouched."""
        if importlib.util.find_spec("tensorflow") is None:
            return False  # tf.data needs TensorFlow (other backends run without it)
        if len(args) > 2:
            return False
        x = args[0] if args else kwargs.get("x")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        if kwargs.get("validation_split") or kwargs.get("steps_per_epoch"):
            return False
        train = [x, y] + ([] if kwargs.get("sample_weight") is None else [kwargs["sample_weight"]])
        groups: list[list[Any]] = [list(train)]
        val = kwargs.get("validation_data")
        if val is not None:
            if not (isinstance(val, (tuple, list)) and len(val) in (2, 3)):
                return False
            groups.append([a for a in val if a is not None] if len(val) == 3 else list(val))
        for group in groups:
            if not all(_is_numpy(a) and _has_samples(a) for a in group):
                return False
            if len({len(a) for a in group}) != 1:
                return False
        return True

    def convert(self, args: tuple, kwargs: dict, batch_size: int | None,
                steps_per_execution: int | None = None) -> tuple[tuple, dict]:
        """Returns ``(args, kwargs)`` for ``fit`` with the data as datasets.

        Args:
            args: ``fit``'s positional arguments (``x``, ``y``).
            kwargs: ``fit``'s keyword arguments; the data-related ones
                (``x``, ``y``, ``sample_weight``, ``validation_data``,
                ``batch_size``, ``validation_batch_size``, ``shuffle``) are
                consumed, the others returned unchanged.
            batch_size: The trial's batch size; else ``kwargs["batch_size"]``,
                else Keras' default, 32.
            steps_per_execution: The model's ``steps_per_execution`` for this
                fit, when the caller knows it. If it divides the steps of an
                epoch, shuffled training data is one endless pipeline (a new
                permutation every epoch) and ``kwargs`` gets
                ``steps_per_epoch``, so Keras creates its iterator once per
                fit instead of twice per epoch. None: per-epoch pipelines.
        """
        kwargs = dict(kwargs)
        x = args[0] if args else kwargs.pop("x")
        y = args[1] if len(args) > 1 else kwargs.pop("y")
        kwargs.pop("x", None)
        kwargs.pop("y", None)
        sw = kwargs.pop("sample_weight", None)
        val = kwargs.pop("validation_data", None)
        shuffle = bool(kwargs.pop("shuffle", True))
        bs = int(batch_size or kwargs.get("batch_size") or KERAS_DEFAULT_BATCH_SIZE)
        kwargs.pop("batch_size", None)
        val_bs = int(kwargs.pop("validation_batch_size", None) or max(bs, MIN_VALIDATION_BATCH_SIZE))
        val_arrays = () if val is None else tuple(val)
        if len(val_arrays) == 3 and val_arrays[2] is None:
            val_arrays = val_arrays[:2]
        sources = (x, y, sw, *val_arrays)
        if len(sources) != len(self._sources) or any(a is not b for a, b in zip(sources, self._sources)):
            self.close()  # other data: drop the old tensors before converting the new ones
            self._train = tuple(_to_tensor(a) for a in (x, y, sw) if a is not None)
            self._val = tuple(_to_tensor(a) for a in val_arrays) if val_arrays else None
            self._sources = sources
            self.n_train = len(x)
            self.n_val = len(val_arrays[0]) if val_arrays else 0
        steps = _steps(self.n_train, bs)
        endless = bool(shuffle and steps_per_execution and steps % steps_per_execution == 0)
        key = (bs, shuffle, val_bs, endless)
        if key not in self._pipelines:
            if shuffle:
                train = _gathered(_batched_indices(self.n_train, bs, True, endless), self._train,
                                  None if endless else steps)
            else:
                train = _batched_slices(self._train, bs)
            valid = None if self._val is None else _batched_slices(self._val, val_bs)
            self._pipelines[key] = (train, valid)
        train, valid = self._pipelines[key]
        kwargs["shuffle"] = False  # the pipeline shuffles itself
        if endless:
            kwargs["steps_per_epoch"] = steps
        if valid is not None:
            kwargs["validation_data"] = valid
        return (train,), kwargs

    @staticmethod
    def train_length(args: tuple, kwargs: dict) -> int:
        """The number of training samples of ``fit(*args, **kwargs)`` (for
        data `applicable` says the cache converts)."""
        return len(args[0] if args else kwargs["x"])

    def steps_per_epoch(self, batch_size: int) -> int:
        """The number of batches in one epoch of the training data."""
        return max(1, _steps(self.n_train, batch_size))

    def close(self) -> None:
        """Drops every array, tensor and pipeline the cache holds."""
        self._sources, self._train, self._val = (), (), None
        self._pipelines = {}
        self.n_train = self.n_val = 0
