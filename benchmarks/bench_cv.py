"""What ``cv=`` costs against one validation split, and what it buys.

Data: scikit-learn's breast_cancer (569 samples, standardized with the
statistics of the whole set, the same arrays for every run) or digits
(1797, pixels in [0, 1]). Search: ``ktplus.RandomSearch`` over a
``ktplus.DenseHyperModel`` with a small space (1-2 layers, 16-128 units,
dropout 0-0.5, log learning rate 1e-4..1e-2), objective val_accuracy, the
same seed and trials everywhere, fixed epochs (no early stopping),
tensorboard=False.

Part 1, cost (wall time of tuner construction + ``search()``,
``time.perf_counter``): (a) one stratified 80/20 split as validation_data,
(b) ``cv=5`` on all the data (each fold trains on 80% too, so expect about
5x minus the per-search overheads the folds share), (c) ``cv=5`` with
``pruning="median"`` (a fold is pruned against the same fold of the other
trials; a pruned fold ends its trial).

Part 2, reliability of the single split's pick: the best configuration of
(a) is trained afresh (``hypermodel.build(hp)`` + ``hypermodel.fit``, same
epochs, ``keras.utils.set_random_seed(seed)`` before each) on 5 other
stratified 80/20 splits (split seeds seed+1..seed+5); its score on each is
the best-epoch val_accuracy, as a trial's score. Their mean and std are
compared with (i) the ``score_std`` over the folds that the cv search (b)
recorded for the same configuration (RandomSearch draws the same
configurations in the same order for the same seed; found by its values)
and (ii) the std over the same 5 folds computed directly (sklearn
StratifiedKFold, the folds ktplus makes, and the same training routine as
the splits). Rank flips: the two best configurations of the cv search are
trained on each of the 5 splits; a flip is a split that orders them the
other way round from their cv means (ties counted apart).

    python benchmarks/bench_cv.py [--data breast_cancer] [--trials 8] [--epochs 10]
    python benchmarks/bench_cv.py --quick   # 2 trials, 2 epochs: checks that it runs
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time

import keras
import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

import ktplus
from ktplus import datasets

OBJECTIVE = "val_accuracy"


def load(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    data = datasets.load(name)
    x = data.x if name == "digits" else datasets.standardize(data.x)[0]
    return x, data.y, int(data.num_classes)


def make_hypermodel(x: np.ndarray, num_classes: int) -> ktplus.DenseHyperModel:
    return ktplus.DenseHyperModel(input_shape=x.shape[1:], num_classes=num_classes, layers=(1, 2),
                                  units=(16, 128), dropout=(0.0, 0.5), learning_rate=(1e-4, 1e-2))


def split(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """A stratified 80/20 split: x_train, x_val, y_train, y_val."""
    return tuple(train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed))


def run_search(hm, x, y, *, name, trials, epochs, seed, root, cv=None, pruning=None):
    """One search; returns the tuner and its wall time in seconds."""
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    tuner = ktplus.RandomSearch(hm, objective=OBJECTIVE, max_trials=trials, seed=seed, directory=root,
                                project_name=name, cv=cv, pruning=pruning, early_stopping=None,
                                tensorboard=False)
    if cv is None:
        xt, xv, yt, yv = split(x, y, seed)
        tuner.search(xt, yt, validation_data=(xv, yv), epochs=epochs, verbose=0)
    else:
        tuner.search(x, y, epochs=epochs, verbose=0)
    return tuner, time.perf_counter() - start


def train_score(hm, hp, xt, yt, xv, yv, epochs: int, seed: int) -> float:
    """A fresh model of ``hp`` trained on (xt, yt): its best-epoch val_accuracy."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = hm.build(hp)
    history = hm.fit(hp, model, xt, yt, validation_data=(xv, yv), epochs=epochs, verbose=0)
    return float(max(history.history[OBJECTIVE]))


def find_trial(tuner, values: dict):
    """The trial of ``tuner`` with these hyperparameter values, or None."""
    for trial in tuner.oracle.trials.values():
        if trial.hyperparameters.values == values:
            return trial
    return None


def fit_count(tuner) -> int:
    """Models trained by a search: one per fold run (per trial without cv)."""
    frame = tuner.results()
    if "folds" not in frame:
        return len(frame)
    return int(frame["folds"].fillna(0).astype(float).sum())


