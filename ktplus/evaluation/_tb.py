"""TensorBoard records of a held-out evaluation, under each trial's run.

Each evaluated trial gets one event file (suffix ``.ktplus-test``) in its
run directory: the metrics as ``test/<metric>`` scalars (the trial's HParams
session reads them, and the experiment config lists them) and a
``test/metrics`` text table; for classification also the per-class table
(``test/classification_report``), the confusion matrix as an image
(``test/confusion_matrix``) and one precision-recall curve per class
(``test/pr_curve/<class>``). Every summary is built with tensorboard's own
protos and metadata, without TensorFlow, like the rest of ``ktplus.logging``.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Iterable
from typing import Any

import numpy as np
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.pr_curve import metadata as pr_metadata
from tensorboard.util import tensor_util

from ktplus.evaluation._heldout import CLASSIFICATION, METRICS, Scored, class_names_of, report_rows
from ktplus.logging import RunWriter, replacing, trial_run_dir, write_experiment

#: The event files of an evaluation: re-evaluating replaces them.
TEST_SUFFIX = ".ktplus-test"
TEST_PREFIX = "test/"
METRICS_TEXT = "test/metrics"
REPORT_TEXT = "test/classification_report"
CONFUSION_IMAGE = "test/confusion_matrix"
PR_CURVE = "test/pr_curve"
#: Thresholds of each PR curve, evenly spaced in [0, 1] (TensorBoard's default).
PR_THRESHOLDS = 201
#: As in tensorboard.plugins.pr_curve.summary: no division by zero.
_MINIMUM_COUNT = 1e-7


def metric_tags(task: str) -> list[str]:
    """The scalar tags of a task's metrics: ``test/<metric>``."""
    return [TEST_PREFIX + name for name in METRICS[task]]


def _cell(v: float | None) -> str:
    return "" if v is None else (f"{v:.4f}" if math.isfinite(v) else "nan")


def metrics_markdown(metrics: dict[str, float]) -> str:
    rows = ["| metric | value |", "|---|---|"]
    rows += [f"| {k} | {_cell(v)} |" for k, v in metrics.items()]
    return "\n".join(rows)


def report_markdown(model_record: dict[str, Any]) -> str:
    """The per-class table as markdown, like ``classification_report``."""
    rows = ["| class | precision | recall | f1-score | support |", "|---|---|---|---|---|"]
    for name, precision, recall, f1, support in report_rows(model_record):
        rows.append(f"| {name} | {_cell(precision)} | {_cell(recall)} | {_cell(f1)} | "
                    f"{'' if support is None else support} |")
    return "\n".join(rows)


def confusion_matrix_png(matrix: Any, class_names: list[str]) -> bytes:
    """The confusion matrix drawn on a standalone matplotlib Figure (no
    pyplot state), as PNG bytes."""
    from matplotlib.figure import Figure

    counts = np.asarray(matrix)
    k = len(counts)
    size = min(3.0 + 0.5 * k, 16.0)
    longest = max((len(n) for n in class_names), default=1)
    margin = min(0.1 + 0.1 * longest / size, 0.4)  # room for the class names (no layout engine: fast)
    fig = Figure(figsize=(size + 1.0, size), dpi=100)
    fig.subplots_adjust(left=margin, bottom=margin, right=0.95, top=0.95)
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues", interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8)
    rotate = k > 6 or longest > 4
    ax.set_xticks(range(k), class_names, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 30:
        threshold = counts.max() / 2 if counts.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if counts[i, j] > threshold else "black")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def image_summary(tag: str, png: bytes, description: str = "") -> summary_pb2.Summary:
    """An image-plugin summary of one PNG (the tensor layout of
    ``tf.summary.image``: width, height, encoded image)."""
    width, height = struct.unpack(">II", png[16:24])  # the PNG's IHDR chunk
    tensor = tensor_util.make_tensor_proto([str(width).encode(), str(height).encode(), png],
                                           dtype=np.object_)
    meta = image_metadata.create_summary_metadata(display_name=tag, description=description)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)])


def pr_curve_summary(tag: str, positives: np.ndarray, scores: np.ndarray, description: str = "",
                     num_thresholds: int = PR_THRESHOLDS) -> summary_pb2.Summary:
    """A PR-curve-plugin summary for one class: the counts and precision /
    recall at ``num_thresholds`` thresholds, as
    ``tensorboard.plugins.pr_curve.summary.pb`` computes them (which needs
    TensorFlow to build its proto)."""
    labels = np.asarray(positives, dtype=np.float64)
    buckets = np.floor(np.clip(scores, 0.0, 1.0) * (num_thresholds - 1)).astype(np.int64)
    tp_buckets = np.bincount(buckets, weights=labels, minlength=num_thresholds)
    fp_buckets = np.bincount(buckets, weights=1.0 - labels, minlength=num_thresholds)
    tp = np.cumsum(tp_buckets[::-1])[::-1]  # predicted positive at threshold i: score >= i / (T - 1)
    fp = np.cumsum(fp_buckets[::-1])[::-1]
    tn = fp[0] - fp
    fn = tp[0] - tp
    precision = tp / np.maximum(_MINIMUM_COUNT, tp + fp)
    recall = tp / np.maximum(_MINIMUM_COUNT, tp + fn)
    data = np.stack([tp, fp, tn, fn, precision, recall]).astype(np.float32)
    meta = pr_metadata.create_summary_metadata(display_name=tag, description=description,
                                               num_thresholds=num_thresholds)
    tensor = tensor_util.make_tensor_proto(data, dtype=np.float32)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)])


def _write_model(writer: RunWriter, model_record: dict[str, Any], scored: Scored, task: str) -> None:
    metrics = model_record["metrics"]
    for name, value in metrics.items():
        if value is not None and math.isfinite(value):  # an undefined metric is left out, as in sessions
            writer.scalar(TEST_PREFIX + name, value)
    writer.text(METRICS_TEXT, metrics_markdown(metrics))
    if task != CLASSIFICATION:
        return
    names = class_names_of(model_record)
    writer.text(REPORT_TEXT, report_markdown(model_record))
    writer.summary(image_summary(CONFUSION_IMAGE, confusion_matrix_png(model_record["confusion_matrix"], names),
                                 "rows: true class, columns: predicted class"))
    assert scored.probabilities is not None
    for label, name in zip(model_record["labels"], names):
        writer.summary(pr_curve_summary(f"{PR_CURVE}/{name}", scored.y_true == label,
                                        scored.probabilities[:, label], f"class {name} against the rest"))


def write_evaluation(root: str, record: dict[str, Any], scored: list[Scored], space: Iterable[Any],
                     objective: str) -> None:
    """Writes each evaluated model's records under its trial's run,
    replacing an earlier evaluation's, and adds the ``test/`` metrics to
    the HParams experiment config.

    Args:
        root: The search's TensorBoard directory.
        record: The evaluation (as `evaluate_trials` saves it).
        scored: The models' scores, in the order of ``record["models"]``.
        space: The search space's hyperparameters (for the experiment config).
        objective: The objective's name (for the metric descriptions).
    """
    task = record["task"]
    for model_record, model_scored in zip(record["models"], scored):
        with replacing(trial_run_dir(root, model_record["trial_id"]), TEST_SUFFIX) as writer:
            _write_model(writer, model_record, model_scored, task)
    write_experiment(root, space, metric_tags(task), objective)
