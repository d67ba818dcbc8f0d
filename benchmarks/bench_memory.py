"""Memory soak: 100 trials of a tiny model in one process, RSS (and the
size of TensorFlow's gradient registry, which ktplus releases Keras' entries
from after every trial) after every 10 trials. Target: growth from trial 10
to trial 100 under 100 MB.

    python benchmarks/bench_memory.py [--trials 100] [--keep-gradients]

``--keep-gradients`` switches the release off (every other fast-path part
stays on), to see what it saves.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import ktplus
from ktplus.training._memory import gradient_registry_snapshot
from ktplus.tuners._options import FAST_PARTS


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--keep-gradients", action="store_true",
                        help="switch off the fast path's release_gradients part")
    args = parser.parse_args()
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    hm = ktplus.DenseHyperModel(input_shape=(8,), num_classes=2, layers=(1, 2), units=(4, 64),
                                dropout=(0.0, 0.3))
    rows = []

    class Report(ktplus.RandomSearch):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            n = len(self.oracle.trials)
            if n % 10 == 0:
                rows.append((n, rss_mb(), len(os.listdir("/proc/self/fd")), len(gradient_registry_snapshot())))
                print(f"after {n:3d} trials: RSS {rows[-1][1]:7.1f} MB, open files {rows[-1][2]}, "
                      f"custom-gradient entries {rows[-1][3]}", flush=True)

    keras.utils.set_random_seed(0)
    tuner = Report(hm, objective="val_accuracy", max_trials=args.trials, seed=0,
                   directory=tempfile.mkdtemp(prefix="ktplus-soak-"), project_name="soak",
                   lr_decay="cosine", early_stopping=2, pruning="median",
                   fast_path=([p for p in FAST_PARTS if p != "release_gradients"] if args.keep_gradients else True))
    tuner.search(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=3, verbose=0)
    first = next(r for r in rows if r[0] >= 10)
    growth = rows[-1][1] - first[1]
    print(f"RSS growth from trial {first[0]} to trial {rows[-1][0]}: {growth:+.1f} MB "
          f"(target < 100 MB); open files {first[2]} -> {rows[-1][2]}; "
          f"custom-gradient entries {first[3]} -> {rows[-1][3]}")


if __name__ == "__main__":
    main()
