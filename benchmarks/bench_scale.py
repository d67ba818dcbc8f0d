"""Scale: a long search of one-epoch trials keeps its per-trial overhead and
its memory flat. Runs ktplus (every option that reads shared state: pruning,
TensorBoard, the fast path) and raw keras-tuner on the same seeds, one after
the other in one process, and compares the mean wall time per trial of the
last 20 trials with that of the first 20 (target: ktplus within 1.2x) and
RSS growth.

Fusion (``--fused N``): N one-epoch trials of ``ktplus.DenseHyperModel``
(one hidden layer, tuned width and learning rate), the same search with the
fast path's ``pack`` part on (the default) and off, in the same run: mean
wall time per trial of each, and how many trials were trained fused.

    python benchmarks/bench_scale.py [--trials 300]
    python benchmarks/bench_scale.py --fused 64
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
from bench_memory import rss_mb  # benchmarks/ is on sys.path when run as a script


def run(module: object, name: str, trials: int, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    import keras

    def build(hp):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(hp.Int("units", 4, 64), activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    ends: list[float] = []
    rss: list[float] = []
    base = module.RandomSearch  # type: ignore[attr-defined]

    class Timed(base):  # type: ignore[misc, valid-type]
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            ends.append(time.perf_counter())
            rss.append(rss_mb())

    options = {"pruning": "median"} if name == "ktplus" else {}
    keras.utils.set_random_seed(0)
    tuner = Timed(build, objective="val_accuracy", max_trials=trials, seed=0, project_name=name,
                  directory=tempfile.mkdtemp(prefix="ktplus-scale-"), **options)
    start = time.perf_counter()
    tuner.search(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=1, verbose=0)
    durations = np.diff([start, *ends])
    first, last = statistics.mean(durations[:20]), statistics.mean(durations[-20:])
    return {"first": first, "last": last, "ratio": last / first, "rss_growth": rss[-1] - rss[19]}


def fused(trials: int, x: np.ndarray, y: np.ndarray) -> None:
    """Per-trial wall time of one-epoch trials, pack on against off."""
    import keras

    import ktplus

    keras.backend.clear_session()  # its first call imports modules: keep that out of the timings
    for pack in ("auto", 1):
        keras.utils.set_random_seed(0)
        hm = ktplus.DenseHyperModel(input_shape=(8,), num_classes=2, layers=1, units=(16, 64),
                                    learning_rate=(1e-4, 1e-2))
        tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=trials, seed=0, pack=pack,
                                    pruning="median", directory=tempfile.mkdtemp(prefix="ktplus-scale-"))
        start = time.perf_counter()
        tuner.search(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=1, verbose=0)
        wall = time.perf_counter() - start
        best = tuner.oracle.get_best_trials(1)[0].score
        print(f"pack={pack!s:5} {trials} one-epoch trials: {wall / trials * 1000:6.0f} ms/trial, "
              f"{len(tuner.packed_trials)} trained fused, best val accuracy {best:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--fused", type=int, default=0, metavar="N",
                        help="instead: N one-epoch trials of a ktplus hypermodel, pack on against off")
    args = parser.parse_args()
    import keras_tuner

    import ktplus

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    if args.fused:
        fused(args.fused, x, y)
        return
    for name, module in (("ktplus", ktplus), ("keras_tuner", keras_tuner)):
        r = run(module, name, args.trials, x, y)
        print(f"{name:12s} {args.trials} one-epoch trials: first 20 {r['first'] * 1000:6.0f} ms/trial, "
              f"last 20 {r['last'] * 1000:6.0f} ms/trial, last/first {r['ratio']:.2f} (target <= 1.2), "
              f"RSS growth after trial 20 {r['rss_growth']:+.0f} MB", flush=True)


if __name__ == "__main__":
    main()
