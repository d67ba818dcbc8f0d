"""The fast path's data cache: every sample once per epoch in Keras' batches,
a new order each epoch (none with shuffle=False), rows kept together,
re-batching, validation data and sample weights, what it steps aside for,
one extra copy of the data at most, and nothing kept after close()."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
import weakref

import keras
import numpy as np
import pytest

from ktplus.training._data import KERAS_DEFAULT_BATCH_SIZE, DataCache

N = 70  # two full batches of 32 and a partial one of 6


def make(n=N, features=3):
    """Rows whose first feature is their index, labels and weights derived from it."""
    x = np.zeros((n, features), "float32")
    x[:, 0] = np.arange(n)
    return x, np.arange(n, dtype="int64") % 5, np.arange(n, dtype="float32") / n


def epoch(ds):
    """One pass over a pipeline: the list of batches as tuples of numpy arrays."""
    return [tuple(np.asarray(t) for t in batch) for batch in ds]


def order(batches):
    return np.concatenate([b[0][:, 0] for b in batches]).astype(int)


def test_one_epoch_is_every_sample_once_in_keras_batches_with_the_last_one_partial():
    x, y, _ = make()
    (ds,), kwargs = DataCache().convert((x, y), {"epochs": 3}, batch_size=None)
    batches = epoch(ds)
    assert [len(b[0]) for b in batches] == [32, 32, 6]  # Keras' default size, partial batch kept
    assert sorted(order(batches)) == list(range(N))
    assert kwargs == {"epochs": 3, "shuffle": False}  # the pipeline shuffles itself


def test_every_epoch_has_a_new_order_and_shuffle_false_keeps_the_order():
    x, y, _ = make()
    cache = DataCache()
    (shuffled,), _ = cache.convert((x, y), {}, batch_size=32)
    orders = [tuple(order(epoch(shuffled))) for _ in range(3)]
    assert len(set(orders)) == 3 and tuple(range(N)) not in orders
    (ordered,), _ = cache.convert((x, y), {"shuffle": False}, batch_size=32)
    assert [list(order(epoch(ordered))) for _ in range(2)] == [list(range(N))] * 2


def test_the_order_follows_the_global_seed():
    x, y, _ = make()
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(7)
        (ds,), _ = DataCache().convert((x, y), {}, batch_size=32)
        runs.append([list(order(epoch(ds))) for _ in range(2)])
    assert runs[0] == runs[1]


def test_rows_of_x_y_and_sample_weight_stay_together():
    x, y, sw = make()
    (ds,), kwargs = DataCache().convert((), {"x": x, "y": y, "sample_weight": sw}, batch_size=16)
    assert "sample_weight" not in kwargs and "x" not in kwargs
    for bx, by, bsw in epoch(ds):
        index = bx[:, 0].astype(int)
        assert np.array_equal(by, y[index]) and np.allclose(bsw, sw[index])


def test_a_new_batch_size_rebatches_and_sets_the_steps():
    x, y, _ = make()
    cache = DataCache()
    (ds32,), _ = cache.convert((x, y), {}, batch_size=32)
    (ds8,), _ = cache.convert((x, y), {"batch_size": 64}, batch_size=8)  # the trial's size wins
    assert [len(b[0]) for b in epoch(ds8)] == [8] * 8 + [6]
    assert [len(b[0]) for b in epoch(ds32)] == [32, 32, 6]
    assert (cache.steps_per_epoch(8), cache.steps_per_epoch(32), cache.steps_per_epoch(70)) == (9, 3, 1)
    (ds64,), _ = cache.convert((x, y), {"batch_size": 64}, batch_size=None)
    assert [len(b[0]) for b in epoch(ds64)] == [64, 6]


def test_validation_data_is_batched_in_order_with_its_weights():
    x, y, sw = make()
    xv, yv, swv = make(300)
    cache = DataCache()
    _, kwargs = cache.convert((x, y), {"validation_data": (xv, yv)}, batch_size=32)
    batches = epoch(kwargs["validation_data"])
    assert [len(b[0]) for b in batches] == [256, 44] and list(order(batches)) == list(range(300))
    _, kwargs = cache.convert((x, y), {"validation_data": (xv, yv, swv), "validation_batch_size": 100},
                              batch_size=32)
    batches = epoch(kwargs["validation_data"])
    assert [len(b[0]) for b in batches] == [100] * 3
    assert np.allclose(np.concatenate([b[2] for b in batches]), swv)
    assert "validation_batch_size" not in kwargs


def test_a_model_trains_on_the_converted_data_as_on_the_arrays(digits):
    (x, y), (xv, yv) = digits
    cache = DataCache()
    args, kwargs = cache.convert((x, y), {"validation_data": (xv, yv), "epochs": 2, "verbose": 0},
                                 batch_size=KERAS_DEFAULT_BATCH_SIZE)
    assert int(args[0].cardinality()) == 43 and int(kwargs["validation_data"].cardinality()) == 2
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(*args, **kwargs).history
    assert not [w for w in caught if "ran out of data" in str(w.message)]  # Keras knows the epoch's length
    assert len(history["val_accuracy"]) == 2 and history["val_accuracy"][1] > 0.8


def test_the_same_arrays_are_converted_once_and_other_arrays_replace_them():
    x, y, _ = make()
    cache = DataCache()
    cache.convert((x, y), {}, batch_size=32)
    tensors = cache._train
    cache.convert((x, y), {}, batch_size=16)
    assert cache._train is tensors  # identity: no second conversion within a search
    x2 = x.copy()
    x2[:, 0] += 1000  # equal shape, other object: converted anew, never mistaken for x
    (ds,), _ = cache.convert((x2, y), {"shuffle": False}, batch_size=32)
    assert cache._train is not tensors and order(epoch(ds))[0] == 1000


def test_the_cache_copies_the_data_and_close_keeps_nothing():
    x, y, _ = make()
    cache = DataCache()
    (ds,), _ = cache.convert((x, y), {"shuffle": False}, batch_size=32)
    x[:, 0] = -1  # the caller's buffer is not shared with TensorFlow
    assert order(epoch(ds))[0] == 0
    array = weakref.ref(x)
    cache.close()
    del x
    assert array() is None
    assert cache._train == () and cache._val is None and cache._pipelines == {} and cache.n_train == 0


@pytest.mark.parametrize("dtype", ["float16", "float64", "bool", "uint8", "int32", ">f4", "<U3"])
def test_every_numpy_dtype_comes_back_as_keras_array_adapter_gives_it(dtype):
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    x = (np.arange(14).reshape(7, 2) % 3).astype(dtype)
    (ds,), _ = DataCache().convert((x, np.arange(7)), {"shuffle": False}, batch_size=4)
    got = np.concatenate([b[0] for b in epoch(ds)])
    if x.dtype.kind == "U":  # TensorFlow strings are bytes (Keras' adapter refuses them)
        got = np.char.decode(got.astype("S"))
    else:  # floats that are not floatx become floatx, the rest stays
        keras_batch = next(iter(ArrayDataAdapter(x, batch_size=4, shuffle=False).get_numpy_iterator()))[0]
        assert got.dtype == keras_batch.dtype.newbyteorder("=")
    assert np.array_equal(got, x)


@pytest.mark.parametrize("fit_kwargs", [
    {"validation_data": "empty"},
    {"x": "empty"},
    {"y": "short"},
    {"validation_data": "unequal"},
    {"sample_weight": "list"},
    {"validation_split": 0.2},
    {"steps_per_epoch": 2},
    {"x": "dataset"},
    {"x": "object"},
])
def test_it_steps_aside_for_what_it_does_not_convert(fit_kwargs):
    x, y, _ = make()
    kwargs = {"x": x, "y": y}
    name, value = next(iter(fit_kwargs.items()))
    kwargs[name] = {
        "empty": x[:0] if name == "x" else (x[:0], y[:0]),
        "short": y[:-1],
        "unequal": (x, y[:-1]),
        "list": [1.0] * N,
        "dataset": [x],
        "object": x.astype(object),
    }.get(value, value) if isinstance(value, str) else value
    if name == "x" and value == "empty":
        kwargs["y"] = y[:0]
    assert DataCache.applicable((), {"x": x, "y": y, "validation_data": (x, y)})
    assert not DataCache.applicable((), kwargs)


def test_empty_validation_data_does_not_crash_the_cache():
    x, y, _ = make()
    assert not DataCache.applicable((x, y), {"validation_data": (x[:0], y[:0])})


PEAK = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    from ktplus.training._data import DataCache

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key))

    x = np.random.default_rng(0).standard_normal((25_000, 1000), dtype=np.float32)  # 100 MB
    y = (x[:, 0] > 0).astype("int64")
    (warm,), _ = DataCache().convert((x[:100], y[:100]), {}, batch_size=32)
    list(warm)  # TensorFlow's own first-use allocations
    before = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, the peak resident set, to now
    cache = DataCache()
    (ds,), _ = cache.convert((x, y), {}, batch_size=32)
    for _ in ds:
        pass
    print((status("VmHWM:") - before) / x.nbytes)
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux' /proc peak RSS reset")
def test_converting_and_one_epoch_hold_at_most_one_extra_copy_of_the_data():
    out = subprocess.run([sys.executable, "-c", PEAK], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    copies = float(out.stdout.split()[-1])
    # one copy (the aligned tensor) plus prefetched batches: 1.07 measured;
    # the former from_tensor_slices().cache() + shuffle(n) pipeline: 2.0,
    # tf.convert_to_tensor instead of the aligned copy: 2.0
    assert copies < 1.4, copies


def test_an_endless_pipeline_is_a_new_permutation_every_epoch_when_the_executions_divide_an_epoch():
    # Keras makes two iterators per epoch of a finite dataset (each instantiating the pipeline's
    # functions again): with steps_per_epoch it keeps one for the whole fit (ktplus issue 22).
    x, y, _ = make()
    cache = DataCache()
    (ds,), kwargs = cache.convert((x, y), {}, batch_size=32, steps_per_execution=3)
    assert kwargs == {"shuffle": False, "steps_per_epoch": 3}
    it = iter(ds)
    epochs = [[tuple(np.asarray(t) for t in next(it)) for _ in range(3)] for _ in range(3)]
    assert all([len(b[0]) for b in e] == [32, 32, 6] for e in epochs)
    orders = [tuple(order(e)) for e in epochs]
    assert all(sorted(o) == list(range(N)) for o in orders) and len(set(orders)) == 3
    # two executions of 2 steps would run into the next epoch: a finite pipeline per epoch
    (finite,), kwargs = cache.convert((x, y), {}, batch_size=32, steps_per_execution=2)
    assert "steps_per_epoch" not in kwargs and len(epoch(finite)) == 3
    (ordered,), kwargs = cache.convert((x, y), {"shuffle": False}, batch_size=32, steps_per_execution=3)
    assert "steps_per_epoch" not in kwargs and list(order(epoch(ordered))) == list(range(N))
