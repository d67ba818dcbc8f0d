"""ktplus RandomSearch vs raw keras-tuner RandomSearch, one invocation, same seeds.

Digits: 1200 train / 300 validation / 297 test (a fixed shuffle). 12 trials,
up to 30 epochs. Raw keras-tuner: a hand-written hypermodel of the same
space (1-3 layers, 32-256 units, dropout 0-0.5, log learning rate
1e-4..1e-2, Adam), fixed epochs, a keras.callbacks.TensorBoard as the
keras-tuner docs suggest. ktplus: DenseHyperModel with the same space,
early stopping, median pruning and the fast path with its defaults (so
``pack="auto"``: same-shaped trials trained as fused models), and the same
with ``pack=1`` (the floor of one traced model per trial).

    python benchmarks/bench_search.py [--trials 12] [--epochs 30]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import keras
import keras_tuner
import numpy as np

import ktplus
from ktplus import datasets


def load():
    data = datasets.load("digits")
    order = np.random.default_rng(42).permutation(len(data.x))
    x, y = data.x[order], data.y[order]
    return (x[:1200], y[:1200]), (x[1200:1500], y[1200:1500]), (x[1500:], y[1500:])


def raw_build(hp):
    model = keras.Sequential([keras.Input((64,))])
    for i in range(hp.Int("layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 32, 256, step=2, sampling="log"),
                                     activation="relu"))
        model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5)))
    model.add(keras.layers.Dense(10, activation="softmax"))
    lr = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class CountEpochs(keras.callbacks.Callback):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path, "a") as f:
            f.write("1\n")


def run(side, trials, epochs, seed, root):
    (x, y), (xv, yv), (xt, yt) = load()
    keras.utils.set_random_seed(seed)
    counter = os.path.join(root, f"{side}.epochs")
    callbacks = [CountEpochs(counter)]
    start = time.perf_counter()
    if side == "keras-tuner":
        tuner = keras_tuner.RandomSearch(raw_build, objective="val_accuracy", max_trials=trials,
                                         seed=seed, directory=root, project_name=side)
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(root, side, "tb")))
    else:
        hm = ktplus.DenseHyperModel(input_shape=(64,), num_classes=10, layers=(1, 3), units=(32, 256),
                                    dropout=(0.0, 0.5), learning_rate=(1e-4, 1e-2))
        tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=trials, seed=seed,
                                    directory=root, project_name=side, early_stopping=5,
                                    pruning="median", pack=1 if side == "ktplus-pack-off" else "auto")
    tuner.search(x, y, validation_data=(xv, yv), epochs=epochs, verbose=0, callbacks=callbacks)
    wall = time.perf_counter() - start
    best = tuner.oracle.get_best_trials(1)[0]
    test_acc = tuner.get_best_models(1)[0].evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    with open(counter) as f:
        n_epochs = sum(1 for _ in f)
    fused = len(getattr(tuner, "packed_trials", {}))
    return {"wall_s": wall, "epochs": n_epochs, "best_val_acc": best.score, "test_acc": test_acc, "fused": fused}


SIDES = ("keras-tuner", "ktplus", "ktplus-pack-off")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=SIDES, help="run one side (profiling)")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="ktplus-bench-")
    keras.backend.clear_session()  # its first call imports modules: keep that out of the timings
    results = {side: run(side, args.trials, args.epochs, args.seed, root)
               for side in SIDES if args.only in (None, side)}
    print(f"{'side':16} {'wall_s':>8} {'epochs':>7} {'best_val_acc':>13} {'test_acc':>9} {'fused':>6}")
    for side, r in results.items():
        print(f"{side:16} {r['wall_s']:8.1f} {r['epochs']:7d} {r['best_val_acc']:13.4f} {r['test_acc']:9.4f} "
              f"{r['fused']:6d}")
    if "keras-tuner" not in results:
        return
    for side in SIDES[1:]:
        if side in results:
            ratio = results[side]["wall_s"] / results["keras-tuner"]["wall_s"]
            gap = results["keras-tuner"]["best_val_acc"] - results[side]["best_val_acc"]
            print(f"wall-time ratio {side}/keras-tuner: {ratio:.3f}x; best val accuracy gap: {gap:+.4f}")


if __name__ == "__main__":
    main()
