"""``ktplus predict MODEL FILE [--output PREDS.csv]``: predictions of a model
written by ``ktplus search --export``, ``ktplus export`` or
``ktplus.export``, as CSV. MODEL is the export in any of its formats (a
``.keras`` file, a SavedModel directory, an ``.onnx`` or ``.tflite`` file):
its JSON record (``MODEL.json``, or inside a ``.keras``) names the format,
which is loaded with its own runtime (Keras, TensorFlow, ONNX Runtime, the
LiteRT interpreter).

The file is read as ``search`` reads its data: a ``.csv`` must hold the
training file's feature columns (in any order; its target column, if
present, is ignored; any other column is an error), an ``.npz`` an array
``x`` of raw rows. A model trained on an ``.npz`` or a built-in dataset has
no column names: a ``.csv`` then gives its features as all its columns, in
order. The output has a ``prediction`` column (the original class labels
for classification) and, for classification, one ``proba_<class>`` column
per class. Every check runs, and every error is reported, before anything
is written; the data is checked before TensorFlow loads.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from ktplus.cli._errors import CLIError
from ktplus.cli._export import read_export


def _names(columns: list[str] | set[str]) -> str:
    shown = sorted(map(str, columns))
    return ", ".join(shown[:10]) + (f" and {len(shown) - 10} more" if len(shown) > 10 else "")


def _from_csv(path: str, meta: dict[str, Any]) -> np.ndarray:
    from ktplus.datasets import numeric_features, read_csv

    frame = read_csv(path)
    expected = meta.get("feature_columns")
    target = meta.get("target")
    if expected is not None:
        present = [c for c in frame.columns if c != target]
        missing = [c for c in expected if c not in present]
        extra = [c for c in present if c not in expected]
        if missing or extra:
            parts = ([f"missing {_names(missing)}"] if missing else []) + (
                [f"unexpected {_names(extra)}"] if extra else [])
            raise CLIError(f"ktplus predict: {path}: the columns differ from the training file's: "
                           f"{'; '.join(parts)} (expected {len(expected)} feature columns"
                           + (f", plus the optional target {target!r})" if target else ")"))
        frame = frame[expected]
    return numeric_features(frame, path)


def read_features(path: str, meta: dict[str, Any]) -> np.ndarray:
    """The raw rows of ``path``, shaped as the model's input (float32).

    Raises:
        CLIError: for a missing, unreadable or unsupported file, columns
            other than the training file's, or rows of the wrong size.
    """
    if not os.path.isfile(path):
        raise CLIError(f"ktplus predict: {path}: no such file")
    from ktplus.datasets import DataError, non_finite, read_npz

    ext = os.path.splitext(path)[1].lower()
    if ext not in (".csv", ".npz"):
        raise CLIError(f"ktplus predict: {path}: unsupported file type {ext or '(none)'!r}: use .csv or .npz")
    try:
        x = _from_csv(path, meta) if ext == ".csv" else read_npz(path, ("x",))[0].astype("float64")
    except DataError as e:
        raise CLIError(f"ktplus predict: {e}") from None
    found = non_finite(x)
    if found:
        raise CLIError(f"ktplus predict: {path}: the features contain NaN or inf ({found[0]} values, first in "
                       f"row {found[1]}); clean or impute them first")
    shape = tuple(int(d) for d in meta["input_shape"])
    size = int(np.prod(shape))
    if len(x) == 0:
        raise CLIError(f"ktplus predict: {path}: no rows to predict")
    if x.shape[1:] != shape:
        per_row = int(np.prod(x.shape[1:]))
        if per_row != size:
            got = f"{per_row} features per row" if x.ndim == 2 else f"rows of shape {x.shape[1:]}"
            want = f"{size} features per row" if len(shape) == 1 else f"rows of shape {shape} ({size} values)"
            raise CLIError(f"ktplus predict: {path}: {got}, but the model takes {want}")
        x = x.reshape((-1, *shape))  # flat rows of image data, or images of flat rows
    return x.astype("float32")


def predictions_frame(outputs: np.ndarray, meta: dict[str, Any]) -> Any:
    """The output table: ``prediction`` and, for classification, ``proba_<class>`` columns."""
    import pandas as pd

    outputs = np.asarray(outputs, dtype="float64").reshape(len(outputs), -1)
    if meta.get("task") != "classification":
        if outputs.shape[1] == 1:
            return pd.DataFrame({"prediction": outputs[:, 0]})
        targets = meta.get("targets") or [str(i) for i in range(outputs.shape[1])]
        if len(targets) != outputs.shape[1]:
            targets = [str(i) for i in range(outputs.shape[1])]
        return pd.DataFrame({f"prediction_{name}": outputs[:, i] for i, name in enumerate(targets)})
    names = list(meta["class_names"])
    proba = np.concatenate([1 - outputs, outputs], axis=1) if outputs.shape[1] == 1 else outputs
    if proba.shape[1] != len(names):
        raise CLIError(f"ktplus predict: the model gives {proba.shape[1]} outputs per row but its metadata "
                       f"names {len(names)} classes")
    frame = pd.DataFrame({"prediction": [names[i] for i in proba.argmax(axis=1)]})
    for i, name in enumerate(names):
        frame[f"proba_{name}"] = proba[:, i]
    return frame


def _check_output(args: argparse.Namespace) -> None:
    out = args.output
    if out is None:
        return
    if os.path.isdir(out):
        raise CLIError(f"ktplus predict: --output {out!r} is a directory; give a file path such as preds.csv")
    folder = os.path.dirname(out) or "."
    if not os.path.isdir(folder):
        raise CLIError(f"ktplus predict: --output: no such directory {folder!r}")
    for given in (args.model, args.data, args.model.rstrip("/" + os.sep) + ".json"):
        if os.path.exists(out) and os.path.exists(given) and os.path.samefile(out, given):
            raise CLIError(f"ktplus predict: --output {out!r} would overwrite the input {given!r}")


def load_model(path: str) -> Any:
    """``keras.models.load_model(path)``, its errors as one line."""
    from ktplus._quiet import import_quietly

    import_quietly()
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:
        raise CLIError(f"ktplus predict: {path}: cannot load the Keras model ({type(e).__name__}: "
                       f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None


def load_predictor(path: str, meta: dict[str, Any]) -> Any:
    """A callable predicting with the export at ``path`` in its record's
    format (`ktplus._export.load_runner`), its errors as one line."""
    fmt = meta.get("export_format", "keras")
    if fmt == "keras":
        model = load_model(path)
        return lambda x: model.predict(x, verbose=0, batch_size=256)
    from ktplus._export import ExportError, check_runtime, load_runner
    from ktplus._quiet import import_quietly

    try:
        check_runtime(fmt)
    except ExportError as e:
        raise CLIError(f"ktplus predict: {path}: {str(e).removeprefix('export: ')}") from None
    import_quietly()
    try:
        return load_runner(path.rstrip("/" + os.sep), fmt)
    except Exception as e:
        raise CLIError(f"ktplus predict: {path}: cannot load the {fmt} export ({type(e).__name__}: "
                       f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None


def run_predict(args: argparse.Namespace) -> int:
    """Runs ``ktplus predict``.

    Raises:
        CLIError: for a model or data file that cannot be used, or an
            output path that cannot be written (nothing is written then).
    """
    meta = read_export(args.model)
    _check_output(args)
    x = read_features(args.data, meta)
    from ktplus._export import _quiet_conversion
    from ktplus.cli._search import quiet_search

    with quiet_search(), _quiet_conversion((CLIError,)):
        predict = load_predictor(args.model, meta)
        outputs = predict(x)
    text = predictions_frame(outputs, meta).to_csv(index=False)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", newline="") as f:
            f.write(text)
    except OSError as e:
        raise CLIError(f"ktplus predict: cannot write {args.output}: {e.strerror}") from None
    print(f"ktplus: {len(x)} predictions written to {args.output}", file=sys.stderr)
    return 0
