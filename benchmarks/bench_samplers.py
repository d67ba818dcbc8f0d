"""Optuna's TPE inside ktplus against random search and keras-tuner's own tuners.

Part 1, digits: 1200 train / 300 validation rows (a fixed shuffle, as in
bench_search.py), the same ktplus hypermodel space for every side
(``ktplus.DenseHyperModel``: 1-3 layers, 32-256 units, dropout 0-0.5, log
learning rate 1e-4..1e-2), objective val_accuracy, ``--trials`` trials of up
to ``--epochs`` epochs, ``--seeds`` seeds (1, 10001, 20001, ...: `seed_of`);
for each seed the four sides run one after another, in one process:

* ``ktplus TPE``: ``ktplus.OptunaSearch(sampler="tpe")``;
* ``ktplus random``: ``ktplus.RandomSearch``;
* ``keras-tuner Bayesian``: ``keras_tuner.BayesianOptimization``;
* ``keras-tuner random``: ``keras_tuner.RandomSearch``.

The two ktplus sides use the same ktplus options: early stopping
(patience 5), median pruning, the fast path, TensorBoard logging (all
defaults but the first two). The keras-tuner sides train every trial for the
fixed epochs with no callbacks. Every side gets the same seed (the tuner's
``seed`` and ``keras.utils.set_random_seed``).

Per side: the median over seeds of the best validation accuracy (a trial's
score is its best epoch's, on every side), the median wall time from the
tuner's construction to the end of the first trial scoring at least
``--threshold`` (0.98; a seed that never gets there counts as never, and the
median is "not reached" when half the seeds or more never do), and the total
wall time of all its searches (``time.perf_counter``); the same two times
in CPU seconds of this process (``time.process_time``, all its threads),
which other processes on the machine disturb less than wall time.

Part 2, the sampler alone: a HyperModel whose ``fit`` trains nothing and
returns a synthetic loss over two floats x, y in [-5, 5] (a narrow, tilted
valley, minimum 0 at x=1.3, y=-0.7; the model it builds has one weight
and is never trained); ``ktplus.OptunaSearch(sampler="tpe")`` against
``ktplus.RandomSearch``, ``--synthetic-trials`` (40) trials per seed,
``--synthetic-seeds`` seeds; the median best loss of each.

    python benchmarks/bench_samplers.py [--trials 30] [--seeds 5] [--epochs 20]
    python benchmarks/bench_samplers.py --trials 3 --seeds 1 --epochs 2   # a smoke run
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
import keras_tuner
import numpy as np

import ktplus
from ktplus import datasets

OBJECTIVE = "val_accuracy"
KTPLUS_OPTIONS: dict[str, Any] = {"early_stopping": 5, "pruning": "median"}
SIDES = ("ktplus TPE", "ktplus random", "keras-tuner Bayesian", "keras-tuner random")


def seed_of(i: int) -> int:
    """The i-th seed: 1, 10001, 20001, ... keras-tuner's oracles draw value k
    of a search from ``seed + k`` (and replace seed 0 by a random one), so
    nearby seeds would replay shifted copies of one sequence."""
    return 1 + 10_000 * i


def load() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Digits, 1200 train / 300 validation rows (the shuffle of bench_search.py)."""
    data = datasets.load("digits")
    order = np.random.default_rng(42).permutation(len(data.x))
    x, y = data.x[order], data.y[order]
    return (x[:1200], y[:1200]), (x[1200:1500], y[1200:1500])


def hypermodel() -> ktplus.DenseHyperModel:
    return ktplus.DenseHyperModel(input_shape=(64,), num_classes=10, layers=(1, 3), units=(32, 256),
                                  dropout=(0.0, 0.5), learning_rate=(1e-4, 1e-2))


def timed(cls: type) -> type:
    """``cls`` recording, at the end of each trial, the wall and CPU clocks
    and the trial's score (in ``ends``); the search itself is untouched."""

    class Timed(cls):  # type: ignore[misc, valid-type]
        ends: list[tuple[float, float, float | None]]

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)
            score = self.oracle.get_trial(trial.trial_id).score
            self.ends.append((time.perf_counter(), time.process_time(), score))

    Timed.__name__ = cls.__name__
    return Timed


