"""What ktplus adds per trial beyond Keras' own fit, phase by phase.

A short ktplus.RandomSearch on digits (the data of bench_search.py; 6
trials, up to 10 epochs, early stopping, median pruning, TensorBoard on,
``pack=1``: one Keras fit per trial).
Each ktplus phase is wrapped here with time.perf_counter accounting
(monkeypatched in this script only, nothing in the package): the
pre-flight checks, the data cache, the trial's records, its callbacks
inside fit (curves, TensorBoard scalars, NaN guard, early stopping,
checkpoint), the TensorBoard session and Pareto marks, checkpoint
pruning, the gradient-registry release, the training state built before
fit ("build before fit": the optimizer's slots and the compiled metrics,
which Keras would otherwise create inside its first trace of the train
step, tracing it twice; counted as ktplus's although Keras' fit does that
work without it) and the importance ranking at the search's end. Keras' own
fit is the fit's wall time less the ktplus callbacks run inside it; model
builds are the hypermodel's (Keras) code.

It also counts the tf.data iterators made per epoch (ktplus issue 22: the
fast path's pipelines made Keras instantiate their functions twice per
epoch) and the tf.function traces per trial (a nested function counts
apart: Keras' fit with validation data is four, its train and test steps
each inside its multi-step function, when nothing makes it trace again).

    python benchmarks/bench_overhead.py [--trials 6] [--epochs 10] [--limit 0.15]

Exits with status 1 and a WARNING when the ktplus overhead per trial is over
``--limit`` seconds (0.15 by default) or when the training data makes more
than one iterator per fit.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import sys
import tempfile
import time

import keras
import numpy as np

import ktplus
from ktplus import datasets

T: dict[str, float] = collections.defaultdict(float)
N: dict[str, int] = collections.defaultdict(int)
_active: list[str] = []  # phases running now (nested phases are not counted twice)


def wrap(owner, name, phase):
    """Accounts ``owner.name``'s wall time to ``phase`` (outermost phase only)."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args, **kwargs):
        if _active:
            return original(*args, **kwargs)
        _active.append(phase)
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            T[phase] += time.perf_counter() - start
            N[phase] += 1
            _active.pop()

    setattr(owner, name, timed)


def instrument():
    from tensorflow.python.ops import gen_dataset_ops

    from ktplus.logging import SearchLogger, TrialLogger
    from ktplus.training._callbacks import NaNGuard
    from ktplus.training._data import DataCache
    from ktplus.training._pruning import PruningCallback
    from ktplus.tuners import _checkpoint, _tuner
    from ktplus.tuners._recorder import TrialRecorder

    wrap(_tuner, "validate_search_inputs", "pre-flight checks")
    wrap(_tuner, "adapt_hypermodel", "pre-flight checks")
    wrap(_tuner, "record_fit_settings", "records")
    wrap(DataCache, "convert", "data cache")
    wrap(TrialRecorder, "__init__", "records")
    wrap(TrialRecorder, "execution_callbacks", "records")
    wrap(TrialRecorder, "finish", "records + TB session")
    wrap(TrialRecorder, "fail", "records + TB session")
    wrap(_tuner, "prune_checkpoints", "checkpoint pruning")
    wrap(SearchLogger, "mark_pareto", "pareto marks")
    from ktplus.tuners import _fast_path
    wrap(_fast_path, "release_trial_gradients", "gradient release")
    wrap(_fast_path, "gradient_registry_snapshot", "gradient release")
    if hasattr(_fast_path, "build_for_fit"):  # the training state built before fit (one trace fewer)
        wrap(_fast_path, "build_for_fit", "build before fit")
    wrap(_tuner.Tuner, "_rank_in_tensorboard", "importance at search end")
    for cls in (PruningCallback, TrialLogger, NaNGuard, keras.callbacks.EarlyStopping,
                _checkpoint.AtomicSaveBestEpoch):
        for hook in ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end"):
            if hook in vars(cls) or (cls is keras.callbacks.EarlyStopping and hook in
                                     vars(keras.callbacks.EarlyStopping)):
                wrap(cls, hook, "callbacks in fit")
    wrap(_checkpoint.AtomicSaveBestEpoch, "flush", "checkpoint write")

    # Keras' own: the fit (less the callbacks above, which run inside it) and the model builds.
    original_fit = keras.Model.fit

    @functools.wraps(original_fit)
    def fit(self, *args, **kwargs):
        before = T["callbacks in fit"]
        start = time.perf_counter()
        try:
            return original_fit(self, *args, **kwargs)
        finally:
            T["keras fit (own)"] += time.perf_counter() - start - (T["callbacks in fit"] - before)
            N["keras fit (own)"] += 1

    keras.Model.fit = fit
    wrap(ktplus.DenseHyperModel, "build", "model build (keras)")

    original_make = gen_dataset_ops.make_iterator

    def make_iterator(*args, **kwargs):
        N["tf.data iterators"] += 1
        return original_make(*args, **kwargs)

    gen_dataset_ops.make_iterator = make_iterator


