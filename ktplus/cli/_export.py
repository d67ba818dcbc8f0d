"""``ktplus search --export PATH.keras``: the best configuration, refit on all
the non-test data, saved as one file that predicts on raw features.

"Raw" features are the rows as the data source holds them: a ``.csv``'s
feature columns, an ``.npz``'s ``x``, or a built-in dataset's ``x`` as
`ktplus.datasets.load` returns it (digits pixels already divided by 16).
Whatever the search did to them on the way to the model is inside the saved
model, so plain ``keras.models.load_model(PATH)`` is all a user needs:

- a ``Reshape`` layer when the search viewed flat rows as images (digits with
  ``--family conv``, ``residual`` or ``auto``);
- the model's own data preparation (``--normalize``: a ``Normalization``
  layer holding the statistics of the refit data, all the non-test rows;
  augmentation layers act only in training).

The trained network is cloned without its compile state (its ktplus metrics
would need ktplus installed to deserialize), so the file loads anywhere
Keras does.

What ``ktplus predict`` needs besides the model (`META_ENTRY`, JSON) is an
extra entry of the ``.keras`` zip archive, appended after ``model.save``;
Keras reads only its own entries (``config.json``, ``metadata.json``,
``model.weights.h5``) and ignores it::

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

Reading the metadata needs only the standard library (`read_export`).
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
    (`model_normalization`)."""
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
        "refit_samples": len(splits.rest[0]),
    }


def model_normalization(model: Any) -> str | None:
    """The normalization the hypermodel built into ``model``: "standardize",
    "minmax" (the names of its Normalization layers), or None."""
    import keras

    from ktplus.hypermodels._prep import NORMALIZATIONS

    return next((layer.name for layer in model.layers
                 if layer.name in NORMALIZATIONS and isinstance(layer, keras.layers.Normalization)), None)


def wrap(model: Any, raw_shape: tuple[int, ...], model_shape: tuple[int, ...]) -> Any:
    """``raw input -> [Reshape] -> model``, uncompiled.

    The model's own layers (its normalization among them) are copied with
    their weights.
    """
    import keras

    net = keras.models.clone_model(model)  # no compile state: loads without ktplus's metrics
    net.set_weights(model.get_weights())
    for layer in net.layers:
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()  # its mean and variance tensors from the weights just set
    inputs = keras.Input(shape=tuple(raw_shape), name="features")
    h = inputs
    if tuple(model_shape) != tuple(raw_shape):
        h = keras.layers.Reshape(tuple(model_shape), name="ktplus_reshape")(h)
    return keras.Model(inputs, net(h), name="ktplus_export")


def save_export(model: Any, path: str, meta: dict[str, Any]) -> None:
    """Saves ``model`` to ``path`` (``.keras``) with ``meta`` as `META_ENTRY`.

    Written to a temporary file next to ``path`` and renamed over it, so a
    failure leaves no half-written model.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as z:
            z.writestr(META_ENTRY, json.dumps(meta, indent=1))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_export(path: str) -> dict[str, Any]:
    """The metadata of a file written by ``--export``.

    Raises:
        CLIError: for a missing or unreadable file, a file that is not a
            ``.keras`` archive, or a Keras model without ktplus's metadata.
    """
    if not os.path.exists(path):
        raise CLIError(f"ktplus predict: {path}: no such file")
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise CLIError(f"ktplus predict: {path}: not a readable file")
    try:
        with zipfile.ZipFile(path) as z:
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
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CLIError(f"ktplus predict: {path}: {META_ENTRY} is not ktplus export metadata")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CLIError(f"ktplus predict: {path}: written by a newer ktplus ({meta.get('ktplus_version')}); "
                       "upgrade ktplus")
    return meta
