"""The `ktplus` command.

Real processes where the test is about one: the shared search of digits,
Ctrl-C and the resume after it, ``ktplus tensorboard`` serving its logs and
the import that must not load TensorFlow. The rest (resumes, reports, other
data, bad input) call `ktplus.cli.main` in this process, where TensorFlow
is loaded already, and read what it wrote to the file descriptors.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ktplus.cli
from ktplus import cli, datasets
from ktplus.results import plot

FAST = ["--trials", "2", "--epochs", "2"]


def ktplus(*args, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "ktplus.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def main(capfd, *args):
    """``ktplus ARGS`` in this process, from the current directory: a
    CompletedProcess with main()'s exit status and what it wrote to stdout
    and stderr (file descriptors included)."""
    capfd.readouterr()
    code = cli.main(list(args))
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(["ktplus", *args], code, out, err)


def one_line_error(result, needle):
    assert result.returncode not in (0, None), result.stdout
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and needle in err, err
    return err


@pytest.fixture(scope="module")
def digits_search(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    result = ktplus("search", *FAST, "--directory", "out", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd, result


def test_search_writes_logs_and_prints_progress_and_leaderboard(digits_search):
    cwd, result = digits_search
    out = result.stdout
    assert "trial 1/2" in out and "trial 2/2" in out and "elapsed" in out
    assert "Leaderboard (2 trials" in out
    assert "tensorboard --logdir out/digits/tensorboard" in out
    assert "Search: Running Trial" not in out  # keras-tuner's wall of text is off
    board = out.split("Leaderboard")[1].splitlines()
    assert sum(1 for line in board if line.split()[:1] in (["0"], ["1"])) == 2
    events = list(Path(cwd, "out", "digits", "tensorboard").rglob("events.out.tfevents*"))
    assert len(events) >= 4
    assert "Traceback" not in result.stderr


def test_running_again_resumes(digits_search, capfd, monkeypatch):
    cwd, _ = digits_search
    monkeypatch.chdir(cwd)
    trial = Path(cwd, "out", "digits", "trial_0", "trial.json")
    before = trial.read_bytes()
    again = main(capfd, "search", *FAST, "--directory", "out")  # another process than the search's
    assert again.returncode == 0, again.stderr
    assert "Leaderboard (2 trials" in again.stdout and "trial 1/2" not in again.stdout
    assert trial.read_bytes() == before
    more = main(capfd, "search", "--trials", "3", "--epochs", "2", "--directory", "out")
    assert more.returncode == 0, more.stderr
    assert "trial 3/3" in more.stdout and "Leaderboard (3 trials" in more.stdout


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_report_formats(digits_search, fmt, capfd, monkeypatch):
    cwd, _ = digits_search
    monkeypatch.chdir(cwd)
    result = main(capfd, "report", "out/digits", "--format", fmt, "--top", "2")
    assert result.returncode == 0, result.stderr
    if fmt == "csv":
        rows = list(pd.read_csv(pd.io.common.StringIO(result.stdout)).itertuples())
        assert len(rows) == 2 and {"status", "score", "epochs", "layers"} <= set(rows[0]._fields)
    elif fmt == "json":
        rows = json.loads(result.stdout)
        assert len(rows) == 2 and rows[0]["score"] >= rows[1]["score"]
        assert rows[0]["status"] in ("completed", "pruned")
    else:
        assert "objective val_accuracy (max)" in result.stdout and "score" in result.stdout


def test_report_plot(digits_search, capfd, monkeypatch):
    cwd, _ = digits_search
    monkeypatch.chdir(cwd)
    result = main(capfd, "report", "out/digits", "--plot", "plot.png")
    assert result.returncode == 0, result.stderr
    png = Path(cwd, "plot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_tensorboard_command_serves_the_logs(digits_search):
    cwd, _ = digits_search
    proc = subprocess.Popen([sys.executable, "-m", "ktplus.cli", "tensorboard", "out/digits"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line
        url = line.split(" at ")[1].split()[0]
        deadline = time.monotonic() + 60
        runs = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "data/runs", timeout=5) as r:
                    runs = json.loads(r.read())
                if runs:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert runs and "trial_0" in runs
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_npz_images_with_conv_and_hyperband(tmp_path, capfd, monkeypatch):
    data = datasets.load("digits")
    np.savez(tmp_path / "imgs.npz", x=data.x[:300].reshape(-1, 8, 8, 1), y=data.y[:300])
    monkeypatch.chdir(tmp_path)
    result = main(capfd, "search", "--data", "imgs.npz", "--family", "conv", "--tuner", "hyperband",
                  "--epochs", "2", "--lr-decay", "cosine", "--directory", "o")
    assert result.returncode == 0, result.stderr
    assert "search of conv models on imgs" in result.stdout and "Leaderboard" in result.stdout


def test_csv_with_categorical_target_auto_family_and_options(tmp_path, capfd, monkeypatch):
    wine = datasets.load("wine")
    frame = pd.DataFrame(wine.x, columns=[f"f{i}" for i in range(wine.x.shape[1])])
    frame["kind"] = np.array(["red", "white", "rose"])[wine.y]
    frame.to_csv(tmp_path / "wine.csv", index=False)
    monkeypatch.chdir(tmp_path)
    result = main(capfd, "search", "--data", "wine.csv", "--target", "kind", "--family", "auto", "--tuner",
                  "bayesian", *FAST, "--regularizer", "l2,none", "--pruning", "none",
                  "--early-stopping", "0", "--directory", "o")
    assert result.returncode == 0, result.stderr
    assert "search of dense models on wine" in result.stdout
    report = main(capfd, "report", "o/wine", "--format", "json")
    rows = json.loads(report.stdout)
    assert {r["regularizer"] for r in rows} <= {"l2", "none"}


def test_csv_regression_target(tmp_path, capfd, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["price"] = x @ [1.5, -2.0, 0.5] + rng.normal(scale=0.1, size=120)
    frame.to_csv(tmp_path / "prices.csv", index=False)
    monkeypatch.chdir(tmp_path)
    result = main(capfd, "search", "--data", "prices.csv", "--target", "price", *FAST, "--directory", "o")
    assert result.returncode == 0, result.stderr
    assert "objective val_loss" in result.stdout


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # -v: unquiet Keras
def test_verbose_shows_keras_tuner_output(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = main(capfd, "search", "--data", "iris", "--trials", "1", "--epochs", "1", "-v", "--directory", "o")
    assert result.returncode == 0, result.stderr
    assert "Running Trial" in result.stdout


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path, capfd, monkeypatch):
    # Trials are still to run when "trial 1/4" is printed (the default pack asks for two at a time:
    # at least two more trainings follow): Ctrl-C lands mid-search.
    args = ["search", "--data", "iris", "--trials", "4", "--epochs", "10", "--early-stopping", "0",
            "--pruning", "none", "--directory", "o"]
    proc = subprocess.Popen([sys.executable, "-m", "ktplus.cli", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    while line and "trial 1/4" not in line:
        line = proc.stdout.readline()
    assert "trial 1/4" in line
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err and "Traceback" not in err
    monkeypatch.chdir(tmp_path)
    again = main(capfd, *args)  # the same command, in another process than the interrupted one
    assert again.returncode == 0, again.stderr
    assert "Leaderboard (4 trials" in again.stdout
    statuses = json.loads(main(capfd, "report", "o/iris", "--format", "json").stdout)
    assert sorted(r["status"] for r in statuses) == ["completed"] * 4


def _write_bad_inputs(tmp_path):
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=10), "y": [0, 1] * 5}).to_csv(tmp_path / "ok.csv", index=False)
    pd.DataFrame({"a": rng.normal(size=10), "color": ["r", "g"] * 5, "y": [0, 1] * 5}).to_csv(
        tmp_path / "text.csv", index=False)
    nan = pd.DataFrame({"a": rng.normal(size=10), "y": [0, 1] * 5})
    nan.loc[3, "a"] = np.nan
    nan.to_csv(tmp_path / "nan.csv", index=False)
    np.savez(tmp_path / "mismatch.npz", x=rng.normal(size=(10, 3)), y=np.zeros(9))
    np.savez(tmp_path / "inf.npz", x=np.array([[1.0, np.inf]] * 10), y=np.array([0, 1] * 5))
    np.savez(tmp_path / "nox.npz", features=rng.normal(size=(10, 3)), y=np.zeros(10))
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file")
    (tmp_path / "data.txt").write_text("1,2\n")


BAD = [
    (["search", "--data", "mnist"], "unknown dataset 'mnist'"),
    (["search", "--data", "missing.csv", "--target", "y"], "no such file"),
    (["search", "--data", "garbage.npz"], "cannot read"),
    (["search", "--data", "data.txt"], "unsupported file type"),
    (["search", "--data", "ok.csv"], "needs --target"),
    (["search", "--data", "ok.csv", "--target", "label"], "no column 'label'"),
    (["search", "--data", "text.csv", "--target", "y"], "non-numeric feature columns: color"),
    (["search", "--data", "nan.csv", "--target", "y"], "NaN or inf"),
    (["search", "--data", "inf.npz"], "NaN or inf"),
    (["search", "--data", "mismatch.npz"], "x has 10 rows but y has 9"),
    (["search", "--data", "nox.npz"], "no array 'x'"),
    (["search", "--trials", "0"], "--trials"),
    (["search", "--family", "transformer"], "--family"),
    (["search", "--tuner", "annealing"], "--tuner"),
    (["search", "--lr-decay", "linear"], "--lr-decay"),
    (["search", "--regularizer", "l3"], "--regularizer"),
    (["search", "--data", "wine", "--family", "conv"], "--family conv"),
    (["search", "--validation-split", "1.5"], "--validation-split"),
    (["search", "--early-stopping", "-1"], "--early-stopping"),
    (["search", "--pack", "0"], "--pack"),
    (["search", "--pack", "many"], "--pack"),
    (["report", "nowhere"], "nowhere"),
    (["report", "."], "project directory"),
    (["tensorboard", "nowhere"], "nowhere"),
    (["frobnicate"], "frobnicate"),
]


@pytest.mark.parametrize(("flag", "expected"), [([], "auto"), (["--pack", "auto"], "auto"), (["--pack", "3"], 3),
                                              (["--pack", "1"], 1)])
def test_pack_flag_reaches_the_tuner(flag, expected):
    from ktplus.cli._parser import build_parser
    from ktplus.cli._search import _tuner_options

    args = build_parser().parse_args(["search", *flag])
    assert _tuner_options(args)["pack"] == expected


@pytest.mark.parametrize(("args", "needle"), BAD, ids=[f"{i}-{b[1][:20]}" for i, b in enumerate(BAD)])
def test_bad_input_is_one_line_and_nonzero(args, needle, tmp_path, capfd, monkeypatch):
    _write_bad_inputs(tmp_path)
    before = sorted(os.listdir(tmp_path))
    monkeypatch.chdir(tmp_path)
    result = main(capfd, *args)
    one_line_error(result, needle)
    assert sorted(os.listdir(tmp_path)) == before  # nothing written before the error


def test_a_directory_with_another_search_space_is_refused(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = main(capfd, "search", "--data", "iris", "--trials", "1", "--epochs", "1", "--directory", "o")
    assert first.returncode == 0, first.stderr
    trial = (tmp_path / "o" / "iris" / "trial_0" / "trial.json").read_bytes()
    other = main(capfd, "search", "--data", "iris", "--trials", "1", "--epochs", "1", "--directory", "o",
                 "--regularizer", "l2,none")
    one_line_error(other, "different search space")
    tuner = main(capfd, "search", "--data", "iris", "--tuner", "grid", "--trials", "1", "--directory", "o")
    one_line_error(tuner, "holds a RandomSearch search")
    assert (tmp_path / "o" / "iris" / "trial_0" / "trial.json").read_bytes() == trial


# -- --task -----------------------------------------------------------------------------------------

def _integer_prices(n=120):
    """Features and an integer target (a price in whole units) with few distinct values, which
    the inference takes for class labels."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    price = np.clip(np.round(10 + 3 * x[:, 0] - 2 * x[:, 1]), 1, 20).astype("int64")
    return x, price


