"""``ktplus search --workers N``: N local worker processes and one combined
progress display, then the leaderboard.

With one of Optuna's samplers (`run_shared`) the workers share one Optuna
study with no chief: each is ``python -m ktplus.cli search ... --storage S
--study NAME --role worker``, where ``S`` is ``--storage`` or, by default,
the journal file `JOURNAL_FILE` in the project directory (the embedded
storage for one machine). Any worker may die without stopping the others:
its trial is failed as stale once its heartbeat is ``2 * --heartbeat``
seconds old and re-run once by another. When every worker has ended, this
process prints the leaderboard from the records (with ``--test-split``
or ``--export`` it joins the finished study to evaluate and export).

With keras-tuner's algorithms (`run_distributed`) a local chief and N
worker processes on 127.0.0.1 run keras-tuner's distributed search.

Each process is ``python -m ktplus.cli search ... --role chief|worker`` with
the ``KERASTUNER_*`` variables set; this supervisor itself never imports
TensorFlow, except to open and check a shared Optuna storage before any
worker starts (`check_shared_study`). It reads progress from the trials'
``trial.json`` files.

With several objectives it ends with their Pareto front, read back from
the trials' files like the leaderboard.

``--test-split``, ``--cv`` and ``--export`` pass through to every process:
each one holds out the same test rows (same ``--seed``), the workers
cross-validate their trials, and the chief, once every trial is done,
evaluates the best model on the test rows and exports the refit model (it
shares the project directory, and so the checkpoints, with the workers).
This supervisor then prints what the chief recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from ktplus.cli._data import (
    load_data,
    maximized,
    objectives_for,
    prep_options,
    project_dir,
    scoring_text,
    shape_for,
)
from ktplus.cli._errors import CLIError
from ktplus.cli._parser import JOURNAL_FILE
from ktplus.cli._progress import Progress
from ktplus.cli._splits import check_same_split, make_splits


def shared_storage(args: argparse.Namespace, where: str, project: str) -> tuple[str, str]:
    """``(storage, study name)`` of an Optuna ``--workers`` search: ``--storage``
    or the journal file in the project directory, ``--study`` or the project name.

    >>> import argparse
    >>> shared_storage(argparse.Namespace(storage=None, study=None), "runs/iris", "iris")
    ('runs/iris/optuna-journal.log', 'iris')
    """
    return args.storage or os.path.join(where, JOURNAL_FILE), args.study or project


def run_shared(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Starts ``--workers`` processes that share one Optuna study with no
    chief, shows their combined progress, and when every one has ended
    joins the finished search in this process for the leaderboard (and
    ``--test-split``, ``--export``).

    Raises:
        CLIError: for bad data (before any process starts), or when a worker
            failed (the others' trials are kept: the same command resumes).
    """
    import subprocess

    data, objectives, project, where = _checked(args)
    storage, study = shared_storage(args, where, project)
    check_shared_study(args, storage, study, objectives)  # (--overwrite with --storage is refused earlier)
    logs = _make_room(args, where)
    extra = [] if args.storage else ["--storage", storage]
    extra += [] if args.study else ["--study", study]
    procs: dict[str, Any] = {}
    files: list[IO[str]] = []
    for i in range(args.workers):
        log = open(os.path.join(logs, f"worker{i}.log"), "w")  # noqa: SIM115 (closed below)
        files.append(log)
        procs[f"worker{i}"] = subprocess.Popen(
            [sys.executable, "-m", "ktplus.cli", *child_argv(argv, "worker")[:-2], *extra, "--role", "worker"],
            stdout=log, stderr=subprocess.STDOUT)
    print(f"ktplus: {args.tuner} search on {data.name}: {args.workers} workers sharing study {study!r} in "
          f"{_dashboard_url(storage)}, no chief; logs in {logs}", flush=True)
    progress = Progress(args.trials, ",".join(objectives))
    last_done = -1
    reported: set[str] = set()
    try:
        while any(p.poll() is None for p in procs.values()):
            time.sleep(1.0)
            done, scores = poll_trials(where)
            if done != last_done and done > 0:
                one = len(objectives) == 1
                best = (max if maximized(objectives[0]) else min)(scores) if scores and one else None
                progress.update(min(done, args.trials), best)
                last_done = done
            for name, proc in procs.items():
                if proc.poll() not in (None, 0) and name not in reported:
                    reported.add(name)
                    if proc.returncode != 2:  # (2: it refused its input before any trial; said at the end)
                        print(f"\nktplus: {name} exited with {proc.returncode}; the others go on, and its "
                              "trial is re-run by one of them once its heartbeat is stale", flush=True)
    except KeyboardInterrupt:
        _stop(procs)
        raise
    finally:
        for f in files:
            f.close()
    progress.close()
    failed = sorted(name for name, proc in procs.items() if proc.returncode != 0)
    if failed:
        with open(os.path.join(logs, f"{failed[0]}.log")) as f:
            lines = [line.strip() for line in f if line.strip().startswith("ktplus")]
        why = f": {lines[-1]}" if lines else ""
        raise CLIError(f"ktplus: {', '.join(failed)} exited with an error{why} (see {logs}); every trial "
                       "ended is kept: run the same command again to resume")
    if args.test_split is not None or args.export:
        from ktplus.cli._search import run_search

        joined = argparse.Namespace(**{**vars(args), "storage": storage, "study": study, "workers": 0,
                                       "overwrite": False})
        return run_search(joined)  # the budget is spent: this process only reads, evaluates and exports
    from ktplus.results import format_table, load_results

    frame = load_results(where)  # (every worker's records, read without TensorFlow)
    print(f"\nLeaderboard ({len(frame)} trials, {scoring_text(args, objectives)}):")
    print(format_table(frame, top=10))
    if len(objectives) > 1:
        from ktplus.cli._report import pareto_text
        from ktplus.reporting import load_pareto_front

        print("\n" + pareto_text(load_pareto_front(where), len(frame)))
    print(f"\nInspect the runs:\n  tensorboard --logdir {os.path.join(where, 'tensorboard')}\n"
          f"  ktplus report {where} --html report.html\n  optuna-dashboard {_dashboard_url(storage)}")
    return 0