class Epochs(keras.callbacks.Callback):
    count = 0

    def on_epoch_end(self, epoch, logs=None):
        Epochs.count += 1


def count_traces():
    """tf.function traces so far (Keras' train/test/predict steps included)."""
    from tensorflow.python.eager.polymorphic_function import tracing_compilation

    original = tracing_compilation.trace_function.__globals__["_create_concrete_function"]

    def counted(*args, **kwargs):
        N["tf.function traces"] += 1
        return original(*args, **kwargs)

    tracing_compilation.trace_function.__globals__["_create_concrete_function"] = counted


def pack_off() -> dict:
    """``pack=1`` where the tuner has it: one Keras fit per trial, the path measured here."""
    import inspect

    return {"pack": 1} if "pack" in inspect.signature(ktplus.Tuner.__init__).parameters else {}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=float, default=0.15, help="ktplus seconds per trial allowed")
    args = parser.parse_args()

    data = datasets.load("digits")
    order = np.random.default_rng(42).permutation(len(data.x))
    x, y = data.x[order], data.y[order]
    (x, y), (xv, yv) = (x[:1200], y[:1200]), (x[1200:1500], y[1200:1500])
    keras.backend.clear_session()
    instrument()
    count_traces()
    root = tempfile.mkdtemp(prefix="ktplus-overhead-")
    keras.utils.set_random_seed(args.seed)
    hm = ktplus.DenseHyperModel(input_shape=(64,), num_classes=10, layers=(1, 3), units=(32, 256),
                                dropout=(0.0, 0.5), learning_rate=(1e-4, 1e-2))
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=args.trials, seed=args.seed,
                                directory=root, project_name="overhead", early_stopping=3,
                                pruning="median", **pack_off())
    start = time.perf_counter()
    tuner.search(x, y, validation_data=(xv, yv), epochs=args.epochs, verbose=0, callbacks=[Epochs()])
    wall = time.perf_counter() - start
    trials = len(tuner.oracle.trials)

    keras_phases = ("keras fit (own)", "model build (keras)")
    ktplus_phases = [p for p in T if p not in keras_phases]
    accounted = sum(T.values())
    print(f"{trials} trials, {Epochs.count} epochs, {wall:.2f} s search wall "
          f"({wall / trials:.3f} s per trial, {wall / max(Epochs.count, 1) * 1000:.1f} ms per epoch)")
    print(f"{'phase':28} {'s/trial':>8} {'calls':>6}")
    for phase in [*keras_phases, *sorted(ktplus_phases, key=lambda p: -T[p])]:
        print(f"{phase:28} {T[phase] / trials:8.3f} {N[phase]:6d}")
    rest = wall - accounted
    print(f"{'keras-tuner + unaccounted':28} {rest / trials:8.3f}")
    overhead = sum(T[p] for p in ktplus_phases) / trials
    print(f"{'ktplus overhead':28} {overhead:8.3f}   (limit {args.limit:.3f})")
    iters_per_epoch = N["tf.data iterators"] / max(Epochs.count, 1)
    print(f"tf.data iterators: {N['tf.data iterators']} ({iters_per_epoch:.2f} per epoch); "
          f"tf.function traces: {N['tf.function traces']} ({N['tf.function traces'] / trials:.1f} per trial)")
    status = 0
    if overhead > args.limit:
        print(f"WARNING: ktplus adds {overhead:.3f} s per trial, over the {args.limit:.3f} s limit",
              file=sys.stderr)
        status = 1
    # Validation makes two iterators per epoch (cheap: no tf.data function); the endless training
    # pipeline one per fit. Two more per epoch means the per-epoch training pipelines are back.
    if iters_per_epoch > 2.0 + 2.0 * trials / max(Epochs.count, 1) + 0.25:
        print(f"WARNING: {iters_per_epoch:.2f} tf.data iterators per epoch: the training data is "
              "iterated anew each epoch (ktplus issue 22)", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