def describe(hp) -> str:
    return ", ".join(f"{k}={v:.2g}" if isinstance(v, float) else f"{k}={v}" for k, v in hp.values.items())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=("breast_cancer", "digits"), default="breast_cancer")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--splits", type=int, default=5, help="single splits for the spread (part 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-pruning", action="store_true", help="skip (c), cv with median pruning")
    parser.add_argument("--quick", action="store_true", help="2 trials, 2 epochs: only checks that it runs")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs = 2, 2
    seed, epochs = args.seed, args.epochs
    x, y, num_classes = load(args.data)
    hm = make_hypermodel(x, num_classes)
    root = tempfile.mkdtemp(prefix="ktplus-bench-cv-")

    # Warm-up (imports, first graph traces) so it falls on none of the timed runs.
    xt, xv, yt, yv = split(x, y, seed)
    train_score(hm, _default_hp(hm), xt[:64], yt[:64], xv[:64], yv[:64], 1, seed)

    # -- part 1: cost ---------------------------------------------------------
    runs = {}
    single, runs["single split"] = run_search(hm, x, y, name="single", trials=args.trials, epochs=epochs,
                                              seed=seed, root=root)
    print(f"single split: {runs['single split']:.1f} s", flush=True)
    cv, runs[f"cv={args.folds}"] = run_search(hm, x, y, name="cv", trials=args.trials, epochs=epochs,
                                              seed=seed, root=root, cv=args.folds)
    print(f"cv={args.folds}: {runs[f'cv={args.folds}']:.1f} s", flush=True)
    tuners = {"single split": single, f"cv={args.folds}": cv}
    if not args.no_pruning:
        name = f"cv={args.folds} + median pruning"
        tuners[name], runs[name] = run_search(hm, x, y, name="cv_pruned", trials=args.trials,
                                              epochs=epochs, seed=seed, root=root, cv=args.folds,
                                              pruning="median")
        print(f"{name}: {runs[name]:.1f} s", flush=True)

    # -- part 2: reliability --------------------------------------------------
    best_hp = single.get_best_hyperparameters(1)[0]
    best_single_score = float(single.oracle.get_best_trials(1)[0].score)
    split_seeds = [seed + 1 + i for i in range(args.splits)]
    split_scores: dict[str, list[float]] = {}

    def scores_on_splits(key: str, hp) -> list[float]:
        if key not in split_scores:
            split_scores[key] = [train_score(hm, hp, *_reorder(split(x, y, s)), epochs, seed)
                                 for s in split_seeds]
        return split_scores[key]

    best_key = repr(sorted(best_hp.values.items()))
    spread = np.array(scores_on_splits(best_key, best_hp))
    cv_trial = find_trial(cv, best_hp.values)
    cv_std = (float(cv_trial.metrics.get_last_value("score_std"))
              if cv_trial is not None and cv_trial.metrics.exists("score_std") else float("nan"))
    cv_mean = float(cv_trial.score) if cv_trial is not None and cv_trial.score is not None else float("nan")
    folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=seed).split(x, y)
    fold_scores = np.array([train_score(hm, best_hp, x[tr], y[tr], x[te], y[te], epochs, seed)
                            for tr, te in folds])

    # Rank flips of the cv search's two best configurations across the single splits.
    top2 = cv.oracle.get_best_trials(2)
    flips = ties = 0
    if len(top2) == 2:
        a, b = (t.hyperparameters for t in top2)
        sa = scores_on_splits(repr(sorted(a.values.items())), a)
        sb = scores_on_splits(repr(sorted(b.values.items())), b)
        flips = sum(p < q for p, q in zip(sa, sb))
        ties = sum(p == q for p, q in zip(sa, sb))
    cv_frame = cv.results()
    in_single = [find_trial(single, t.hyperparameters.values) for t in top2]
    search_split_flip = (len(top2) == 2 and None not in in_single
                         and in_single[0].score < in_single[1].score)

    # -- report ---------------------------------------------------------------
    base = runs["single split"]
    print()
    print(f"## cv vs a single split: {args.data} ({len(x)} samples), {args.trials} trials x "
          f"{epochs} epochs, seed {seed}, {os.cpu_count()} cores")
    print()
    print("| run | wall s | models trained | best score | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, wall in runs.items():
        ratio = f"{wall / base:.2f}x vs single"
        if "pruning" in name:
            ratio += f", {wall / runs[f'cv={args.folds}']:.2f}x vs cv"
        best = tuners[name].oracle.get_best_trials(1)[0].score
        print(f"| {name} | {wall:.1f} | {fit_count(tuners[name])} | {best:.4f} | {ratio} |")
    if not args.no_pruning:
        pruned_frame = tuners[f"cv={args.folds} + median pruning"].results()
        print(f"\npruned trials with median pruning: {int((pruned_frame['status'] == 'pruned').sum())}"
              f" of {len(pruned_frame)}")
    print()
    print(f"best configuration of the single-split search: {describe(best_hp)}")
    print()
    print("| figure (best single-split configuration) | mean | std | min | max |")
    print("|---|---:|---:|---:|---:|")
    print(f"| score on the search's own split (selected there) | {best_single_score:.4f} | | | |")
    print(f"| {args.splits} other single 80/20 splits (seeds {split_seeds[0]}..{split_seeds[-1]}) | "
          f"{spread.mean():.4f} | {spread.std():.4f} | {spread.min():.4f} | {spread.max():.4f} |")
    print(f"| {args.folds} folds, direct (StratifiedKFold, same training routine) | {fold_scores.mean():.4f} | "
          f"{fold_scores.std():.4f} | {fold_scores.min():.4f} | {fold_scores.max():.4f} |")
    found = "" if cv_trial is not None else " (configuration not in the cv search)"
    print(f"| {args.folds} folds, ktplus cv search score / score_std{found} | {cv_mean:.4f} | {cv_std:.4f} | | |")
    print()
    if len(top2) == 2:
        ids = ", ".join(f"trial {t.trial_id} ({t.score:.4f} +- {_std(cv_frame, t.trial_id):.4f})" for t in top2)
        print(f"rank flips of the cv search's top 2 ({ids}): {flips} of {args.splits} single splits order "
              f"them the other way ({ties} ties); the search's own split "
              f"{'flips' if search_split_flip else 'agrees'}")
    print(f"std is numpy's (population) std; scores are best-epoch {OBJECTIVE}.")
    print(f"\ncommand: {shlex.join(['python', *sys.argv])}")


def _reorder(parts: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    xt, xv, yt, yv = parts
    return xt, yt, xv, yv


def _std(frame, trial_id: str) -> float:
    row = frame[frame["trial_id"] == trial_id]
    if "score_std" not in row or row.empty:
        return float("nan")
    return float(row["score_std"].iloc[0])


def _default_hp(hm):
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hm.build(hp)
    return hp


if __name__ == "__main__":
    main()