def make_tuner(side: str, seed: int, trials: int, root: str, project: str) -> Any:
    common: dict[str, Any] = {"objective": OBJECTIVE, "max_trials": trials, "seed": seed,
                              "directory": root, "project_name": project}
    if side == "ktplus TPE":
        return timed(ktplus.OptunaSearch)(hypermodel(), sampler="tpe", **common, **KTPLUS_OPTIONS)
    if side == "ktplus random":
        return timed(ktplus.RandomSearch)(hypermodel(), **common, **KTPLUS_OPTIONS)
    if side == "keras-tuner Bayesian":
        return timed(keras_tuner.BayesianOptimization)(hypermodel(), **common)
    return timed(keras_tuner.RandomSearch)(hypermodel(), **common)


def run_digits(side: str, seed: int, args: argparse.Namespace, root: str, data: Any) -> dict[str, Any]:
    """One search: its best score, and its wall and CPU seconds to the
    threshold and in all."""
    (x, y), validation = data
    keras.utils.set_random_seed(seed)
    start, cpu = time.perf_counter(), time.process_time()
    tuner = make_tuner(side, seed, args.trials, root, f"{side.replace(' ', '_')}_{seed}")
    tuner.ends = []
    tuner.search(x, y, validation_data=validation, epochs=args.epochs, verbose=0)
    wall, cpu_all = time.perf_counter() - start, time.process_time() - cpu
    scores = [s for *_, s in tuner.ends if s is not None and math.isfinite(s)]
    first = next(((t - start, c - cpu) for t, c, s in tuner.ends if s is not None and s >= args.threshold),
                 (math.inf, math.inf))
    return {"best": max(scores) if scores else math.nan, "reach": first[0], "reach_cpu": first[1],
            "wall": wall, "cpu": cpu_all, "trials": len(tuner.ends)}


class Valley(keras_tuner.HyperModel):
    """Two floats and a synthetic loss: a one-weight model (keras-tuner wants
    one), never trained."""

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        hp.Float("x", -5.0, 5.0)
        hp.Float("y", -5.0, 5.0)
        return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

    def fit(self, hp: keras_tuner.HyperParameters, model: Any, *args: Any, **kwargs: Any) -> float:
        x, y = hp.get("x") - 1.3, hp.get("y") + 0.7
        u, v = (x + y) / math.sqrt(2), (x - y) / math.sqrt(2)  # a valley along the diagonal
        return float(u * u + 25.0 * v * v)


