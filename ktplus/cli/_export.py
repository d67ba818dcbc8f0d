"""``ktplus search --export PATH``: the best configuration, refit on all the
non-test data, exported (`ktplus.export`'s formats: ``.keras``, a SavedModel
directory, ``.onnx``, ``.tflite``; ``--format`` overrides the suffix) as a
model that predicts on raw features; ``ktplus export DIR PATH`` exports the
best trial's model of a finished search the same way.

"Raw" features are the rows as the data source holds them: a ``.csv``'s
feature columns, an ``.npz``'s ``x``, or a built-in dataset's ``x`` as
`ktplus.datasets.load` returns it (digits pixels already divided by 16).
Whatever the search did to them on the way to the model is inside the saved
model, so plain ``keras.models.load_model(PATH)`` (or the format's runtime) is all
a user needs:

- a ``Reshape`` layer when the search viewed flat rows as images (digits with
  ``--family conv``, ``residual`` or ``auto``);
- the model's own data preparation (``--normalize``: a ``Normalization``
  layer holding the statistics of the refit data, all the non-test rows;
  augmentation layers act only in training).

The trained network is cloned without its compile state (its ktplus metrics
would need ktplus installed to deserialize), so the file loads anywhere
Keras does.

What ``ktplus predict`` needs besides the model is the export's JSON record
(`ktplus._export`), written beside it (``PATH.json``) and, for a ``.keras``
file, also as an extra entry of its zip archive (`META_ENTRY`, appended after
``model.save``; Keras reads only its own entries and ignores it). Besides
the fields every export's record has, the CLI's holds::

    format, version        "ktplus-export", 1
    ktplus_version         the ktplus that wrote it
    task                   "classification" or "regression"
    class_names            original labels, by output index (classification)
    target                 the .csv's target column, or null
    feature_columns        the .csv's feature columns in training order, or null
    input_shape            the shape of one raw row, e.g. [30] or [8, 8, 1]
    source, data           "csv", "npz" or "builtin", and the --data given
    normalization          the model's own: "standardize", "minmax" or null
    reshape                the shape the model views a raw row as, or null
    trial_id, hyperparameters, refit_samples   where the model came from

Reading the record needs only the standard library (`read_export`).
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

from ktplus.cli._errors import CLIError

#: The zip entry of a ``.keras`` file that holds ktplus's metadata.
META_ENTRY = "ktplus.json"
FORMAT = "ktplus-export"
VERSION = 1
#: The formats ``--export``/``--format`` write.
FORMATS = ("keras", "saved_model", "onnx", "litert")


def csv_feature_columns(path: str, target: str | None) -> list[str]:
    """A ``.csv``'s feature columns in file order (what `ktplus.datasets.load_file` trains on)."""
    import pandas as pd

    return [str(c) for c in pd.read_csv(path, nrows=0).columns if c != target]


