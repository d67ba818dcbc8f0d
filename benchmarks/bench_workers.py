"""Trials per hour with 1, 2 and 4 local workers on the same search: keras-tuner's
chief/worker engine against workers sharing one Optuna study with no chief.

    python benchmarks/bench_workers.py [--trials 16] [--epochs 10] [--modes chief journal sqlite]

Every run is ``ktplus search --data digits --workers N`` with the same
trials, epochs and seed, in a fresh directory, one after the other in one
invocation:

* ``chief``: ``--tuner random``, a local chief serving the oracle over gRPC
  to N workers (keras-tuner's mode; the chief is one more process);
* ``journal``: ``--tuner tpe``, N workers sharing the project directory's
  journal file (the embedded default storage), no chief;
* ``sqlite``: ``--tuner tpe --storage sqlite:///DIR/study.db`` (an
  ``RDBStorage`` with Optuna's heartbeats), no chief.

Wall time includes starting the processes (each imports TensorFlow) and,
for the storage modes, the supervisor's leaderboard. On a 2-core machine
expect the gain to flatten past 2 workers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

MODES = ("chief", "journal", "sqlite")


def _command(mode: str, n: int, root: str, trials: int, epochs: int) -> list[str]:
    tuner = ["--tuner", "random"] if mode == "chief" else ["--tuner", "tpe"]
    storage = ["--storage", f"sqlite:///{os.path.join(root, 'study.db')}"] if mode == "sqlite" else []
    return [sys.executable, "-m", "ktplus.cli", "search", "--data", "digits", "--workers", str(n), *tuner,
            *storage, "--trials", str(trials), "--epochs", str(epochs), "--early-stopping", "0",
            "--pruning", "none", "--directory", root, "--seed", "0"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=MODES)
    args = parser.parse_args()
    rates: dict[tuple[str, int], float] = {}
    for mode in args.modes:
        for n in args.workers:
            root = tempfile.mkdtemp(prefix=f"ktplus-{mode}{n}-")
            start = time.perf_counter()
            result = subprocess.run(_command(mode, n, root, args.trials, args.epochs), capture_output=True,
                                    text=True)
            wall = time.perf_counter() - start
            if result.returncode != 0:
                sys.exit(f"{mode}, {n} workers failed: {result.stderr[-2000:]}")
            rates[mode, n] = args.trials / wall * 3600
            print(f"{mode:8s} {n} worker(s): {wall:6.1f} s for {args.trials} trials = "
                  f"{rates[mode, n]:6.0f} trials/hour", flush=True)
    for mode in args.modes:
        base = rates[mode, args.workers[0]]
        line = ", ".join(f"{n}: {rates[mode, n] / base:.2f}x" for n in args.workers)
        versus = (", ".join(f"{n}: {rates[mode, n] / rates['chief', n]:.2f}x" for n in args.workers)
                  if "chief" in args.modes and mode != "chief" else "")
        print(f"{mode:8s} scaling vs {args.workers[0]} worker(s): {line}"
              + (f"; vs chief/worker: {versus}" if versus else "") + f" (on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