def test_task_regression_keeps_an_integer_target_a_number(tmp_path, capfd, monkeypatch):
    x, price = _integer_prices()
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["price"] = price
    frame.to_csv(tmp_path / "prices.csv", index=False)
    assert datasets.load_file(str(tmp_path / "prices.csv"), "price").task == "classification"  # inferred
    monkeypatch.chdir(tmp_path)
    result = main(capfd, "search", "--data", "prices.csv", "--target", "price", "--task", "regression",
                  "--trials", "1", "--epochs", "1", "--directory", "o")
    assert result.returncode == 0, result.stderr
    assert "regression, objective val_loss" in result.stdout and "Leaderboard (1 trials" in result.stdout
    report = main(capfd, "report", "o/prices")
    assert "objective val_loss (min)" in report.stdout, report.stdout


def test_task_on_npz_and_builtin_datasets(tmp_path):
    x, counts = _integer_prices(40)
    np.savez(tmp_path / "counts.npz", x=x, y=counts.astype("float64"))
    data = datasets.load_file(str(tmp_path / "counts.npz"), task="regression")
    assert data.task == "regression" and data.y.dtype == np.float32 and data.num_classes is None
    np.testing.assert_array_equal(data.y, counts)
    assert datasets.load("iris", task="regression").task == "regression"
    assert datasets.load("iris", task="classification").num_classes == 3
    whole = datasets.load_file(str(tmp_path / "counts.npz"), task="classification")  # integer floats too
    assert whole.task == "classification" and whole.class_names == sorted(set(counts.tolist()))
    with pytest.raises(ValueError, match="task"):
        datasets.load("iris", task="ranking")