def run_synthetic(side: str, seed: int, trials: int, root: str) -> float:
    common: dict[str, Any] = {"objective": keras_tuner.Objective("loss", "min"), "max_trials": trials,
                              "seed": seed, "directory": root, "project_name": f"valley_{side}_{seed}",
                              "tensorboard": False}
    tuner: Any = (ktplus.OptunaSearch(Valley(), sampler="tpe", **common) if side == "TPE"
                  else ktplus.RandomSearch(Valley(), **common))
    tuner.search(verbose=0)
    return float(min(t.score for t in tuner.oracle.trials.values() if t.score is not None))


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def seconds(value: float) -> str:
    return "not reached" if math.isinf(value) else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20, help="epochs per trial (fixed for keras-tuner)")
    parser.add_argument("--threshold", type=float, default=0.98)
    parser.add_argument("--sides", default=",".join(SIDES), help="a comma list of: " + ", ".join(SIDES))
    parser.add_argument("--synthetic-trials", type=int, default=40)
    parser.add_argument("--synthetic-seeds", type=int, default=None, help="default: --seeds")
    parser.add_argument("--skip-digits", action="store_true", help="only part 2, the synthetic objective")
    args = parser.parse_args()
    sides = [s.strip() for s in args.sides.split(",")]
    if any(s not in SIDES for s in sides):
        parser.error(f"--sides: expected names among {', '.join(SIDES)}")
    root = tempfile.mkdtemp(prefix="ktplus-bench-samplers-")
    print(f"# {' '.join(shlex.quote(a) for a in ['python', *sys.argv])}  ({os.cpu_count()} cores, {root})")

    if not args.skip_digits:
        data = load()
        keras.backend.clear_session()  # its first call imports modules: keep that out of the timings
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        for seed in map(seed_of, range(args.seeds)):  # seeds outside: load drifts hit every side alike
            for side in sides:
                r = run_digits(side, seed, args, root, data)
                runs[side].append(r)
                reach = (f"{r['reach']:.1f} s ({r['reach_cpu']:.1f} CPU s)" if math.isfinite(r["reach"])
                         else "not reached")
                print(f"seed {seed:5} {side:22} best {r['best']:.4f}, {args.threshold} at {reach}, wall "
                      f"{r['wall']:.1f} s ({r['cpu']:.1f} CPU s), {r['trials']} trials", flush=True)
        print(f"\n## digits: {args.trials} trials of up to {args.epochs} epochs, {args.seeds} seeds, "
              f"threshold {args.threshold}")
        print("ktplus sides: " + ", ".join(f"{k}={v!r}" for k, v in KTPLUS_OPTIONS.items())
              + ", fast path and TensorBoard on; keras-tuner sides: fixed epochs, no callbacks\n")
        print(f"| side | median best {OBJECTIVE} | median s to {args.threshold} (seeds reaching it) | "
              "total wall s | median CPU s to it | total CPU s |")
        print("|---|---:|---:|---:|---:|---:|")
        summary: dict[str, dict[str, float]] = {}
        for side, rs in runs.items():
            reached = sum(math.isfinite(r["reach"]) for r in rs)
            summary[side] = {key: median([r[key] for r in rs]) for key in ("best", "reach", "reach_cpu")}
            summary[side].update(wall=sum(r["wall"] for r in rs), cpu=sum(r["cpu"] for r in rs))
            s = summary[side]
            print(f"| {side} | {s['best']:.4f} | {seconds(s['reach'])} ({reached}/{len(rs)}) | {s['wall']:.1f} | "
                  f"{seconds(s['reach_cpu'])} | {s['cpu']:.1f} |")
        if {"ktplus TPE", "ktplus random"} <= set(summary):
            tpe, rnd = summary["ktplus TPE"], summary["ktplus random"]
            print(f"\nTPE vs random: median best {tpe['best']:.4f} vs {rnd['best']:.4f} "
                  f"({'at least as good' if tpe['best'] >= rnd['best'] else 'WORSE'}); median time to "
                  f"{args.threshold}: {seconds(tpe['reach'])} vs {seconds(rnd['reach'])} (s)"
                  + (f" ({tpe['reach'] / rnd['reach']:.2f}x)" if math.isfinite(tpe["reach"] + rnd["reach"])
                     else "") + f"; in CPU s: {seconds(tpe['reach_cpu'])} vs {seconds(rnd['reach_cpu'])}")

    seeds = args.synthetic_seeds or args.seeds
    best: dict[str, list[float]] = {"TPE": [], "random": []}
    for seed in map(seed_of, range(seeds)):
        for side in best:
            best[side].append(run_synthetic(side, seed, args.synthetic_trials, root))
    tpe_best, random_best = median(best["TPE"]), median(best["random"])
    print(f"\n## synthetic valley (no training): {args.synthetic_trials} trials, {seeds} seeds, "
          "loss to minimize (0 at the optimum)")
    for side, values in best.items():
        print(f"{side:7} median best loss {median(values):.4f}  (per seed: "
              + ", ".join(f"{v:.4f}" for v in values) + ")")
    print(f"TPE beats random: {'yes' if tpe_best < random_best else 'NO'} "
          f"({tpe_best:.4f} vs {random_best:.4f})")


if __name__ == "__main__":
    main()