def _dashboard_url(storage: str) -> str:
    """What ``optuna-dashboard`` opens: the storage URL, its password masked (as
    `ktplus.oracles._storage.mask_url`, without importing TensorFlow), or the journal file.

    >>> _dashboard_url("postgresql://u:pw@h/db")
    'postgresql://u:***@h/db'
    """
    import re

    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", storage)


def child_argv(argv: Sequence[str], role: str) -> list[str]:
    """The user's search arguments, minus --workers and --overwrite, plus the role.

    >>> child_argv(["search", "--workers", "2", "--overwrite", "--data", "iris"], "worker")
    ['search', '--data', 'iris', '--role', 'worker']
    """
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers=") or arg == "--overwrite":
            continue
        out.append(arg)
    return [*out, "--role", role]


def poll_trials(project_dir: str) -> tuple[int, list[float]]:
    """``(finished trials, scores of the completed ones)`` read from ``trial_*/trial.json``."""
    done, scores = 0, []
    try:
        names = os.listdir(project_dir)
    except OSError:
        return 0, []
    for name in names:
        path = os.path.join(project_dir, name, "trial.json")
        if not name.startswith("trial_") or not os.path.isfile(path):
            continue
        try:
            with open(path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            continue
        if state.get("status") in ("COMPLETED", "FAILED"):
            done += 1
            if state.get("status") == "COMPLETED" and state.get("score") is not None:
                scores.append(float(state["score"]))
    return done, scores


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(procs: dict[str, Any]) -> None:
    """Passes Ctrl-C on to every process still running and waits for them."""
    import signal
    import subprocess

    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs.values():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _checked(args: argparse.Namespace) -> tuple[Any, list[str], str, str]:
    """What a local multi-process search checks first, in this process,
    before any process starts or anything is written: the data and options.
    Returns the data, the objectives, the project name and its directory."""
    data = load_data(args)
    objectives = objectives_for(args, data)
    x, family = shape_for(args.family, data)
    prep_options(args, data, x, family)
    make_splits(args, data, x)
    project, where = project_dir(args, data)
    check_same_split(args, where)
    return data, objectives, project, where


def _make_room(args: argparse.Namespace, where: str) -> str:
    """The project directory (emptied with ``--overwrite``) and its workers'
    log folder, made once every check passed. Returns the log folder."""
    import shutil

    if args.overwrite and os.path.isdir(where):
        shutil.rmtree(where)
    logs = os.path.join(where, "ktplus_workers")
    os.makedirs(logs, exist_ok=True)
    return logs


def _prepare(args: argparse.Namespace) -> tuple[Any, list[str], str, str, str]:
    """`_checked`, then `_make_room`. Returns the data, the objectives, the
    project name, its directory and the log folder."""
    data, objectives, project, where = _checked(args)
    return data, objectives, project, where, _make_room(args, where)


def check_shared_study(args: argparse.Namespace, storage: str, study: str, objectives: list[str]) -> None:
    """Opens the workers' storage in this process and refuses, as one line
    before any worker starts or anything is written, one they could not
    use: an unreachable database, refused credentials, a missing driver or
    journal folder, or a study of that name made by another objective.
    Nothing is checked for the embedded journal file while it does not
    exist (the first worker makes it), nor with ``--overwrite`` (which
    deletes it with the project directory); this process then never
    imports TensorFlow (it does to check a storage: the oracle's helpers).

    Raises:
        CLIError: naming the flag (``--storage``, ``--study``,
            ``--heartbeat``) and what is wrong, the password masked.
    """
    if args.storage is None and (args.overwrite or not os.path.exists(storage)):
        return
    from ktplus._quiet import import_quietly

    import_quietly()  # (TensorFlow's start-up noise)
    from ktplus._objectives import create_objective
    from ktplus._pareto import objective_directions
    from ktplus.cli._search import _storage_error
    from ktplus.oracles import _storage
    from ktplus.oracles._optuna_oracle import study_directions

    objective = create_objective(objectives[0] if len(objectives) == 1 else list(objectives))
    names, directions = objective_directions(objective)
    try:
        interval, grace = _storage.check_heartbeat(args.heartbeat or 60, None)
        opened = _storage.open_storage(storage, interval, grace)
    except ValueError as e:
        raise CLIError(f"ktplus search: {_storage_error(e)}") from None
    try:
        _storage.check_existing_study(opened, study, study_directions(objective),
                                      [[n, d] for n, d in zip(names, directions)],
                                      _storage.describe_storage(storage))
    except ValueError as e:
        raise CLIError(f"ktplus search: {_storage_error(e)}") from None
    finally:
        _close(opened)


def _close(storage: Any) -> None:
    """Lets go of a storage opened for a check (an RDBStorage's connections)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def run_distributed(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Starts the chief and ``--workers`` workers, shows their combined
    progress and prints the leaderboard when the chief ends.

    Raises:
        CLIError: for bad data (before any process starts), failed workers
            or a failed chief.
    """
    import subprocess

    from ktplus.results import format_table, load_results

    started = time.time()
    data, objectives, _, where, logs = _prepare(args)
    port = _free_port()
    base_env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    procs: dict[str, Any] = {}
    files: list[IO[str]] = []
    for tuner_id in ["chief", *(f"tuner{i}" for i in range(args.workers))]:
        role = "chief" if tuner_id == "chief" else "worker"
        log = open(os.path.join(logs, f"{tuner_id}.log"), "w")  # noqa: SIM115 (closed below)
        files.append(log)
        procs[tuner_id] = subprocess.Popen(
            [sys.executable, "-m", "ktplus.cli", *child_argv(argv, role)],
            env={**base_env, "KERASTUNER_TUNER_ID": tuner_id}, stdout=log, stderr=subprocess.STDOUT)
    total = None if args.tuner == "hyperband" else args.trials
    progress = Progress(total, ",".join(objectives))
    print(f"ktplus: distributed {args.tuner} search on {data.name}: a chief and {args.workers} workers on "
          f"127.0.0.1:{port}; logs in {logs}", flush=True)
    reported: set[str] = set()
    last_done = -1
    try:
        while procs["chief"].poll() is None:
            time.sleep(1.0)
            done, scores = poll_trials(where)
            if done != last_done and done > 0:
                one = len(objectives) == 1  # several: a trial's score mixes them (no "best")
                best = (max if maximized(objectives[0]) else min)(scores) if scores and one else None
                progress.update(done, best)
                last_done = done
            for tuner_id, proc in procs.items():
                if tuner_id != "chief" and proc.poll() not in (None, 0) and tuner_id not in reported:
                    reported.add(tuner_id)
                    print(f"\nktplus: worker {tuner_id} exited with {proc.returncode}; its trial will be "
                          "re-queued", flush=True)
            workers = [p for t, p in procs.items() if t != "chief"]
            if all(p.poll() is not None for p in workers) and not all(p.returncode == 0 for p in workers):
                time.sleep(5)  # the chief notices finished workers within a second
                if procs["chief"].poll() is None:
                    procs["chief"].terminate()
                    procs["chief"].wait(timeout=30)
                    raise CLIError("ktplus: every worker exited and some failed; the search is incomplete "
                                   f"(see {logs}); run the same command again to resume")
        for proc in procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    except KeyboardInterrupt:
        _stop(procs)
        raise
    finally:
        for f in files:
            f.close()
    progress.close()
    if procs["chief"].returncode != 0:
        with open(os.path.join(logs, "chief.log")) as f:
            lines = [line.strip() for line in f if line.strip().startswith("ktplus")]
        raise CLIError(lines[-1] if lines else f"ktplus: the chief exited with {procs['chief'].returncode}; "
                       f"see {os.path.join(logs, 'chief.log')}")
    frame = load_results(where)
    scoring = scoring_text(args, objectives)
    print(f"\nLeaderboard ({len(frame)} trials, {scoring}):")
    print(format_table(frame, top=10))
    if len(objectives) > 1:
        from ktplus.cli._report import pareto_text
        from ktplus.reporting import load_pareto_front

        print("\n" + pareto_text(load_pareto_front(where), len(frame)))
    _chief_results(args, where, started)
    print(f"\nInspect the runs:\n  tensorboard --logdir {os.path.join(where, 'tensorboard')}\n"
          f"  ktplus report {where} --html report.html")
    return 0


def _chief_results(args: argparse.Namespace, where: str, started: float) -> None:
    """Prints what the chief did after the search: the test evaluation it
    recorded (``--test-split``) and the model it exported (``--export``)."""
    from ktplus.cli._report import evaluation_report
    from ktplus.evaluation._heldout import EVALUATION_FILE

    if args.test_split is not None:
        path = os.path.join(where, EVALUATION_FILE)
        report = evaluation_report(where) if os.path.isfile(path) and os.path.getmtime(path) >= started else None
        if report is None:
            raise CLIError("ktplus: the chief recorded no test evaluation; see "
                           f"{os.path.join(where, 'ktplus_workers', 'chief.log')}")
        print("\n" + report)
    if args.export:
        if not os.path.exists(args.export) or os.path.getmtime(args.export) < started:
            raise CLIError("ktplus: the chief exported no model; see "
                           f"{os.path.join(where, 'ktplus_workers', 'chief.log')}")
        print(f"\nExported the best configuration, trained on all the non-test samples, to {args.export}\n"
              f"  predict with: ktplus predict {args.export} FILE --output predictions.csv")
