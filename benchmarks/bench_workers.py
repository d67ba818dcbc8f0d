"""Trials per hour with 1, 2 and 4 local workers on the same trials:
keras-tuner's chief/worker engine against workers sharing one Optuna study
with no chief (issue 23).

    python benchmarks/bench_workers.py [--trials 16] [--epochs 10] [--workers 1 2 4]
                                       [--modes chief journal sqlite postgresql]

Every run trains the same ``--trials`` configurations of
``ktplus.DenseHyperModel`` on digits (1200 train / 300 validation rows, a
fixed shuffle) for ``--epochs`` epochs each, with ``ktplus.OptunaSearch``
(Optuna's ``RandomSampler``, seed 0, ``pack=1``, no early stopping or
pruning), in a fresh directory, one run after the other in one invocation.
The configurations are drawn once, up front, by a seeded in-memory
``OptunaOracle`` and enqueued in every run, so every mode trains exactly
the same models:

* ``chief``: keras-tuner's chief/worker mode, a chief process serving the
  oracle over gRPC to N worker processes (the chief enqueues the list);
* ``journal``: N workers sharing a journal file (the embedded default of
  ``ktplus search --workers N``), no chief;
* ``sqlite``: N workers sharing ``sqlite:///DIR/study.db`` (an RDBStorage
  with Optuna's heartbeats), no chief;
* ``postgresql``: N workers sharing a database of a PostgreSQL server this
  benchmark starts on 127.0.0.1 in a temporary data directory (Debian's
  ``postgresql`` package and ``psycopg``, as the tests); left out, with a
  line saying so, when no server can be started.

For the storage modes this process makes the study and enqueues the list
before the workers start. Wall time runs from starting the processes (each
imports TensorFlow) to the last one's exit. On a 2-core machine expect the
gain to flatten past 2 workers.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
from tests.storage.postgres_server import binaries, free_port, local_postgres  # noqa: E402

MODES = ("chief", "journal", "sqlite", "postgresql")
STUDY = "bench"
SEED = 0


def _load() -> tuple[Any, Any]:
    import numpy as np

    from ktplus import datasets

    data = datasets.load("digits")
    order = np.random.default_rng(42).permutation(len(data.x))
    x, y = data.x[order], data.y[order]
    return (x[:1200], y[:1200]), (x[1200:1500], y[1200:1500])


def _hypermodel() -> Any:
    import ktplus

    return ktplus.DenseHyperModel(input_shape=(64,), num_classes=10)


def _options(trials: int, root: str) -> dict[str, Any]:
    return dict(objective="val_accuracy", max_trials=trials, sampler="random", seed=SEED, directory=root,
                project_name="p", pack=1, early_stopping=None, pruning=None)


def _configurations(trials: int) -> list[dict[str, Any]]:
    """``trials`` configurations of the search space, drawn by Optuna's
    RandomSampler with seed 0 (in-memory; nothing trained)."""
    import ktplus

    with tempfile.TemporaryDirectory() as root, contextlib.redirect_stdout(io.StringIO()):  # (keras-tuner's display)
        tuner = ktplus.OptunaSearch(_hypermodel(), **_options(trials, root))
        return [dict(tuner.oracle.create_trial(f"draw{i}").hyperparameters.values) for i in range(trials)]


def _child(mode: str, root: str, storage: str, trials: int, epochs: int) -> None:
    """One process of a run: a chief or worker (``chief``), or a worker of a shared study."""
    import ktplus

    options = _options(trials, root)
    if mode != "chief":
        options.update(storage=storage, study_name=STUDY)
    tuner = ktplus.OptunaSearch(_hypermodel(), **options)
    if os.environ.get("KERASTUNER_TUNER_ID") == "chief":
        with open(os.path.join(root, "configurations.json")) as f:
            for values in json.load(f):
                tuner.enqueue_trial(values)
    (x, y), validation = _load()
    tuner.search(x, y, validation_data=validation, epochs=epochs, verbose=0)


@contextmanager
def _postgres() -> Iterator[Any]:
    """A PostgreSQL server on 127.0.0.1, started as the storage tests start
    theirs (`tests.storage.postgres_server`): yields a function that makes
    a new database and returns its URL, or None when no server can be
    started."""
    bindir = binaries()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        bindir = None
    with contextlib.ExitStack() as stack:
        server = None
        if bindir is not None:
            try:
                server = stack.enter_context(local_postgres(bindir, "bench", "bench"))
            except (subprocess.CalledProcessError, OSError):
                server = None
        yield None if server is None else server.create_database


def _shared_study(storage: str, configurations: list[dict[str, Any]]) -> None:
    """The study the workers join, made here with every configuration enqueued
    (so no two workers race to enqueue them)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if "://" not in storage:
        from optuna.storages.journal import JournalFileBackend

        opened: Any = optuna.storages.JournalStorage(JournalFileBackend(storage))
    else:
        opened = storage
    study = optuna.create_study(storage=opened, study_name=STUDY, direction="maximize")
    for values in configurations:
        study.enqueue_trial(values)


