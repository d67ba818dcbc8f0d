"""Trials per hour with 1, 2 and 4 local workers on the same search
(keras-tuner's chief/worker engine through ``ktplus search --workers N``).

    python benchmarks/bench_workers.py [--trials 16] [--epochs 10]

Each run is a fresh search of the same space and seed on digits, with a
chief and N workers on 127.0.0.1; wall time includes starting the
processes (each imports TensorFlow). On a 2-core machine expect the gain to
flatten past 2 workers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    args = parser.parse_args()
    rows = []
    for n in args.workers:
        root = tempfile.mkdtemp(prefix=f"ktplus-workers{n}-")
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "ktplus.cli", "search", "--data", "digits", "--workers", str(n),
             "--trials", str(args.trials), "--epochs", str(args.epochs), "--early-stopping", "0",
             "--pruning", "none", "--directory", root, "--seed", "0"],
            capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"{n} workers failed: {result.stderr[-2000:]}")
        rows.append((n, wall, args.trials / wall * 3600))
        print(f"{n} worker(s): {wall:6.1f} s for {args.trials} trials = {rows[-1][2]:6.0f} trials/hour",
              flush=True)
    base = rows[0][2]
    print("scaling vs 1 worker: " + ", ".join(f"{n}: {tph / base:.2f}x" for n, _, tph in rows)
          + f" (on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
