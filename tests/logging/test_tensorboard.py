"""Every trial in TensorBoard, checked against a running TensorBoard server
(its HTTP data API) and, for resume and open files, in the event files."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import pytest

import ktplus
from tests.browser import chromium, screenshot
from tests.logging.tbserver import TensorBoardServer

EPOCHS = 4


def build(hp):
    """Trial kinds by a grid over `mode`: two good ones (the first with a
    conditional integer hyperparameter), one that cannot learn (pruned),
    one with a NaN loss (failed)."""
    mode = hp.Choice("mode", ["good", "good2", "bad", "nan"])
    with hp.conditional_scope("mode", ["good"]):
        units = hp.Int("units", 8, 16, step=8)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(units or 8, activation="relu")(inputs)
    if mode == "nan":
        x = keras.layers.Rescaling(float("inf"))(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    lr = 0.0 if mode == "bad" else 0.05
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    tuner = ktplus.GridSearch(build, objective="val_accuracy", max_trials=10, directory=root,
                              project_name="p", lr_decay="cosine",
                              pruning=ktplus.MedianPruner(n_startup_trials=3, n_warmup_epochs=1))
    tuner.search(x[:64], y[:64], validation_data=(x[64:], y[64:]), epochs=EPOCHS, verbose=0)
    return tuner


@pytest.fixture(scope="module")
def server(search):
    srv = TensorBoardServer(search.tensorboard_dir)
    yield srv
    srv.stop()
    assert srv.proc.poll() is not None


def test_tensorboard_dir_default(search):
    assert search.tensorboard_dir == os.path.join(search.project_dir, "tensorboard")


def test_runs_and_scalars_of_every_trial(search, server):
    trials = search.oracle.trials
    runs = server.wait_until(lambda: (r := server.get("/data/runs")) and len(r) >= len(trials) + 1 and r)
    for trial_id in trials:
        assert f"trial_{trial_id}" in runs
    assert "search_overview" in runs
    tags = server.get("/data/plugin/scalars/tags")
    for trial_id, trial in trials.items():
        run_tags = tags[f"trial_{trial_id}"]
        assert {"loss", "learning_rate", "epoch_seconds"} <= set(run_tags)
        if trial.status != "FAILED":
            assert {"accuracy", "val_loss", "val_accuracy"} <= set(run_tags)
            lrs = server.get(f"/data/plugin/scalars/scalars?run=trial_{trial_id}&tag=learning_rate")
            epochs = int(trial.metrics.get_last_value("epochs_run"))
            assert [step for _, step, _ in lrs] == list(range(epochs))
            lr0 = 0.0 if trial.hyperparameters.get("mode") == "bad" else 0.05
            expected = [lr0 * 0.5 * (1 + np.cos(np.pi * e / EPOCHS)) for e in range(epochs)]
            np.testing.assert_allclose([v for _, _, v in lrs], expected, rtol=1e-5, atol=1e-12)


def test_hparams_experiment_lists_real_domains_and_metrics(server, search):
    exp = server.wait_until(lambda: server.post("/data/plugin/hparams/experiment", {"experimentName": ""}))
    infos = {h["name"]: h for h in exp["hparamInfos"]}
    assert set(infos) == {"mode", "units", "_status"}
    assert infos["mode"]["domainDiscrete"] == ["good", "good2", "bad", "nan"]
    # Integers stay a discrete set, written as "8" rather than TensorBoard's "8.0000".
    assert infos["units"]["domainDiscrete"] == ["8", "16"]
    assert infos["_status"]["domainDiscrete"] == ["completed", "pruned", "failed", "infeasible"]
    assert infos["_status"]["displayName"] == "status"
    metrics = {m["name"]["tag"] for m in exp["metricInfos"]}
    assert {"score", "best/val_accuracy", "last/val_accuracy", "best_epoch", "epochs_run",
            "num_params", "trial_seconds", "pruned"} <= metrics


def test_hparams_sessions_one_per_trial_with_status(server, search):
    trials = search.oracle.trials
    groups = server.wait_until(lambda: (g := server.session_groups()) and len(g) == len(trials) and g)
    by_trial = {g["name"].removeprefix("trial_"): g for g in groups}
    assert set(by_trial) == set(trials)
    by_mode = {g["hparams"]["mode"]: g for g in groups}
    assert set(by_mode) == {"good", "good2", "bad", "nan"}
    # Only active hyperparameters get a value; integers stay integers.
    assert sorted(g["hparams"]["units"] for g in groups if g["hparams"]["mode"] == "good") == ["16", "8"]
    assert all("units" not in by_mode[m]["hparams"] for m in ("good2", "bad", "nan"))
    assert by_mode["good"]["hparams"]["_status"] == "completed"
    assert by_mode["bad"]["hparams"]["_status"] == "pruned"
    assert by_mode["nan"]["hparams"]["_status"] == "failed"
    assert by_mode["nan"]["sessions"][0]["status"] == "STATUS_FAILURE"
    assert by_mode["good"]["sessions"][0]["status"] == "STATUS_SUCCESS"

    def metric(group, tag):
        return {m["name"]["tag"]: m["value"] for m in group["metricValues"]}.get(tag)

    for trial_id, trial in trials.items():
        group = by_trial[trial_id]
        assert metric(group, "num_params") > 0
        assert metric(group, "trial_seconds") > 0
        if trial.status == "FAILED":
            assert metric(group, "score") is None
            continue
        assert metric(group, "score") == pytest.approx(trial.score)
        assert metric(group, "best/val_accuracy") == pytest.approx(trial.score)
        assert metric(group, "last/val_accuracy") is not None
        assert metric(group, "epochs_run") == trial.metrics.get_last_value("epochs_run")
        assert metric(group, "best_epoch") == trial.metrics.get_last_value("best_epoch")
    bad = by_mode["bad"]
    assert metric(bad, "pruned") == 1
    assert metric(bad, "pruned_epoch") == metric(bad, "epochs_run") < EPOCHS
    assert metric(by_mode["good2"], "epochs_run") == EPOCHS


def test_search_overview_and_text(server, search):
    finished = [t for t in search.oracle.trials.values() if t.status == "COMPLETED"]
    best = server.wait_until(lambda: server.get(
        "/data/plugin/scalars/scalars?run=search_overview&tag=best_so_far"))
    objective = server.get("/data/plugin/scalars/scalars?run=search_overview&tag=objective")
    full = [t for t in finished if not t.metrics.exists("pruned") or not t.metrics.get_last_value("pruned")]
    assert len(objective) == len(finished) >= len(best) > 0
    values = [v for _, _, v in best]
    assert values == sorted(values)  # best so far never gets worse (max objective)
    assert values[-1] == pytest.approx(max(t.score for t in full))  # fully trained trials only
    text_tags = server.get("/data/plugin/text/tags")
    first = sorted(search.oracle.trials)[0]
    assert {"model_summary", "hyperparameters"} <= set(text_tags[f"trial_{first}"])


def _sessions_in(run_dir: Path) -> int:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    count = 0
    for f in run_dir.glob("events.out.tfevents*"):
        for event in EventFileLoader(str(f)).Load():
            for value in event.summary.value:
                if value.tag == "_hparams_/session_start_info":
                    count += 1
    return count


def test_resume_neither_duplicates_nor_corrupts(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=[8, 16, 32])
    kwargs = dict(objective="val_accuracy", directory=tmp_path, project_name="r", seed=3)
    first = ktplus.RandomSearch(hm, max_trials=2, **kwargs)
    first.search(x, y, validation_split=0.25, epochs=2, verbose=0)
    tb = Path(first.tensorboard_dir)
    before = {p: p.read_bytes() for p in tb.rglob("*") if p.is_file() and "trial_" in str(p)}
    again = ktplus.RandomSearch(hm, max_trials=3, overwrite=False, **kwargs)
    again.search(x, y, validation_split=0.25, epochs=2, verbose=0)
    runs = sorted(p.name for p in tb.iterdir() if p.name.startswith("trial_"))
    assert len(runs) == 3
    for path, content in before.items():
        assert path.read_bytes() == content  # finished trials untouched
    assert all(_sessions_in(tb / r) == 1 for r in runs)
    assert len(list(tb.glob("*.ktplus-experiment"))) == 1


def test_interrupted_trial_is_relogged_cleanly(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=2, layers=1, units=8)
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path,
                                project_name="i")
    stale = Path(tuner.tensorboard_dir, "trial_0")
    stale.mkdir(parents=True)
    (stale / "events.out.tfevents.0.stale").write_bytes(b"partial")
    tuner.search(x, y, validation_split=0.25, epochs=1, verbose=0)
    assert not (stale / "events.out.tfevents.0.stale").exists()
    assert _sessions_in(stale) == 1


def test_writers_are_closed_no_open_file_growth(tmp_path):
    assert os.path.isdir("/proc/self/fd")  # Linux: count this process's open files
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 2)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    hm = ktplus.DenseHyperModel(input_shape=(2,), num_classes=2, layers=1, units=[2, 3, 4, 5, 6, 7, 8])
    counts = []
    for i in range(3):  # the first search opens what stays open for good; a leak grows by a file per trial
        tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=3, directory=tmp_path,
                                    project_name=f"f{i}", seed=i)
        tuner.search(x, y, validation_split=0.25, epochs=1, verbose=0)
        assert len(tuner.oracle.trials) == 3
        counts.append(len(os.listdir("/proc/self/fd")))
    assert counts[2] <= counts[0]


def test_tensorboard_off_and_custom_dir(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(16, 2)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    hm = ktplus.DenseHyperModel(input_shape=(2,), num_classes=2, layers=1, units=4)
    off = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path,
                              project_name="off", tensorboard=False)
    off.search(x, y, validation_split=0.25, epochs=1, verbose=0)
    assert off.tensorboard_dir is None and not (tmp_path / "off" / "tensorboard").exists()
    custom = tmp_path / "elsewhere"
    on = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=1, directory=tmp_path,
                             project_name="on", tensorboard=str(custom))
    on.search(x, y, validation_split=0.25, epochs=1, verbose=0)
    assert _sessions_in(custom / "trial_0") == 1
    with pytest.raises(ValueError, match="`tensorboard`"):
        ktplus.RandomSearch(hm, objective="val_accuracy", directory=tmp_path, tensorboard=3)


_DEEP_QUERY = """
function all(root, out) {
  for (const el of root.querySelectorAll('*')) { out.push(el); if (el.shadowRoot) all(el.shadowRoot, out); }
  return out;
}
const els = all(document, []);
const grid = els.find(e => e.tagName === 'VAADIN-GRID');
if (!grid || !grid.items) return null;
const cells = els.filter(e => e.tagName === 'VAADIN-GRID-CELL-CONTENT').map(e => e.textContent.trim());
return {rows: grid.items.length, cells: cells};
"""


def test_hparams_dashboard_renders_one_row_per_trial_in_chromium(server, search):
    trials = search.oracle.trials
    server.wait_until(lambda: len(server.session_groups()) == len(trials))
    with chromium() as driver:
        driver.get(server.url + "/#hparams")
        table = server.wait_until(lambda: (t := driver.execute_script(_DEEP_QUERY))
                                  and t["rows"] == len(trials) and t, timeout=60)
        shot = screenshot(driver, "hparams_dashboard.png")
    assert table["rows"] == len(trials)
    for trial_id in trials:
        assert f"trial_{trial_id}" in table["cells"]
    for status in ("completed", "pruned", "failed"):
        assert status in table["cells"]
    assert shot.stat().st_size > 10_000


def test_failed_trials_close_their_writers(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 2)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")

    def build(hp):
        hp.Int("units", 1, 8)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Rescaling(float("inf")),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    counts = []
    for i in range(2):
        tuner = ktplus.RandomSearch(build, objective="val_accuracy", max_trials=2, seed=i,
                                    max_consecutive_failed_trials=10, directory=tmp_path, project_name=f"n{i}")
        tuner.search(x, y, validation_split=0.25, epochs=2, verbose=0)
        assert {str(t.status) for t in tuner.oracle.trials.values()} == {"FAILED"}
        counts.append(len(os.listdir("/proc/self/fd")))
    assert counts[1] <= counts[0]


def test_best_so_far_never_takes_a_pruned_trials_partial_score(tmp_path):
    """The overview follows the one ranking: a pruned trial is drawn as an
    objective point, but its partial score never becomes the best so far."""
    import keras_tuner
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    from ktplus.logging import SearchLogger
    from ktplus.training._pruning import CurveStore

    store = CurveStore(tmp_path / "curves")
    store.write("0", {0: 0.5, 1: 0.6}, "completed")
    store.write("1", {0: 0.9}, "pruned")  # best partial value of all
    store.write("2", {0: 0.7}, "completed")
    logger = SearchLogger(str(tmp_path / "tb"), keras_tuner.Objective("val_accuracy", "max"), store)
    logger.write_overview()
    series: dict[str, list[tuple[int, float]]] = {}
    for f in (tmp_path / "tb" / "search_overview").glob("events.out.tfevents*"):
        for event in EventFileLoader(str(f)).Load():
            for value in event.summary.value:
                from tensorboard.util import tensor_util

                series.setdefault(value.tag, []).append(
                    (event.step, float(tensor_util.make_ndarray(value.tensor))))
    assert [v for _, v in sorted(series["objective"])] == pytest.approx([0.6, 0.9, 0.7])
    assert [v for _, v in sorted(series["best_so_far"])] == pytest.approx([0.6, 0.6, 0.7])
