"""Data preparation in TensorBoard, checked on a running server: each trial
of an augmenting search holds one image of its augmented training samples,
and the normalization and class-weight choices are HParams hyperparameters."""

from __future__ import annotations

import io
import urllib.request

import numpy as np
import pytest
from PIL import Image

import ktplus
from ktplus.logging._images import DRAWS, preview_grid
from tests.logging.tbserver import TensorBoardServer


@pytest.fixture(scope="module")
def search(tmp_path_factory, digits_images):
    (x, y), (xv, yv) = digits_images
    hm = ktplus.ConvHyperModel((8, 8, 1), 10, conv_blocks=1, convs_per_block=1, filters=4, dense_units=0,
                               normalization=["standardize", None], augment_rotation=0.1,
                               augment_translation=(0.1, 0.25), class_weight=[None, "balanced"])
    tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=2, seed=3,
                                directory=tmp_path_factory.mktemp("aug"), project_name="p")
    tuner.search(x[:200], y[:200], validation_data=(xv[:100], yv[:100]), epochs=1, verbose=0)
    return tuner


@pytest.fixture(scope="module")
def server(search):
    srv = TensorBoardServer(search.tensorboard_dir)
    yield srv
    srv.stop()


def test_each_trial_has_one_augmentation_image(search, server):
    trials = search.oracle.trials
    tags = server.wait_until(lambda: (t := server.get("/data/plugin/images/tags"))
                             and all(f"trial_{i}" in t for i in trials) and t)
    for trial_id in trials:
        assert list(tags[f"trial_{trial_id}"]) == ["augmentation"]
        entries = server.get(f"/data/plugin/images/images?run=trial_{trial_id}&tag=augmentation&sample=0")
        assert len(entries) == 1
        with urllib.request.urlopen(f"{server.url}/data/plugin/images/individualImage?{entries[0]['query']}",
                                    timeout=30) as r:
            image = Image.open(io.BytesIO(r.read()))
        grid = preview_grid(np.zeros((4, 8, 8, 1), "float32"), [np.zeros((4, 8, 8, 1), "float32")] * DRAWS)
        assert image.size == (grid.shape[1], grid.shape[0])
        pixels = np.asarray(image)
        cell = slice(2, 2 + 48)  # the first sample: inference view, then its augmented draws
        views = [pixels[cell, 2 + c * 50:2 + c * 50 + 48] for c in range(1 + DRAWS)]
        assert any(not np.array_equal(views[0], v) for v in views[1:])  # augmentation changed the samples


def test_normalization_and_class_weight_are_hparams(search, server):
    exp = server.wait_until(lambda: server.post("/data/plugin/hparams/experiment", {"experimentName": ""}))
    infos = {h["name"]: h for h in exp["hparamInfos"]}
    assert infos["normalization"]["domainDiscrete"] == ["standardize", "none"]
    assert infos["class_weight"]["domainDiscrete"] == ["none", "balanced"]
    groups = server.wait_until(lambda: (g := server.session_groups()) and len(g) == 2 and g)
    for group in groups:
        trial = search.oracle.trials[group["name"].removeprefix("trial_")]
        assert group["hparams"]["normalization"] == trial.hyperparameters.get("normalization")