def _run(mode: str, n: int, root: str, storage: str, args: argparse.Namespace) -> float:
    """Starts the run's processes, waits for every one; returns the wall seconds."""
    me = [sys.executable, os.path.abspath(__file__), "--child", mode, root, storage,
          "--trials", str(args.trials), "--epochs", str(args.epochs)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    roles: list[tuple[str, dict[str, str]]] = [(f"worker{i}", env) for i in range(n)]
    if mode == "chief":
        port = str(free_port())
        chief_env = {**env, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port}
        roles = [(name, {**chief_env, "KERASTUNER_TUNER_ID": name})
                 for name in ["chief", *(f"tuner{i}" for i in range(n))]]
    logs = []
    start = time.perf_counter()
    procs = []
    for name, environment in roles:
        log = open(os.path.join(root, f"{name}.log"), "w")  # noqa: SIM115 (closed below)
        logs.append(log)
        procs.append((name, subprocess.Popen(me, env=environment, stdout=log, stderr=subprocess.STDOUT)))
    for _, proc in procs:
        proc.wait()
    wall = time.perf_counter() - start
    for log in logs:
        log.close()
    failed = [name for name, proc in procs if proc.returncode != 0]
    if failed:
        with open(os.path.join(root, f"{failed[0]}.log")) as f:
            sys.exit(f"{mode}, {n} workers: {', '.join(failed)} failed:\n{f.read()[-3000:]}")
    return wall


def _trained(root: str) -> list[str]:
    """The configurations the run trained, one JSON line each, from its completed trial records."""
    out = []
    for path in glob.glob(os.path.join(root, "p", "trial_*", "trial.json")):
        with open(path) as f:
            record = json.load(f)
        if record.get("status") == "COMPLETED":
            out.append(json.dumps(record["hyperparameters"]["values"], sort_keys=True))
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=16, help="configurations trained per run (default 16)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per trial (default 10)")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4], help="worker counts (default 1 2 4)")
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=MODES,
                        help="default: all (postgresql when a server can be started)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "DIR", "STORAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, root, storage = args.child
        _child(mode, root, storage, args.trials, args.epochs)
        return
    configurations = _configurations(args.trials)
    expected = sorted(json.dumps(c, sort_keys=True) for c in configurations)
    rates: dict[tuple[str, int], float] = {}
    with _postgres() as database:
        modes = list(args.modes)
        if "postgresql" in modes and database is None:
            modes.remove("postgresql")
            print("postgresql: not measured (no PostgreSQL server could be started: apt-get install "
                  "postgresql, pip install 'psycopg[binary]')", flush=True)
        for mode in modes:
            for n in args.workers:
                root = tempfile.mkdtemp(prefix=f"ktplus-bench-{mode}{n}-")
                storage = {"chief": "-", "journal": os.path.join(root, "journal.log"),
                           "sqlite": f"sqlite:///{os.path.join(root, 'study.db')}"}.get(mode) or ""
                if mode == "postgresql":
                    storage = database(f"bench_{n}_{os.getpid()}")
                if mode == "chief":
                    with open(os.path.join(root, "configurations.json"), "w") as f:
                        json.dump(configurations, f)
                else:
                    _shared_study(storage, configurations)
                wall = _run(mode, n, root, storage, args)
                trained = _trained(root)
                if trained != expected:
                    sys.exit(f"{mode}, {n} workers trained other configurations than the list: {len(trained)} "
                             f"completed of {len(expected)}; see {root}")
                rates[mode, n] = args.trials / wall * 3600
                print(f"{mode:10s} {n} worker(s): {wall:6.1f} s for the {args.trials} trials = "
                      f"{rates[mode, n]:6.0f} trials/hour", flush=True)
                shutil.rmtree(root, ignore_errors=True)
    print(f"\n{args.trials} trials x {args.epochs} epochs, the same configurations in every run, pack=1, "
          f"{os.cpu_count()} cores:")
    for mode in modes:
        base = rates[mode, args.workers[0]]
        line = ", ".join(f"{n}: {rates[mode, n] / base:.2f}x" for n in args.workers)
        versus = (", ".join(f"{n}: {rates[mode, n] / rates['chief', n]:.2f}x" for n in args.workers)
                  if "chief" in modes and mode != "chief" else "")
        print(f"{mode:10s} scaling vs {args.workers[0]} worker(s): {line}"
              + (f"; throughput vs chief/worker: {versus}" if versus else ""))


if __name__ == "__main__":
    main()
