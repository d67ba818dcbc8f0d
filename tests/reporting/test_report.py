"""The HTML report, opened in headless Chromium: every figure a search has
the data for, no console error, nothing loaded from the network; edge
cases render what they can or fail in one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import keras
import keras_tuner
import numpy as np
import pytest

import ktplus
from tests.browser import chromium, console_errors, screenshot

EPOCHS = 5
#: What the page must hold for a search with that data.
SINGLE = ["history", "curves", "parallel", "importance", "slices", "confusion"]
MULTI = ["history", "curves", "parallel", "importance", "slices", "pareto", "cv"]


def data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    return x, y


def build(hp):
    """Trial kinds chosen by `mode`: good ones (the first with a conditional
    `units`), one that cannot learn (pruned), one with a NaN loss (failed)."""
    mode = hp.Choice("mode", ["good", "good2", "bad", "nan"])
    with hp.conditional_scope("mode", ["good"]):
        units = hp.Int("units", 4, 16, step=4)
    lr = hp.Float("learning_rate", 1e-3, 1e-1, sampling="log")
    inputs = keras.Input((4,))
    x = keras.layers.Dense(units or 8, activation="relu")(inputs)
    if mode == "nan":
        x = keras.layers.Rescaling(float("inf"))(x)
    # "bad" predicts 50/50 for ever (zero weights, no learning): below the median from epoch 2 on
    outputs = keras.layers.Dense(2, activation="softmax", kernel_initializer="zeros" if mode == "bad"
                                 else "glorot_uniform")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(0.0 if mode == "bad" else lr), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """A pruned, failed, conditional, held-out-evaluated single-objective search."""
    root = tmp_path_factory.mktemp("single")
    x, y = data()
    tuner = ktplus.RandomSearch(build, objective="val_accuracy", max_trials=7, seed=3, directory=root,
                                project_name="p",
                                pruning=ktplus.MedianPruner(n_startup_trials=2, n_warmup_epochs=1))
    for values in ({"mode": "good", "units": 8, "learning_rate": 0.05}, {"mode": "good2", "learning_rate": 0.03},
                   {"mode": "bad", "learning_rate": 0.01}, {"mode": "nan", "learning_rate": 0.01}):
        tuner.enqueue_trial(values)
    tuner.search(x[:64], y[:64], validation_data=(x[64:96], y[64:96]), epochs=EPOCHS, verbose=0)
    tuner.evaluate(x[96:], y[96:])
    return tuner


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    """A cross-validated search with two objectives."""
    root = tmp_path_factory.mktemp("multi")
    x, y = data(seed=1)
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=[2, 8, 32],
                                learning_rate=(1e-3, 1e-1))
    tuner = ktplus.RandomSearch(hm, objective=["val_accuracy", "num_params"], max_trials=4, seed=2, cv=2,
                                directory=root, project_name="m")
    tuner.search(x[:96], y[:96], epochs=3, verbose=0)
    return tuner


@pytest.fixture(scope="module")
def reports(single, multi, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    paths = {"single": str(out / "single.html"), "multi": str(out / "multi.html")}
    assert ktplus.report(single.project_dir, paths["single"]) == paths["single"]
    ktplus.report(multi.project_dir, paths["multi"])
    return paths


_FIGURES = """
return Array.from(document.querySelectorAll('[data-figure]')).map(d => ({
  name: d.dataset.figure,
  plot: !!d.querySelector('.js-plotly-plot .main-svg'),
  traces: (d.querySelector('.js-plotly-plot') || {}).data ? d.querySelector('.js-plotly-plot').data.length : 0,
}));
"""
_LOADS = """
const urls = performance.getEntriesByType('resource').map(e => e.name);
const refs = Array.from(document.querySelectorAll('[src], link[href]')).map(e => e.getAttribute('src')
  || e.getAttribute('href'));
