"""The ``ktplus`` command line.

``ktplus search`` tunes a model on a built-in or user dataset with no code;
``ktplus report DIR`` shows a search's leaderboard; ``ktplus tensorboard DIR``
serves its logs. Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

FAMILY_CHOICES = ("dense", "conv", "residual", "auto")
TUNER_CHOICES = ("random", "bayesian", "hyperband", "grid")
LR_DECAY_CHOICES = ("none", "exponential", "step", "cosine", "polynomial", "plateau", "tune")
REGULARIZER_CHOICES = ("none", "l1", "l2", "l1_l2", "tune")


class CLIError(Exception):
    """An error reported as one line, with a non-zero exit."""


def _number(cast: Any, ok: Any, expected: str, words: dict[str, Any] | None = None) -> Any:
    """An argparse type: ``cast(text)`` that must satisfy ``ok``, or one of ``words``."""

    def parse(text: str) -> Any:
        key = text.strip().lower()
        if words and key in words:
            return words[key]
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_fraction = _number(float, lambda v: 0 < v < 1, "a number in (0, 1)")
#: --early-stopping: a patience, or on/off words (on: patience 5).
_patience = _number(int, lambda v: v >= 0, "a patience in epochs (>= 0) or on/off",
                    {"true": 5, "on": 5, "yes": 5, "false": 0, "off": 0, "no": 0, "none": 0})


def _regularizer(text: str) -> list[str]:
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not parts or any(p not in REGULARIZER_CHOICES for p in parts) or ("tune" in parts and len(parts) > 1):
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(REGULARIZER_CHOICES)} or a comma list such as l2,none; got {text!r}")
    return parts


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # --over must not pass for --overwrite
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # one line, exit 2, no usage dump
        raise CLIError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ktplus", description="Hyperparameter search for Keras models, with no code.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    s = sub.add_parser("search", help="run (or resume) a search and print its leaderboard")
    s.add_argument("--data", default="digits",
                   help="digits, breast_cancer, wine, iris (bundled with scikit-learn), or a path to an "
                        ".npz (arrays x, y) or a .csv (with --target) (default: digits)")
    s.add_argument("--target", help="the column to predict, for a .csv")
    s.add_argument("--family", default="dense", choices=FAMILY_CHOICES,
                   help="model family; auto searches over the families the input allows (default: dense)")
    s.add_argument("--tuner", default="random", choices=TUNER_CHOICES, help="search algorithm (default: random)")
    s.add_argument("--trials", type=_positive_int, default=10,
                   help="number of trials (default: 10; Hyperband sizes its brackets from --epochs)")
    s.add_argument("--epochs", type=_positive_int, default=10, help="epochs per trial (default: 10)")
    s.add_argument("--lr-decay", default="none", choices=LR_DECAY_CHOICES,
                   help="learning-rate schedule (default: none)")
    s.add_argument("--early-stopping", type=_patience, default=5, metavar="PATIENCE",
                   help="early-stopping patience in epochs, 0 or off to disable (default: 5)")
    s.add_argument("--pruning", default="median", choices=("median", "percentile", "none"),
                   help="pruning rule for hopeless trials (default: median)")
    s.add_argument("--regularizer", type=_regularizer, default=["none"],
                   help="none, l1, l2, l1_l2, a comma list to tune (l2,none), or tune (default: none)")
    s.add_argument("--directory", default="runs", help="where searches live (default: runs)")
    s.add_argument("--project", default=None, help="project name (default: the dataset's name)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--validation-split", type=_fraction, default=0.2,
                   help="fraction held out for validation (default: 0.2)")
    s.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    s.add_argument("--workers", type=_non_negative_int, default=0,
                   help="run keras-tuner's distributed search: a local chief and N worker processes on "
                        "127.0.0.1 (default: 0, one process)")
    s.add_argument("--role", choices=("chief", "worker"),
                   help="this process's part in a multi-host search (with KERASTUNER_* variables)")
    s.add_argument("-v", "--verbose", action="store_true", help="keras-tuner's and Keras' own output")
    r = sub.add_parser("report", help="the leaderboard of a finished or running search")
    r.add_argument("dir", help="the search's project directory, e.g. runs/digits")
    r.add_argument("--format", default="table", choices=("table", "csv", "json"))
    r.add_argument("--top", type=_positive_int, default=None, help="only the N best trials")
    r.add_argument("--plot", metavar="FILE.png", help="also draw the objective per trial and per hyperparameter")
    t = sub.add_parser("tensorboard", help="serve a search's TensorBoard logs on 127.0.0.1")
    t.add_argument("dir", help="the search's project directory, e.g. runs/digits")
    t.add_argument("--port", type=_non_negative_int, default=0, help="port (default: a free one)")
    return parser


# -- search ---------------------------------------------------------------------------------------

def _load_data(args: argparse.Namespace) -> Any:
    from ktplus import datasets

    if args.data in datasets.BUILTIN:
        if args.target:
            raise CLIError(f"ktplus: --target is for .csv files, not the built-in dataset {args.data!r}")
        return datasets.load(args.data)
    if os.sep not in args.data and "." not in args.data:
        raise CLIError(f"ktplus: --data: unknown dataset {args.data!r}; expected one of "
                       f"{', '.join(datasets.BUILTIN)} or a path to an .npz or .csv file")
    try:
        return datasets.load_file(args.data, args.target)
    except datasets.DataError as e:
        raise CLIError(f"ktplus: --data: {e}") from None


def _shape_for(family: str, data: Any) -> tuple[Any, str]:
    """The input array for the family, and the family to build."""
    x = data.x
    spatial = data.image_shape is not None or x.ndim >= 3
    if data.image_shape is not None and family != "dense":
        x = x.reshape((-1, *data.image_shape))
    if family in ("conv", "residual") and not spatial:
        raise CLIError(f"ktplus: --family {family} needs image or sequence data (x with 3+ dimensions, or "
                       f"digits); {data.name!r} is tabular: use --family dense or auto")
    if family == "residual" and x.ndim > 4:
        raise CLIError("ktplus: --family residual takes sequences or images (x with 3 or 4 dimensions)")
    if family == "auto" and not spatial:
        family = "dense"
    return x, family


def _hypermodel(family: str, x: Any, data: Any, regularizer: list[str]) -> Any:
    import ktplus

    classes = {"dense": ktplus.DenseHyperModel, "conv": ktplus.ConvHyperModel,
               "residual": ktplus.ResidualHyperModel, "auto": ktplus.AutoHyperModel}
    reg: Any = ["l1", "l2", "l1_l2", None] if regularizer == ["tune"] else [
        None if r == "none" else r for r in regularizer]
    reg = reg[0] if len(reg) == 1 else reg
    kwargs: dict[str, Any] = {"regularizer": reg}
    if data.task == "regression":
        kwargs["task"] = "regression"
    else:
        kwargs["num_classes"] = data.num_classes
    return classes[family](input_shape=x.shape[1:], **kwargs)


def _space_signature(hps: Any) -> dict[str, Any]:
    return {hp.name: {k: v for k, v in hp.get_config().items() if k not in ("default", "conditions")}
            for hp in hps.space if not hp.name.startswith("tuner/")}


def _check_same_space(project_dir: str, hypermodel: Any, tuner_name: str, lr_decay: str) -> None:
    """A directory that holds another search is an error, not a silent mix."""
    import keras_tuner

    from ktplus.results import META_FILE
    from ktplus.training import _schedules

    oracle_file = os.path.join(project_dir, "oracle.json")
    if not os.path.isfile(oracle_file):
        return
    try:
        with open(oracle_file) as f:
            saved = keras_tuner.HyperParameters.from_config(json.load(f)["hyperparameters"])
    except (OSError, ValueError, KeyError) as e:
        raise CLIError(f"ktplus: {project_dir} holds an unreadable search ({e}); use --overwrite or "
                       "another --project") from None
    try:
        with open(os.path.join(project_dir, META_FILE)) as f:
            saved_tuner = json.load(f).get("tuner")
    except (OSError, ValueError):
        saved_tuner = None
    if saved_tuner and saved_tuner != tuner_name:
        raise CLIError(f"ktplus: {project_dir} holds a {saved_tuner} search, not {tuner_name}; use the same "
                       "--tuner to resume it, --overwrite to replace it, or another --project")
    fresh = keras_tuner.HyperParameters()
    hypermodel.build(fresh)
    if lr_decay == "tune":
        _schedules.declare_tuned_decay(fresh)
    ours, theirs = _space_signature(fresh), _space_signature(saved)
    if ours != theirs:
        changed = sorted(set(ours) ^ set(theirs)) or sorted(k for k in ours if ours[k] != theirs[k])
        raise CLIError(f"ktplus: {project_dir} holds a search with a different search space (differs in: "
                       f"{', '.join(changed[:6])}); use --overwrite to replace it or another --project")


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """Trial i of N, best so far, elapsed and remaining time, as a bar on a
    terminal and as one line per trial otherwise."""

    WIDTH = 24

    def __init__(self, total: int | None, objective: str, stream: Any = None) -> None:
        self.total = total
        self.objective = objective
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.done_at_start: int | None = None

    def update(self, done: int, best: float | None, last: str = "") -> None:
        if self.done_at_start is None:
            self.done_at_start = done - 1 if done else 0
        elapsed = time.monotonic() - self.start
        ran = done - self.done_at_start
        parts = []
        if self.total:
            filled = int(self.WIDTH * min(done, self.total) / self.total)
            parts.append(f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] trial {done}/{self.total}")
        else:
            parts.append(f"trial {done}")
        if best is not None:
            parts.append(f"best {self.objective} {best:.4g}")
        parts.append(f"{_fmt_seconds(elapsed)} elapsed")
        if self.total and ran > 0 and done < self.total:
            parts.append(f"~{_fmt_seconds(elapsed / ran * (self.total - done))} left")
        line = " | ".join(parts) + (f" | {last}" if last and not self.tty else "")
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _hyperband_total(oracle: Any) -> int | None:
    try:
        total = 0
        for bracket in range(oracle._get_num_brackets()):
            for round_num in range(oracle._get_num_rounds(bracket)):
                total += oracle._get_size(bracket, round_num)
        return total * oracle.hyperband_iterations
    except Exception:
        return None


def _with_progress(cls: Any, progress_factory: Any) -> Any:
    class WithProgress(cls):  # type: ignore[misc, valid-type]
        def on_search_begin(self) -> None:
            super().on_search_begin()
            self._progress = progress_factory(self)

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)
            finished = [t for t in self.oracle.trials.values()
                        if str(t.status) in ("COMPLETED", "FAILED")]
            best = self.oracle.get_best_trials(1)
            score = best[0].score if best and best[0].score is not None else None
            status = str(trial.status).lower()
            if trial.metrics.exists("pruned") and trial.metrics.get_last_value("pruned"):
                status = "pruned"
            detail = f"trial {trial.trial_id} {status}" + (
                f" ({self.oracle.objective.name} {trial.score:.4g})" if trial.score is not None else "")
            self._progress.update(len(finished), score, detail)

        def on_search_end(self) -> None:
            super().on_search_end()
            self._progress.close()

    WithProgress.__name__ = cls.__name__
    WithProgress.__qualname__ = cls.__qualname__
    return WithProgress


def _quiet_runtime() -> None:
    """Keeps TensorFlow's and Keras' per-trial chatter off the terminal."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def run_search(args: argparse.Namespace) -> int:
    from ktplus import datasets

    # Everything that can be checked without TensorFlow is checked first.
    data = _load_data(args)
    x, family = _shape_for(args.family, data)
    (x_train, y_train), (x_val, y_val) = datasets.split(x, data.y, fractions=(args.validation_split,),
                                                         seed=args.seed)
    if len(x_val) < 1 or len(x_train) < 2:
        raise CLIError(f"ktplus: --validation-split {args.validation_split} leaves no data to train or "
                       f"validate on ({len(data.x)} rows)")
    if data.image_shape is None and x.ndim == 2:
        x_train, x_val = datasets.standardize(x_train, x_val)

    from ktplus._quiet import import_quietly

    import_quietly()
    if not args.verbose:
        _quiet_runtime()
    import keras

    import ktplus
    from ktplus.results import format_table

    hypermodel = _hypermodel(family, x, data, args.regularizer)
    project = args.project or data.name
    project_dir = os.path.join(args.directory, project)
    tuner_cls = {"random": ktplus.RandomSearch, "bayesian": ktplus.BayesianOptimization,
                 "hyperband": ktplus.Hyperband, "grid": ktplus.GridSearch}[args.tuner]
    if not args.overwrite and args.role != "worker":
        _check_same_space(project_dir, hypermodel, tuner_cls.__name__, args.lr_decay)
    objective = "val_accuracy" if data.task == "classification" else "val_loss"
    budget = {"max_epochs": args.epochs} if args.tuner == "hyperband" else {"max_trials": args.trials}

    def progress_factory(tuner: Any) -> Progress:
        total = _hyperband_total(tuner.oracle) if args.tuner == "hyperband" else args.trials
        return Progress(total, objective)

    cls = tuner_cls if args.verbose or args.role else _with_progress(tuner_cls, progress_factory)
    keras.utils.set_random_seed(args.seed)
    tuner = cls(
        hypermodel,
        objective=objective,
        seed=args.seed,
        directory=args.directory,
        project_name=project,
        overwrite=args.overwrite,
        lr_decay=None if args.lr_decay == "none" else args.lr_decay,
        early_stopping=args.early_stopping or None,
        pruning=None if args.pruning == "none" else args.pruning,
        **budget,
    )
    if not args.role:
        print(f"ktplus: {args.tuner} search of {family} models on {data.name} ({len(x_train)} train / "
              f"{len(x_val)} validation samples), objective {objective}; logs in {project_dir}", flush=True)
    start = time.time()
    search_kwargs = {} if args.tuner == "hyperband" else {"epochs": args.epochs}
    try:
        tuner.search(x_train, y_train, validation_data=(x_val, y_val), verbose=1 if args.verbose else 0,
                     **search_kwargs)
    except KeyboardInterrupt:
        print("", flush=True)
        raise
    except RuntimeError as e:  # keras-tuner's "too many consecutive failures"
        raise CLIError(f"ktplus: search stopped: {str(e).splitlines()[0]}") from None
    if args.role:
        return 0
    frame = tuner.results()
    print(f"\nLeaderboard ({len(frame)} trials, objective {objective}, {time.time() - start:.0f} s):")
    print(format_table(frame, top=10))
    print(f"\nInspect the runs:\n  tensorboard --logdir {tuner.tensorboard_dir}")
    return 0