def test_task_classification_refuses_non_integer_targets(tmp_path, capfd, monkeypatch):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=20), "y": [1.5, 2.25, 3.0, 4.0] * 5})
    frame.to_csv(tmp_path / "frac.csv", index=False)
    monkeypatch.chdir(tmp_path)
    result = main(capfd, "search", "--data", "frac.csv", "--target", "y", "--task", "classification",
                  "--directory", "o")
    assert result.returncode == 2
    err = one_line_error(result, "--task classification")
    assert "1.5" in err and "2.25" in err
    assert not (tmp_path / "o").exists()


def test_a_bad_task_is_argparses_one_line_error(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = main(capfd, "search", "--task", "bogus")
    assert result.returncode == 2
    err = one_line_error(result, "--task")
    assert "bogus" in err and "classification" in err and "regression" in err


# -- no global side effects -------------------------------------------------------------------------

def test_importing_the_cli_does_not_import_tensorflow():
    code = ("import sys, ktplus.cli; from ktplus.cli import main, build_parser, CLIError; "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')], 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_an_in_process_search_leaves_warning_filters_and_log_levels_alone(tmp_path, capsys):
    import ktplus.tuners  # noqa: F401  (third-party libraries add their own filters on first import)

    filters = list(warnings.filters)
    levels = {name: logging.getLogger(name).level for name in ("tensorflow", "absl")}
    code = ktplus.cli.main(["search", "--data", "iris", "--trials", "1", "--epochs", "1", "--directory",
                            str(tmp_path / "o")])
    assert code == 0, capsys.readouterr().err
    assert "Leaderboard (1 trials" in capsys.readouterr().out
    assert warnings.filters == filters
    assert {name: logging.getLogger(name).level for name in levels} == levels


def test_quiet_search_hides_only_known_library_noise():
    from ktplus.cli._search import quiet_search

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_search():
            warnings.warn("Your input ran out of data; interrupting training.", UserWarning, stacklevel=1)
            warnings.warn_explicit("old API", DeprecationWarning, "keras_tuner/engine.py", 1,
                                   module="keras_tuner.src.engine.oracle")
            warnings.warn("the user's own warning", UserWarning, stacklevel=1)
            assert logging.getLogger("tensorflow").level == logging.ERROR
    assert [str(w.message) for w in caught] == ["the user's own warning"]


def test_plot_keeps_the_matplotlib_backend(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        frame = pd.DataFrame({"trial_id": ["0", "1", "2"], "status": ["completed"] * 3,
                              "score": [0.5, 0.7, 0.6], "units": [32, 64, 128],
                              "activation": ["relu", "tanh", "relu"]})
        frame.attrs.update(objective="val_accuracy", direction="max")
        plot(frame, str(tmp_path / "plot.png"))
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    png = (tmp_path / "plot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
