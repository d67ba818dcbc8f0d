"""A convolutional search with pack off and pack on (fused conv trials), and
raw keras-tuner, one invocation, same seeds.

Digits as 8x8x1 images: 1200 train / 300 validation / 297 test (a fixed
shuffle). ``--trials`` trials (12), up to ``--epochs`` epochs (10). ktplus:
ConvHyperModel (1-2 blocks of one 3x3 convolution with batch norm, 16-32
filters doubling per block, max pooling, global average pooling or flatten,
a 32-unit dense layer, dropout 0-0.3, Adam at a log learning rate
1e-3..1e-2), early stopping after 3 epochs without improvement, the fast
path with its defaults and ``pack`` (``"auto"``: at most half the trials
asked at once) or ``pack=1``. Raw keras-tuner: a hand-written hypermodel of
the same space, fixed epochs. Prints wall time per trial, epochs trained,
best validation and test accuracy, and how many trials trained fused.

    python benchmarks/bench_conv.py [--trials 12] [--epochs 10] [--pack auto]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import keras
import keras_tuner
from bench_search import CountEpochs  # benchmarks/ is on sys.path when run as a script
from bench_search import load as load_digits

import ktplus


def load():
    """bench_search's split of digits, as 8x8x1 images."""
    (x, y), (xv, yv), (xt, yt) = load_digits()
    return (x.reshape(-1, 8, 8, 1), y), (xv.reshape(-1, 8, 8, 1), yv), (xt.reshape(-1, 8, 8, 1), yt)


def hypermodel():
    return ktplus.ConvHyperModel(input_shape=(8, 8, 1), num_classes=10, conv_blocks=(1, 2), convs_per_block=1,
                                 filters=(16, 32), pooling="max", reduction_type=["global_avg", "flatten"],
                                 dense_units=32, batch_norm=True, dropout=(0.0, 0.3), learning_rate=(1e-3, 1e-2))


def raw_build(hp):
    model = keras.Sequential([keras.Input((8, 8, 1))])
    filters = hp.Int("filters", 16, 32, sampling="log")
    size = 8
    for _ in range(hp.Int("conv_blocks", 1, 2)):
        model.add(keras.layers.Conv2D(filters, 3, padding="same", use_bias=False))
        model.add(keras.layers.BatchNormalization())
        model.add(keras.layers.Activation("relu"))
        if size >= 4:
            model.add(keras.layers.MaxPooling2D(2, padding="same"))
            size //= 2
        filters *= 2
    if hp.Choice("reduction_type", ["global_avg", "flatten"]) == "flatten":
        model.add(keras.layers.Flatten())
    else:
        model.add(keras.layers.GlobalAveragePooling2D())
    dropout = hp.Float("dropout", 0.0, 0.3)
    model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(32, activation="relu"))
    model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(10, activation="softmax"))
    lr = hp.Float("learning_rate", 1e-3, 1e-2, sampling="log")
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run(side, trials, epochs, seed, pack, root):
    (x, y), (xv, yv), (xt, yt) = load()
    keras.utils.set_random_seed(seed)
    counter = os.path.join(root, f"{side}.epochs")
    callbacks = [CountEpochs(counter)]
    start = time.perf_counter()
    if side == "keras-tuner":
        tuner = keras_tuner.RandomSearch(raw_build, objective="val_accuracy", max_trials=trials,
                                         seed=seed, directory=root, project_name=side)
    else:
        tuner = ktplus.RandomSearch(hypermodel(), objective="val_accuracy", max_trials=trials, seed=seed,
                                    directory=root, project_name=side, early_stopping=3,
                                    pack=1 if side == "ktplus-pack-off" else pack)
    tuner.search(x, y, validation_data=(xv, yv), epochs=epochs, verbose=0, callbacks=callbacks)
    wall = time.perf_counter() - start
    done = len(tuner.oracle.trials)
    best = tuner.oracle.get_best_trials(1)[0]
    test_acc = tuner.get_best_models(1)[0].evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    with open(counter) as f:
        n_epochs = sum(1 for _ in f)
    packed = getattr(tuner, "packed_trials", {})
    groups = sorted(packed.values(), reverse=True)
    return {"wall_s": wall, "per_trial_s": wall / max(done, 1), "trials": done, "epochs": n_epochs,
            "best_val_acc": best.score, "test_acc": test_acc, "fused": len(packed), "groups": groups}


SIDES = ("keras-tuner", "ktplus-pack-off", "ktplus-pack-on")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pack", default="auto", help='pack for the pack-on side: "auto" or an integer')
    parser.add_argument("--only", choices=SIDES, help="run one side (profiling)")
    args = parser.parse_args()
    pack = args.pack if args.pack == "auto" else int(args.pack)
    root = tempfile.mkdtemp(prefix="ktplus-bench-conv-")
    keras.backend.clear_session()  # its first call imports modules: keep that out of the timings
    results = {side: run(side, args.trials, args.epochs, args.seed, pack, root)
               for side in SIDES if args.only in (None, side)}
    print(f"{'side':16} {'trials':>6} {'wall_s':>8} {'s/trial':>8} {'epochs':>7} {'best_val_acc':>13} "
          f"{'test_acc':>9} {'fused':>6}  groups")
    for side, r in results.items():
        print(f"{side:16} {r['trials']:6d} {r['wall_s']:8.1f} {r['per_trial_s']:8.2f} {r['epochs']:7d} "
              f"{r['best_val_acc']:13.4f} {r['test_acc']:9.4f} {r['fused']:6d}  {r['groups']}")
    if "ktplus-pack-off" in results and "ktplus-pack-on" in results:
        off, on = results["ktplus-pack-off"], results["ktplus-pack-on"]
        print(f"pack on/off wall time per trial: {on['per_trial_s'] / off['per_trial_s']:.3f}x; "
              f"best val accuracy on - off: {on['best_val_acc'] - off['best_val_acc']:+.4f}")
    if "keras-tuner" in results:
        for side in SIDES[1:]:
            if side in results:
                ratio = results[side]["wall_s"] / results["keras-tuner"]["wall_s"]
                print(f"wall-time ratio {side}/keras-tuner: {ratio:.3f}x")


if __name__ == "__main__":
    main()