# -- distributed ----------------------------------------------------------------------------------

def _child_argv(argv: Sequence[str], role: str) -> list[str]:
    """The user's search arguments, minus --workers and --overwrite, plus the role."""
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


def _poll_trials(project_dir: str) -> tuple[int, list[float]]:
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


def run_distributed(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """A local chief and ``--workers`` worker processes on 127.0.0.1, one
    combined progress display, then the leaderboard."""
    import shutil
    import signal
    import socket
    import subprocess

    from ktplus.results import format_table, load_results

    data = _load_data(args)  # fail fast, in this process, before starting anything
    _shape_for(args.family, data)
    project = args.project or data.name
    project_dir = os.path.join(args.directory, project)
    if args.overwrite and os.path.isdir(project_dir):
        shutil.rmtree(project_dir)
    logs = os.path.join(project_dir, "ktplus_workers")
    os.makedirs(logs, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base_env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    procs: dict[str, Any] = {}
    files = []
    for tuner_id in ["chief", *(f"tuner{i}" for i in range(args.workers))]:
        role = "chief" if tuner_id == "chief" else "worker"
        log = open(os.path.join(logs, f"{tuner_id}.log"), "w")  # noqa: SIM115 (closed below)
        files.append(log)
        procs[tuner_id] = subprocess.Popen(
            [sys.executable, "-m", "ktplus.cli", *_child_argv(argv, role)],
            env={**base_env, "KERASTUNER_TUNER_ID": tuner_id}, stdout=log, stderr=subprocess.STDOUT)
    objective = "val_accuracy" if data.task == "classification" else "val_loss"
    total = None if args.tuner == "hyperband" else args.trials
    progress = Progress(total, objective)
    print(f"ktplus: distributed {args.tuner} search on {data.name}: a chief and {args.workers} workers on "
          f"127.0.0.1:{port}; logs in {logs}", flush=True)
    reported: set[str] = set()
    last_done = -1
    try:
        while procs["chief"].poll() is None:
            time.sleep(1.0)
            done, scores = _poll_trials(project_dir)
            if done != last_done and done > 0:
                best = (max if objective == "val_accuracy" else min)(scores) if scores else None
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
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
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
    frame = load_results(project_dir)
    print(f"\nLeaderboard ({len(frame)} trials, objective {objective}):")
    print(format_table(frame, top=10))
    print(f"\nInspect the runs:\n  tensorboard --logdir {os.path.join(project_dir, 'tensorboard')}")
    return 0


# -- report and tensorboard -----------------------------------------------------------------------

def run_report(args: argparse.Namespace) -> int:
    from ktplus.results import format_table, leaderboard, load_results, plot

    try:
        frame = load_results(args.dir)
    except ValueError as e:
        raise CLIError(f"ktplus report: {e}") from None
    if args.format == "table":
        print(f"{len(frame)} trials in {args.dir}, objective {frame.attrs.get('objective')} "
              f"({frame.attrs.get('direction')})")
        print(format_table(frame, args.top))
    elif args.format == "csv":
        sys.stdout.write(leaderboard(frame, args.top).to_csv(index=False))
    else:
        sys.stdout.write(leaderboard(frame, args.top).to_json(orient="records", indent=1) + "\n")
    if args.plot:
        if not args.plot.lower().endswith(".png"):
            raise CLIError(f"ktplus report: --plot expects a .png path, got {args.plot!r}")
        try:
            plot(frame, args.plot)
        except OSError as e:
            raise CLIError(f"ktplus report: cannot write {args.plot}: {e.strerror}") from None
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0


def run_tensorboard(args: argparse.Namespace) -> int:
    import socket
    import subprocess

    from ktplus.results import _find_project

    if not os.path.isdir(args.dir):
        raise CLIError(f"ktplus tensorboard: no such directory: {args.dir}")
    try:
        project = _find_project(args.dir)
        logdir = os.path.join(project, "tensorboard")
    except ValueError:
        logdir = args.dir  # a log directory itself
    if not os.path.isdir(logdir):
        raise CLIError(f"ktplus tensorboard: {args.dir} has no TensorBoard logs ({logdir} is missing)")
    port = args.port
    if port == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", logdir,
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    print(f"TensorBoard for {logdir} at http://127.0.0.1:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        _, err = proc.communicate()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=10)
        return 0
    if proc.returncode:
        last = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or ["unknown error"]
        raise CLIError(f"ktplus tensorboard: tensorboard exited with {proc.returncode}: {last[0]}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ktplus`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command == "search":
            if args.workers and not args.role:
                return run_distributed(args, argv)
            return run_search(args)
        if args.command == "report":
            return run_report(args)
        if args.command == "tensorboard":
            return run_tensorboard(args)
        parser.print_help()
        return 0
    except CLIError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ktplus: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as e:  # never a traceback for the user; -v shows one
        if "-v" in argv or "--verbose" in argv:
            raise
        print(f"ktplus: error: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