return {resources: urls, refs: refs, scripts: document.scripts.length};
"""


def open_report(driver, path):
    driver.get("file://" + os.path.abspath(path))
    figures = None
    for _ in range(100):
        figures = driver.execute_script(_FIGURES)
        if figures and all(f["plot"] for f in figures):
            break
        driver.implicitly_wait(0.1)
    return figures, driver.execute_script(_LOADS), console_errors(driver)


def test_reports_render_every_figure_offline_in_chromium(reports, single, multi):
    with chromium() as driver:
        for name, expected in (("single", SINGLE), ("multi", MULTI)):
            figures, loads, errors = open_report(driver, reports[name])
            assert errors == [], (name, errors)
            present = {f["name"]: f for f in figures}
            for figure in expected:
                assert figure in present, (name, figure, sorted(present))
                assert present[figure]["plot"] and present[figure]["traces"] > 0, (name, figure)
            assert loads["resources"] == [], loads  # nothing fetched: not the network, not another file
            assert loads["refs"] == [], loads
            text = driver.find_element("tag name", "body").text
            assert "fANOVA" in text  # the importance method is named
            if name == "single":
                shot = screenshot(driver, "report.png", full_page=True)
                assert shot.stat().st_size > 20_000


def test_single_objective_page_holds_the_searchs_facts(reports, single):
    html = open(reports["single"]).read()
    assert len(re.findall(r"<script[^>]*\bsrc=", html)) == 0  # every script inlined
    assert html.count("plotly.js v") == 1  # plotly.js once, not per figure
    assert 'data-figure="pareto"' not in html and 'data-figure="cv"' not in html  # nothing it lacks
    statuses = {ktplus.load_results(single.project_dir).set_index("trial_id").loc[t, "status"]
                for t in single.oracle.trials}
    assert {"completed", "pruned", "failed"} <= statuses
    for status in ("completed", "pruned", "failed"):
        assert re.search(rf"{status} \(\d+\)", html), status  # history marks each status apart
    best = single.oracle.get_best_trials(1)[0]
    assert f"trial {best.trial_id}: score" in html
    assert "RandomSearch" in html and "val_accuracy (max)" in html
    assert "(inactive)" in html  # `units` is conditional: the parallel coordinates show where it is off
    assert re.findall(r"https?://", html) == []  # the page names no address, inlined plotly.js included


def test_pruned_trial_curve_ends_where_it_was_stopped(single):
    from ktplus.reporting import load_search

    search = load_search(single.project_dir)
    curves = search.curves()
    frame = ktplus.load_results(single.project_dir).set_index("trial_id")
    pruned = frame.index[frame["status"] == "pruned"]
    assert len(pruned) >= 1
    for trial_id in pruned:
        assert max(curves[trial_id]) + 1 == frame.loc[trial_id, "pruned_epoch"] < EPOCHS
    completed = frame.index[frame["status"] == "completed"]
    assert all(len(curves[t]) == frame.loc[t, "epochs"] for t in completed)


def test_multi_objective_front_and_folds_match_the_tuner(multi):
    from ktplus.reporting import load_search

    front = ktplus.load_pareto_front(multi.project_dir)
    live = multi.pareto_front()
    assert list(front["trial_id"]) == list(live["trial_id"])
    assert front.attrs["directions"] == {"val_accuracy": "max", "num_params": "min"}
    folds = load_search(multi.project_dir).fold_scores()
    for trial in multi.oracle.trials.values():
        assert len(folds[trial.trial_id]) == 2
        # each fold's best val_accuracy (the list's one epoch-level objective), their mean the trial's
        assert np.mean(folds[trial.trial_id]) == pytest.approx(trial.metrics.get_last_value("val_accuracy"))


class Synthetic(keras_tuner.HyperModel):
    """A score that depends on `z_important` only (named to sort last)."""

    def build(self, hp):
        hp.Float("z_important", 0.0, 1.0)
        hp.Float("a_noise", 0.0, 1.0)
        hp.Choice("b_noise", ["x", "y", "z"])
        hp.Int("c_noise", 1, 8)
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return model

    def fit(self, hp, model, *args, **kwargs):
        return 1.0 - (hp.get("z_important") - 0.3) ** 2


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    tuner = ktplus.RandomSearch(Synthetic(), objective=keras_tuner.Objective("score", "max"), max_trials=16,
                                seed=5, directory=tmp_path_factory.mktemp("synthetic"), project_name="s")
    tuner.search(np.zeros((4, 1)), np.zeros(4), verbose=0)
    return tuner


@pytest.mark.parametrize("method", ["fanova", "ped_anova"])
def test_importance_ranks_the_one_hyperparameter_that_matters_first(synthetic, method):
    frame = synthetic.importance(method=method)
    assert list(frame.columns) == ["hyperparameter", "importance"]
    assert frame["hyperparameter"].iloc[0] == "z_important", frame
    assert frame["importance"].iloc[0] > 0.5
    assert frame["importance"].sum() == pytest.approx(1.0)
    assert list(frame["importance"]) == sorted(frame["importance"], reverse=True)
    assert set(frame["hyperparameter"]) == {"z_important", "a_noise", "b_noise", "c_noise"}
    assert frame.attrs["method"] == {"fanova": "fANOVA", "ped_anova": "PED-ANOVA"}[method]
    saved = ktplus.importance(synthetic.project_dir, method=method)  # the same, read from the directory
    assert list(saved["hyperparameter"]) == list(frame["hyperparameter"])
    assert np.allclose(saved["importance"], frame["importance"])


def test_tensorboard_lists_the_most_important_hyperparameter_first(synthetic):
    from tests.logging.tbserver import TensorBoardServer

    server = TensorBoardServer(synthetic.tensorboard_dir)
    try:
        experiment = server.wait_until(lambda: (e := server.post("/data/plugin/hparams/experiment",
                                                                 {"experimentName": ""}))
                                       and e.get("hparamInfos") and e)
    finally:
        server.stop()
    infos = experiment["hparamInfos"]
    names = [i["name"] for i in infos]
    # TensorBoard lists hyperparameters by `differs`, then name, and shows the first five: only what
    # mattered is flagged, so z_important comes first (then the status, "_" sorting before letters).
    assert names[:2] == ["z_important", "_status"], names
    assert infos[0].get("differs") and not any(i.get("differs") for i in infos[1:]), infos
    assert "rank 1 of 4" in infos[0]["description"] and "fANOVA" in infos[0]["description"]


def _float_search(root, name, hypermodel, trials=3):
    tuner = ktplus.RandomSearch(hypermodel, objective=keras_tuner.Objective("score", "max"), max_trials=trials,
                                seed=1, directory=root, project_name=name)
    try:
        tuner.search(np.zeros((4, 1)), np.zeros(4), verbose=0)
    except RuntimeError:  # keras-tuner stops after 3 consecutive failed trials
        pass
    return tuner


class Failing(Synthetic):
    def fit(self, hp, model, *args, **kwargs):
        raise ValueError("this trial fails on purpose")


class Untuned(Synthetic):
    def build(self, hp):
        hp.Fixed("units", 4)
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(hp.get("units"))])
        model.compile("sgd", "mse")
        return model

    def fit(self, hp, model, *args, **kwargs):
        return 0.5


def test_edge_cases_render_what_they_can(tmp_path):
    one = _float_search(tmp_path, "one", Synthetic(), trials=1)
    failed = _float_search(tmp_path, "failed", Failing())
    untuned = _float_search(tmp_path, "untuned", Untuned(), trials=2)
    assert [str(t.status) for t in failed.oracle.trials.values()] == ["FAILED"] * 3
    pages = {}
    for tuner, name in ((one, "one"), (failed, "failed"), (untuned, "untuned")):
        pages[name] = ktplus.report(tuner.project_dir, str(tmp_path / f"{name}.html"))
    with pytest.raises(ValueError, match="at least 2 completed trials"):
        one.importance()
    with pytest.raises(ValueError, match="tuned hyperparameter"):
        untuned.importance()
    with chromium() as driver:
        for name, path in pages.items():
            figures, loads, errors = open_report(driver, path)
            assert errors == [] and loads["resources"] == [], (name, errors, loads)
            shown = {f["name"] for f in figures}
            assert "history" in shown and all(f["plot"] for f in figures), (name, figures)
            text = driver.find_element("tag name", "body").text
            if name == "one":
                assert "at least 2 completed trials" in text and {"parallel", "slices"} <= shown
            if name == "failed":
                assert "failed (3)" in text or "3: 3 failed" in text
                assert "none yet" in text and not {"parallel", "importance", "slices"} & shown
            if name == "untuned":
                assert "tuned hyperparameter" in text and not {"parallel", "importance", "slices"} & shown


def test_a_plain_keras_tuner_directory(tmp_path):
    def plain(hp):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Choice("units", [2, 16]),
                                                                        activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    x, y = data(n=64)
    tuner = keras_tuner.RandomSearch(plain, objective="val_accuracy", max_trials=3, seed=1, directory=tmp_path,
                                     project_name="kt")
    tuner.search(x[:48], y[:48], validation_data=(x[48:], y[48:]), epochs=2, verbose=0)
    path = ktplus.report(tmp_path / "kt", str(tmp_path / "kt.html"))
    html = open(path).read()
    for figure in ("history", "curves", "parallel", "importance", "slices"):
        assert f'data-figure="{figure}"' in html, figure
    assert "keras-tuner (tuner not recorded)" in html


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"path": "report.png"}, "ending in .html"),
    ({"path": 3}, "a file path"),
    ({"path": os.path.join("missing", "dir", "report.html")}, "existing directory"),
    ({"importance_method": "shap"}, "importance_method"),
    ({"directory": "nowhere"}, "directory"),
    ({"directory": 3}, "argument `directory`"),
])
def test_bad_arguments_name_themselves_before_anything_is_written(tmp_path, single, kwargs, needle):
    args = {"directory": single.project_dir, "path": "r.html", **kwargs}
    if isinstance(args["path"], str):
        args["path"] = str(tmp_path / args["path"])
    with pytest.raises(ValueError, match=needle):
        ktplus.report(args.pop("directory"), args.pop("path"), **args)
    assert os.listdir(tmp_path) == []


def test_cli_writes_the_report(tmp_path, single):
    ok = subprocess.run([sys.executable, "-m", "ktplus.cli", "report", single.project_dir, "--html", "out.html",
                         "--importance", "ped_anova"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "report written to out.html" in ok.stderr and "Traceback" not in ok.stderr
    assert "Leaderboard" not in ok.stderr and f"{len(single.oracle.trials)} trials in" in ok.stdout
    html = (tmp_path / "out.html").read_text()
    assert 'data-figure="importance"' in html and "PED-ANOVA" in html


@pytest.mark.parametrize(("args", "needle"), [
    (["--html", "out.png"], "--html"),
    (["--html", "x.html", "--importance", "shap"], "--importance"),
    (["--html", "missing/x.html"], "existing directory"),
])
def test_cli_refuses_bad_report_options_in_one_line(tmp_path, single, capsys, monkeypatch, args, needle):
    import ktplus.cli

    monkeypatch.chdir(tmp_path)
    assert ktplus.cli.main(["report", single.project_dir, *args]) != 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
    assert os.listdir(tmp_path) == []  # refused before anything is written


def test_cli_not_a_search_directory_is_one_line(tmp_path, capsys):
    import ktplus.cli

    assert ktplus.cli.main(["report", str(tmp_path), "--html", str(tmp_path / "x.html")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "project directory" in err, err
    assert not (tmp_path / "x.html").exists()


def test_a_running_search_is_reported_as_it_stands(tmp_path, single):
    """A copy of the search in which one trial is still running (as a
    reader sees a live search): the page shows it, nothing breaks."""
    import shutil

    project = tmp_path / "live"
    shutil.copytree(single.project_dir, project)
    trial_file = sorted(project.glob("trial_*/trial.json"))[-1]
    state = json.loads(trial_file.read_text())
    state["status"], state["score"] = "RUNNING", None
    trial_file.write_text(json.dumps(state))
    html = open(ktplus.report(project, str(tmp_path / "live.html"))).read()
    assert re.search(r"running \(1\)", html)
    assert 'data-figure="history"' in html and 'data-figure="importance"' in html


def test_report_returns_the_path_as_given(tmp_path, single):
    path = tmp_path / "as_given.html"
    assert ktplus.report(single.project_dir, path) == path and path.stat().st_size > 100_000


def test_a_tuner_built_but_not_yet_searching_is_a_search_with_no_trial(tmp_path, capfd):
    import ktplus.cli

    tuner = ktplus.RandomSearch(build, objective="val_accuracy", max_trials=2, directory=tmp_path,
                                project_name="fresh")
    assert not os.path.exists(os.path.join(tuner.project_dir, "oracle.json"))
    html = open(ktplus.report(tmp_path, str(tmp_path / "fresh.html"))).read()
    assert "No trial yet." in html and "val_accuracy (max)" in html
    with pytest.raises(ValueError, match="directory"):
        ktplus.importance(tuner.project_dir)
    capfd.readouterr()
    assert ktplus.cli.main(["report", tuner.project_dir]) == 0
    assert "0 trials" in capfd.readouterr().out
