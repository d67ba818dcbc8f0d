"""``ktplus export DIR PATH``: the best trial's model of a finished search,
exported as ``ktplus search --export`` exports its refit model (the formats,
the raw-feature wrapper and the JSON record are `ktplus.cli._export`'s).

Kept apart from `ktplus.cli._export` because it rebuilds the search's
hypermodel with `ktplus.cli._search`, which the parser (and so `_export`'s
path checks) must not import back.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ktplus.cli._errors import CLIError
from ktplus.cli._export import (
    check_path,
    csv_feature_columns,
    export_metadata,
    model_normalization,
    record_file,
    save_export,
    wrap,
)


def _saved_values(space: Any) -> dict[str, list[Any]]:
    """The values each knob of a saved search space can take (scoped names
    such as ``conv/normalization`` merged under their last part)."""
    values: dict[str, list[Any]] = {}
    for hp in space.space:
        config = hp.get_config()
        found = config.get("values") or ([config["value"]] if "value" in config else [True])
        name = hp.name.rsplit("/", 1)[-1]
        values.setdefault(name, [])
        values[name] += [v for v in found if v not in values[name]]
    return values


def _rebuild(data: Any, saved: Any, lr_tuned: bool) -> tuple[Any, Any, str]:
    """The hypermodel ``ktplus search`` built for a project whose saved
    search space is ``saved``: each family, with the data preparation and
    regularizers the space names, is built until one has exactly that space.

    Returns:
        ``(hypermodel, x, family)``: ``x`` the data as the model sees it.

    Raises:
        CLIError: when no ``ktplus search`` hypermodel has that space.
    """
    import argparse

    import keras_tuner

    from ktplus.cli._data import prep_options, shape_for
    from ktplus.cli._search import _hypermodel, _space_signature
    from ktplus.training import _schedules

    values = _saved_values(saved)

    def flag(name: str, default: str) -> str:
        found = ["none" if v in (None, "none") else str(v) for v in values.get(name, [])]
        return default if not found else "tune" if len(found) > 1 else found[0]

    regularizers = ["none" if v in (None, "none") else str(v) for v in values.get("regularizer", ["none"])]
    args = argparse.Namespace(normalize=flag("normalization", "none"), class_weight=flag("class_weight", "none"),
                              augment="tune" if any(k.startswith("augment_") for k in values) else "none")
    theirs = _space_signature(saved)
    for family in ("auto", "conv", "residual", "dense") if "family" in values else ("dense", "conv", "residual"):
        try:
            x, built = shape_for(family, data)
            if built != family:
                continue
            hypermodel = _hypermodel(family, x, data, regularizers, prep_options(args, data, x, family))
        except (CLIError, ValueError):
            continue
        fresh = keras_tuner.HyperParameters()
        hypermodel.build(fresh)
        if lr_tuned:
            _schedules.declare_tuned_decay(fresh)
        if _space_signature(fresh) == theirs:
            return hypermodel, x, family
    raise CLIError("ktplus export: cannot rebuild this search's models (its search space is not one ktplus "
                   "search builds for its data); export from Python: ktplus.export(tuner, PATH)")


def run_export(args: argparse.Namespace) -> int:
    """Runs ``ktplus export DIR PATH [--format F]``: the best trial's model
    (ktplus's ranking; its best-epoch checkpoint, not refit) of a search run
    by ``ktplus search``, exported and verified on the search's data.

    The model is rebuilt from the project directory alone: the data named in
    its record (``ktplus_data.json``: a built-in dataset, or the file path
    as given to ``--data``, read from the current directory) and the
    hypermodel whose search space matches the saved one.

    Raises:
        CLIError: for a bad path or format (checked first), a directory that
            holds no search by ``ktplus search``, data that cannot be read,
            or a search with no completed trial or checkpoint.
    """
    import argparse as _argparse

    fmt = check_path(args.path, args.export_format, "ktplus export")
    from ktplus.cli._data import load_data
    from ktplus.cli._splits import class_names, read_data_file
    from ktplus.results import _find_project

    if not os.path.isdir(args.dir):
        raise CLIError(f"ktplus export: {args.dir}: no such directory")
    try:
        project = _find_project(args.dir)
    except ValueError as e:
        raise CLIError(f"ktplus export: {e}") from None
    record = read_data_file(project)
    if not record.get("data"):
        raise CLIError(f"ktplus export: {project}: not a search run by ktplus search (no ktplus_data.json); "
                       "export from Python: ktplus.export(tuner, PATH)")
    given = _argparse.Namespace(data=record["data"], target=record.get("target"), task=record.get("task"))
    try:
        data = load_data(given)
    except CLIError as e:
        raise CLIError(f"ktplus export: the search's data {record['data']!r} cannot be read "
                       f"({str(e).removeprefix('ktplus: ')}); run ktplus export from the directory the search "
                       "ran in") from None
    columns = csv_feature_columns(given.data, given.target) if given.data.lower().endswith(".csv") else None

    from ktplus._quiet import import_quietly

    import_quietly()
    import keras_tuner

    from ktplus._export import ExportError
    from ktplus._ranking import UNSCORED, ranked, tier
    from ktplus.cli._search import quiet_search
    from ktplus.results import read_project

    _, trials, objective, direction, names = read_project(project)
    best = [t for t in ranked(trials, direction) if tier(t) != UNSCORED]
    if not best:
        raise CLIError(f"ktplus export: {project}: no trial completed, so there is no best model to export")
    trial = best[0]
    checkpoint = os.path.join(project, f"trial_{trial.trial_id}", "checkpoint.weights.h5")
    if not os.path.isfile(checkpoint):
        raise CLIError(f"ktplus export: {project}: the best trial ({trial.trial_id}) has no checkpoint "
                       f"({checkpoint})")
    with open(os.path.join(project, "oracle.json")) as f:
        saved = keras_tuner.HyperParameters.from_config(json.load(f)["hyperparameters"])
    with quiet_search():
        hypermodel, x, _ = _rebuild(data, saved, any(n.endswith("lr_decay") for n in names))
        model = hypermodel.build(trial.hyperparameters)
        model.load_weights(checkpoint)
        meta = export_metadata(given, data, x.shape[1:], None, trial, class_names(data), columns,
                               model_normalization(model))
        meta["objective"] = {"name": objective, "direction": direction, "value": trial.score}
        try:
            exported = save_export(wrap(model, data.x.shape[1:], x.shape[1:]), args.path, meta,
                                   data.x[:64], fmt, reference=wrap(model, data.x.shape[1:], x.shape[1:], copy=False))
        except ExportError as e:
            raise CLIError(f"ktplus export: {str(e).removeprefix('export: ')}") from None
        except OSError as e:
            raise CLIError(f"ktplus export: cannot write {args.path}: {e.strerror or e}") from None
    check = exported["verification"]
    print(f"Exported trial {trial.trial_id} ({objective} {trial.score:.4g}) of {project} to {args.path} ({fmt}; "
          f"checked with {check['runtime']} on {check['samples']} rows: max abs difference "
          f"{check['max_abs_diff']:.2g}; record in {record_file(args.path)})\n  predict with: ktplus predict "
          f"{args.path} FILE --output predictions.csv")
    return 0
