"""Peak memory of the fast path's data cache, in extra copies of the data.

Each measurement runs in a fresh subprocess and reads its peak resident set
(VmHWM in /proc/self/status) at the end. The training array is ~200 MB of
float32 (``--rows`` x ``--features``), labels int64.

Pipelines (one epoch iterated, batch size 32; baseline: the array alone,
with TensorFlow, Keras and ktplus imported and one op run):

* ``new``: ktplus' DataCache (tensors once, batches gathered by shuffled
  indices);
* ``old``: the previous cache, ``from_tensor_slices((x, y)).cache()`` plus a
  full-size ``shuffle`` buffer.

Trials (``--trials``; baseline: the same run on 1% of the rows, scaled, so
the runtime, model and tuner overheads cancel out):

* ``fit``: a plain ``model.fit(x, y)`` (Keras' own numpy adapter);
* ``ktplus``: one ``ktplus.RandomSearch`` trial with the fast path on;
* ``keras-tuner``: one ``keras_tuner.RandomSearch`` trial, same model.

Extra copies = (peak - baseline) / size of the training array.

    python benchmarks/bench_data_memory.py [--rows 50000] [--features 1000] [--trials]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

MB = 1024 * 1024
PIPELINES = ("baseline", "new", "old")
TRIALS = ("fit", "ktplus", "keras-tuner")


def peak_rss() -> int:
    """The process' peak resident set size in bytes (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def make_data(rows: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, features), dtype=np.float32)  # no float64 intermediate
    y = (x[:, 0] > 0).astype("int64")
    return x, y


def build_model(hp: object, features: int) -> object:
    import keras

    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def child(mode: str, rows: int, features: int) -> dict:
    """One measurement, in this (fresh) process."""
    import tensorflow as tf

    from ktplus.training._data import DataCache  # every mode imports the same modules

    x, y = make_data(rows, features)
    xv, yv = x[:1000].copy(), y[:1000].copy()
    tf.reduce_sum(tf.constant([1.0]))  # the runtime's own allocations
    start = time.perf_counter()
    if mode == "new":
        cache = DataCache()
        (ds,), _ = cache.convert((x, y), {}, batch_size=32)
        for _ in ds:
            pass
        cache.close()
    elif mode == "old":
        base = tf.data.Dataset.from_tensor_slices((x, y)).cache()
        for _ in base.shuffle(len(x), reshuffle_each_iteration=True).batch(32).prefetch(tf.data.AUTOTUNE):
            pass
    elif mode == "fit":
        model = build_model(None, features)
        model.fit(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    elif mode in ("ktplus", "keras-tuner"):
        import keras_tuner

        import ktplus

        directory = tempfile.mkdtemp(prefix="ktplus-bench-")
        if mode == "ktplus":
            hm = ktplus.DenseHyperModel(input_shape=(features,), num_classes=2, layers=1, units=8)
            tuner: object = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1,
                                                directory=directory, project_name="p", tensorboard=False)
        else:
            tuner = keras_tuner.RandomSearch(lambda hp: build_model(hp, features), objective="val_accuracy",
                                             max_trials=1, directory=directory, project_name="p")
        tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)  # type: ignore[attr-defined]
    elif mode != "baseline":
        raise ValueError(f"unknown mode {mode!r}")
    return {"peak": peak_rss(), "seconds": time.perf_counter() - start, "size": x.nbytes}


def measure(mode: str, rows: int, features: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--rows", str(rows),
                          "--features", str(features)], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if out.returncode:
        raise RuntimeError(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=1000)
    parser.add_argument("--trials", action="store_true", help="also measure one trial of each tuner")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.rows, args.features)))
        return
    base = measure("baseline", args.rows, args.features)
    size = base["size"]
    print(f"training array: {size / MB:.0f} MB ({args.rows} x {args.features} float32)")
    print(f"{'mode':<12} {'peak MB':>8} {'extra MB':>9} {'extra copies':>13} {'seconds':>8}")
    print(f"{'baseline':<12} {base['peak'] / MB:8.0f} {'':>9} {'':>13} {base['seconds']:8.2f}")
    for mode in PIPELINES[1:]:
        r = measure(mode, args.rows, args.features)
        extra = r["peak"] - base["peak"]
        print(f"{mode:<12} {r['peak'] / MB:8.0f} {extra / MB:9.0f} {extra / size:13.2f} {r['seconds']:8.2f}")
    if not args.trials:
        return
    small_rows = max(1000, args.rows // 100)
    for mode in TRIALS:
        small = measure(mode, small_rows, args.features)
        r = measure(mode, args.rows, args.features)
        # the small run's peak, plus the array's own growth: what this mode costs without data copies
        baseline = small["peak"] + (r["size"] - small["size"])
        extra = r["peak"] - baseline
        print(f"{mode:<12} {r['peak'] / MB:8.0f} {extra / MB:9.0f} {extra / size:13.2f} {r['seconds']:8.2f}"
              f"   (1% rows: peak {small['peak'] / MB:.0f} MB)")


if __name__ == "__main__":
    main()