def export_metadata(args: Any, data: Any, x_shape: tuple[int, ...], splits: Any, trial: Any,
                    class_names: list[Any] | None, feature_columns: list[str] | None,
                    normalization: str | None = None) -> dict[str, Any]:
    """The `META_ENTRY` record of an export (see the module docstring);
    ``feature_columns`` is a ``.csv``'s header (`csv_feature_columns`) as
    read when the search started, ``normalization`` the model's
    (`model_normalization`); ``splits`` None for a model that was not refit.
    """
    from ktplus import __version__, datasets

    raw_shape = [int(d) for d in data.x.shape[1:]]
    source = ("builtin" if args.data in datasets.BUILTIN
              else "csv" if args.data.lower().endswith(".csv") else "npz")
    return {
        "format": FORMAT, "version": VERSION, "ktplus_version": __version__,
        "task": data.task, "class_names": class_names, "target": args.target,
        "feature_columns": feature_columns if source == "csv" else None,
        "input_shape": raw_shape, "source": source, "data": args.data,
        "normalization": normalization,
        "reshape": [int(d) for d in x_shape] if list(x_shape) != raw_shape else None,
        "trial_id": getattr(trial, "trial_id", None),
        "hyperparameters": {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
        if trial is not None else None,
        "refit_samples": len(splits.rest[0]) if splits is not None else None,
    }


def model_normalization(model: Any) -> str | None:
    """The normalization the hypermodel built into ``model``: "standardize",
    "minmax" (the names of its Normalization layers), or None."""
    from ktplus._export import normalization_mode

    return normalization_mode(model)


def wrap(model: Any, raw_shape: tuple[int, ...], model_shape: tuple[int, ...], copy: bool = True) -> Any:
    """``raw input -> [Reshape] -> model (inference mode)``, uncompiled
    (`ktplus._export.inference_model`).

    With ``copy`` the model's own layers (its normalization among them) are
    copied with their weights (what a ``.keras`` file needs); without, the
    model itself is called (what the other formats trace and every export
    is verified against). Augmentation layers are absent from the graph.
    """
    from ktplus._export import inference_model

    return inference_model(model, raw_shape, model_shape, copy=copy)


def check_path(path: str, format: str | None, flag: str) -> str:
    """The export format of ``path`` (``format`` when given); the path,
    format, backend and optional packages checked with the standard library
    only (no TensorFlow), so a search fails before it starts.

    Raises:
        CLIError: one line starting with ``flag``.
    """
    from ktplus._export import ExportError, _check_path, check_format, format_of

    try:
        fmt = format_of(path, format)
        _check_path(path, fmt)
        check_format(fmt, import_keras=False)
    except ExportError as e:
        raise CLIError(f"{flag}: {str(e).removeprefix('export: ')}") from None
    return fmt


def save_export(model: Any, path: str, meta: dict[str, Any], sample: Any = None, format: str | None = None,
                reference: Any = None) -> dict[str, Any]:
    """Exports ``model`` (`wrap`'s copy) to ``path`` with ``meta`` in its record.

    ``reference`` is `wrap`'s uncopied wrapper of the same model: the
    formats other than ``.keras`` are written from it, and every export is
    verified against it on ``sample`` (raw rows; default: synthetic rows)
    with the format's runtime; written to a temporary path next to ``path``
    and renamed over it, so a failure leaves nothing.

    Raises:
        ValueError: (`ktplus._export.ExportError`) for a path, format or
            export that fails.
    """
    import numpy as np

    from ktplus._export import _sample, check_export, write_export

    fmt = check_export(model, path, format)
    if reference is not None and fmt != "keras":
        model = reference
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    rows, kind = _sample(None if sample is None else np.asarray(sample), shape, str(model.inputs[0].dtype), model)
    classes = meta.get("class_names")
    meaning = (f"class probabilities, one column per class in class_names ({len(classes)} classes)"
               if meta.get("task") == "classification" and classes is not None
               else "regression predictions" if meta.get("task") == "regression" else "the model's raw outputs")
    meta = {"targets": [meta["target"]] if meta.get("task") == "regression" and meta.get("target") else None,
            "objective": None, **meta, "output": {"meaning": meaning}}
    return write_export(model, path, fmt, rows, meta, kind, reference=reference)


def record_file(path: str) -> str:
    """Where the record of the export at ``path`` is (``PATH.json``)."""
    return path.rstrip("/" + os.sep) + ".json"


def _check_meta(path: str, meta: Any, where: str) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CLIError(f"ktplus predict: {path}: {where} is not ktplus export metadata")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CLIError(f"ktplus predict: {path}: written by a newer ktplus ({meta.get('ktplus_version')}); "
                       "upgrade ktplus")
    meta.setdefault("export_format", "keras")
    if meta["export_format"] not in FORMATS:
        raise CLIError(f"ktplus predict: {path}: {where} names an unknown format {meta['export_format']!r}")
    return meta


def read_export(path: str) -> dict[str, Any]:
    """The record of an export written by ``ktplus search --export``,
    ``ktplus export`` or ``ktplus.export``: ``PATH.json`` beside it, or the
    `META_ENTRY` inside a ``.keras`` file.

    Raises:
        CLIError: for a missing or unreadable export, a file that is not a
            ``.keras`` archive, or a model without ktplus's record.
    """
    target = path.rstrip("/" + os.sep) or path
    if not os.path.exists(target):
        raise CLIError(f"ktplus predict: {path}: no such file")
    beside = record_file(target)
    if os.path.isdir(target) or os.path.isfile(beside) or not target.lower().endswith(".keras"):
        if not os.path.isfile(beside):
            raise CLIError(f"ktplus predict: {path}: no export record {beside} beside it; predict takes the "
                           "models written by ktplus search --export, ktplus export or ktplus.export")
        try:
            with open(beside) as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            raise CLIError(f"ktplus predict: {beside}: unreadable export record ({e})") from None
        return _check_meta(path, meta, os.path.basename(beside))
    if not os.path.isfile(target) or not os.access(target, os.R_OK):
        raise CLIError(f"ktplus predict: {path}: not a readable file")
    try:
        with zipfile.ZipFile(target) as z:
            names = set(z.namelist())
            if "config.json" not in names or not names & {"model.weights.h5", "model.weights.npz"}:
                raise CLIError(f"ktplus predict: {path}: not a Keras model file (a .keras archive holds "
                               "config.json and the weights)")
            if META_ENTRY not in names:
                raise CLIError(f"ktplus predict: {path}: a Keras model without ktplus's metadata ({META_ENTRY}); "
                               "predict takes the files written by ktplus search --export")
            meta = json.loads(z.read(META_ENTRY))
    except CLIError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError):
        raise CLIError(f"ktplus predict: {path}: not a Keras model file (not a .keras zip archive)") from None
    except ValueError as e:
        raise CLIError(f"ktplus predict: {path}: unreadable {META_ENTRY} ({e})") from None
    return _check_meta(path, meta, META_ENTRY)
