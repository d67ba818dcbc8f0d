"""What the data-preparation knobs buy: augmentation + normalization, and
balanced class weights, each against the same search without them.

Data: scikit-learn's digits as (8, 8, 1) images, pixels / 16 (in [0, 1]).
For each seed (1, 10001, 20001, ...: `seed_of`) a stratified 20% test split
is held out (``train_test_split(random_state=seed)``), the same for every
arm of that seed; the rest is split stratified 80/20 into train and
validation. Every search: ``ktplus.RandomSearch`` over a
``ktplus.ConvHyperModel`` (its default space: 1-3 blocks, 1-2 convs per
block, 16-64 filters, batch norm, dropout 0-0.5, log learning rate
1e-4..1e-2), objective val_accuracy, ``--trials`` trials of up to
``--epochs`` epochs with early stopping (patience ``--patience``), no
pruning, tensorboard=False, the tuner's ``seed`` and
``keras.utils.set_random_seed`` set to the seed. The best trial's model
(``get_best_models(1)``, its best epoch's weights) predicts the test split,
which no search sees. The arms are paired: both arms of a seed draw the
same configurations trial by trial (`Paired`), so they differ only in the
data-preparation knobs.

Part A, digits: ``plain`` (no data preparation) against ``prep``:
``normalization=["standardize", None]``, ``augment_rotation=(0.0, 0.1)``,
``augment_translation=(0.0, 0.25)``, ``augment_zoom=(0.0, 0.2)`` tuned with
the rest (each trial of ``prep`` is ``plain``'s trial of the same number
with its own, random, data preparation: augmentation is almost always on,
standardization half the time). Per arm:
the median over seeds of the best model's test accuracy.

Part B, imbalanced digits: class ``--rare-class`` (3) cut to
``--rare-fraction`` (a tenth) of its samples in train + validation (the
first ceil(n/10) of them in a seeded shuffle; the split into train and
validation stays stratified); the test split is kept as is (stratified from
the full data, so the rare class has its usual ~36 test samples and its
recall is not measured on a handful). ``class_weight=None`` against
``class_weight="balanced"``, no other data preparation. Per arm: the
median test accuracy, rare-class recall (``sklearn.metrics.recall_score``
on that class) and balanced accuracy.

Every arm of a seed runs in one process, one after another; the wall times
(``time.perf_counter``, tuner construction to the end of ``search()``)
follow a warm-up that takes the first imports and graph traces.

    python benchmarks/bench_data_prep.py [--trials 8] [--seeds 3] [--epochs 15]
    python benchmarks/bench_data_prep.py --quick   # 2 trials, 1 seed, 2 epochs: checks that it runs
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
from typing import Any

import keras
import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, recall_score
from sklearn.model_selection import train_test_split

import ktplus
from ktplus import datasets

OBJECTIVE = "val_accuracy"
PREP: dict[str, Any] = {"normalization": ["standardize", None], "augment_rotation": (0.0, 0.1),
                        "augment_translation": (0.0, 0.25), "augment_zoom": (0.0, 0.2)}
ARMS_A: dict[str, dict[str, Any]] = {"plain": {}, "prep": PREP}
ARMS_B: dict[str, dict[str, Any]] = {"class_weight=None": {"class_weight": None},
                                     "class_weight=balanced": {"class_weight": "balanced"}}
#: The off value of each knob an arm leaves out, as `Paired` registers it.
OFF: dict[str, Any] = {"normalization": "none", "augment_rotation": 0.0, "augment_zoom": 0.0,
                       "augment_translation": 0.0, "class_weight": "none"}


def seed_of(i: int) -> int:
    """The i-th seed: 1, 10001, 20001, ... (keras-tuner's oracles draw value
    k of a search from ``seed + k``: nearby seeds would replay shifted
    copies of one sequence)."""
    return 1 + 10_000 * i


def load() -> tuple[np.ndarray, np.ndarray]:
    data = datasets.load("digits")  # pixels / 16
    return data.x.reshape(-1, *data.image_shape), data.y


Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def split(x: np.ndarray, y: np.ndarray, seed: int, rare: int | None = None, fraction: float = 1.0) -> Split:
    """(train, validation, test): a stratified 20% test split, then the rest
    (with class ``rare`` cut to ``fraction`` of its samples) split
    stratified 80/20."""
    xr, xt, yr, yt = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    if rare is not None:
        idx = np.flatnonzero(yr == rare)
        keep = np.random.default_rng(seed).permutation(idx)[:math.ceil(len(idx) * fraction)]
        mask = (yr != rare)
        mask[keep] = True
        xr, yr = xr[mask], yr[mask]
    xs, xv, ys, yv = train_test_split(xr, yr, test_size=0.2, stratify=yr, random_state=seed)
    return (xs, ys), (xv, yv), (xt, yt)


class Paired(ktplus.ConvHyperModel):
    """A ConvHyperModel that also registers, fixed at their off values and
    after its own hyperparameters (where ktplus registers data-preparation
    knobs, in the same order), the knobs ``OFF`` that the other arm tunes or
    fixes and this arm leaves out. keras-tuner's random oracle moves its
    seed on by one per hyperparameter, so with the same number of them both
    arms of a seed draw the same architectures, optimizer settings and
    dropout, trial by trial: the arms differ only in data preparation."""

    def __init__(self, *args: Any, pad: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pad = pad

    def build(self, hp: Any) -> keras.Model:
        model = super().build(hp)
        for name in self.pad:
            hp.Fixed(name, OFF[name])
        return model


def run(arm: dict[str, Any], data: Split, seed: int, args: argparse.Namespace, root: str,
        project: str, pad: tuple[str, ...] = ()) -> dict[str, Any]:
    """One search; the best model's test scores and the search's wall time."""
    (x, y), validation, (xt, yt) = data
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    hypermodel = Paired(input_shape=(8, 8, 1), num_classes=10, pad=pad, **arm)
    tuner = ktplus.RandomSearch(hypermodel, objective=OBJECTIVE, max_trials=args.trials, seed=seed,
                                early_stopping=args.patience, tensorboard=False, directory=root,
                                project_name=project)
    tuner.search(x, y, validation_data=validation, epochs=args.epochs, verbose=0)
    wall = time.perf_counter() - start
    best = tuner.oracle.get_best_trials(1)[0]
    model = tuner.get_best_models(1)[0]
    pred = np.argmax(model.predict(xt, verbose=0), axis=-1)
    r = {"val": float(best.score), "test": float(accuracy_score(yt, pred)),
         "balanced": float(balanced_accuracy_score(yt, pred)), "wall": wall,
         "trials": len(tuner.oracle.trials),
         "hp": hypermodel.prep_values(best.hyperparameters)}
    if args.rare_class is not None:
        r["recall"] = float(recall_score(yt, pred, labels=[args.rare_class], average="macro",
                                         zero_division=0))
    keras.backend.clear_session()
    return r


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def describe(hp: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in hp.items()) or "-"


def compare(name: str, arms: dict[str, dict[str, Any]], x: np.ndarray, y: np.ndarray,
            args: argparse.Namespace, root: str, rare: int | None) -> dict[str, list[dict[str, Any]]]:
    """Every arm on every seed (seeds outside: load drifts hit every arm alike)."""
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    tuned = {k for knobs in arms.values() for k, v in knobs.items() if v is not None}
    for seed in map(seed_of, range(args.seeds)):
        data = split(x, y, seed, rare, args.rare_fraction)
        if rare is not None:
            (_, ys), (_, yv), (_, yt) = data
            print(f"seed {seed:5} class {rare}: {int((ys == rare).sum())} train, {int((yv == rare).sum())} "
                  f"validation, {int((yt == rare).sum())} test samples (of {len(ys)}, {len(yv)}, {len(yt)})")
        for arm, knobs in arms.items():
            pad = tuple(k for k in OFF if k in tuned and knobs.get(k) is None)
            r = run(knobs, data, seed, args, root, f"{name}_{arm.replace('=', '_')}_{seed}", pad)
            runs[arm].append(r)
            recall = f", class {rare} recall {r['recall']:.4f}" if rare is not None else ""
            print(f"seed {seed:5} {arm:22} best val {r['val']:.4f}, test {r['test']:.4f}{recall}, "
                  f"wall {r['wall']:.1f} s ({r['trials']} trials; {describe(r['hp'])})", flush=True)
    return runs


def per_seed(rs: list[dict[str, Any]], key: str) -> str:
    return " ".join(f"{r[key]:.3f}" for r in rs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15, help="epochs per trial at most")
    parser.add_argument("--patience", type=int, default=5, help="early stopping patience")
    parser.add_argument("--rare-class", type=int, default=3, help="the class cut in part B")
    parser.add_argument("--rare-fraction", type=float, default=0.1, help="of its train+val samples kept")
    parser.add_argument("--only", choices=("A", "B"), help="run one part")
    parser.add_argument("--quick", action="store_true",
                        help="2 trials, 1 seed, 2 epochs: only checks that it runs")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.seeds, args.epochs = 2, 1, 2
    root = tempfile.mkdtemp(prefix="ktplus-bench-data-prep-")
    print(f"# {shlex.join(['python', *sys.argv])}  ({os.cpu_count()} cores, {root})")
    x, y = load()

    # Warm-up (imports, first graph traces) so it falls on none of the timed runs.
    warm = argparse.Namespace(**{**vars(args), "trials": 1, "epochs": 1, "rare_class": None})
    (xs, ys), (xv, yv), test = split(x, y, 0)
    run(PREP, ((xs[:64], ys[:64]), (xv[:64], yv[:64]), test), 0, warm, root, "warmup")

    budget = (f"{args.trials} trials of up to {args.epochs} epochs (early stopping, patience "
              f"{args.patience}), {args.seeds} seeds")
    if args.only in (None, "A"):
        a_args = argparse.Namespace(**{**vars(args), "rare_class": None})
        runs = compare("A", ARMS_A, x, y, a_args, root, None)
        print(f"\n## A: digits 8x8, conv, {budget}; test = stratified 20% per seed\n")
        print(f"prep: {describe(PREP)}\n")
        print("| arm | median test accuracy | test accuracy per seed | median best val_accuracy | "
              "total wall s |")
        print("|---|---:|---:|---:|---:|")
        for arm, rs in runs.items():
            print(f"| {arm} | {median([r['test'] for r in rs]):.4f} | {per_seed(rs, 'test')} | "
                  f"{median([r['val'] for r in rs]):.4f} | {sum(r['wall'] for r in rs):.1f} |")
        plain, prep = runs["plain"], runs["prep"]
        diff = median([r["test"] for r in prep]) - median([r["test"] for r in plain])
        wins = sum(p["test"] > q["test"] for p, q in zip(prep, plain))
        ties = sum(p["test"] == q["test"] for p, q in zip(prep, plain))
        print(f"\nprep - plain: median test accuracy {diff:+.4f}; prep better on {wins} of {len(prep)} seeds "
              f"({ties} ties); wall time {sum(r['wall'] for r in prep) / sum(r['wall'] for r in plain):.2f}x")

    if args.only in (None, "B"):
        rare = args.rare_class
        runs = compare("B", ARMS_B, x, y, args, root, rare)
        print(f"\n## B: digits 8x8 with class {rare} cut to {args.rare_fraction:g} of its train+val samples, "
              f"conv, {budget}; test = stratified 20% of the full data (class {rare} not cut)\n")
        print(f"| arm | median test accuracy | median class {rare} recall | recall per seed | "
              "median balanced accuracy | total wall s |")
        print("|---|---:|---:|---:|---:|---:|")
        for arm, rs in runs.items():
            print(f"| {arm} | {median([r['test'] for r in rs]):.4f} | "
                  f"{median([r['recall'] for r in rs]):.4f} | {per_seed(rs, 'recall')} | "
                  f"{median([r['balanced'] for r in rs]):.4f} | {sum(r['wall'] for r in rs):.1f} |")
        none, bal = runs["class_weight=None"], runs["class_weight=balanced"]
        d_acc = median([r["test"] for r in bal]) - median([r["test"] for r in none])
        d_rec = median([r["recall"] for r in bal]) - median([r["recall"] for r in none])
        wins = sum(p["recall"] > q["recall"] for p, q in zip(bal, none))
        print(f"\nbalanced - None: median test accuracy {d_acc:+.4f}, median class {rare} recall "
              f"{d_rec:+.4f}; balanced has the higher recall on {wins} of {len(bal)} seeds")
    print(f"\ncommand: {shlex.join(['python', *sys.argv])}")


if __name__ == "__main__":
    main()
