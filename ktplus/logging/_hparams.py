"""HParams dashboard: the experiment config (every hyperparameter with its
real domain, and the metrics) and one session per trial."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable
from typing import Any

import keras_tuner
from google.protobuf import struct_pb2
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import summary as hparams_summary

from ktplus._atomic import atomic_write_json, read_json_dict
from ktplus._facts import COMPLETED, FAILED, INFEASIBLE, PRUNED, STATUSES
from ktplus.logging._writer import RunWriter

EXPERIMENT_SUFFIX = ".ktplus-experiment"
EXPERIMENT_STATE = ".ktplus_experiment.json"
#: Named to sort first (TensorBoard lists hyperparameters by name and shows
#: the first five), displayed as "status".
STATUS_HPARAM = "_status"
#: Integer hyperparameters with at most this many values are shown as a
#: discrete set (their real values), larger ones as an interval.
MAX_DISCRETE_INTS = 64

_SESSION_STATUS = {
    COMPLETED: api_pb2.STATUS_SUCCESS,
    PRUNED: api_pb2.STATUS_SUCCESS,
    FAILED: api_pb2.STATUS_FAILURE,
    INFEASIBLE: api_pb2.STATUS_UNKNOWN,  # skipped, neither a success nor a failure
}


def _value(v: Any) -> struct_pb2.Value:
    if isinstance(v, bool):
        return struct_pb2.Value(bool_value=v)
    if isinstance(v, (int, float)):
        return struct_pb2.Value(number_value=float(v))
    return struct_pb2.Value(string_value=str(v))


def _dtype(values: Iterable[Any]) -> int:
    values = list(values)
    if values and all(isinstance(v, bool) for v in values):
        return api_pb2.DATA_TYPE_BOOL
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return api_pb2.DATA_TYPE_FLOAT64
    return api_pb2.DATA_TYPE_STRING


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _discrete(name: str, values: Iterable[Any]) -> api_pb2.HParamInfo:
    values = list(dict.fromkeys(values))
    dtype = _dtype(values)
    if values and all(_is_int(v) for v in values):
        # TensorBoard prints every number with 5 significant digits (a
        # layer count of 2 reads "2.0000"): integers are shown as strings.
        dtype = api_pb2.DATA_TYPE_STRING
    if dtype == api_pb2.DATA_TYPE_STRING:
        values = [str(v) for v in values]
    listed = struct_pb2.ListValue(values=[_value(v) for v in values])
    return api_pb2.HParamInfo(name=name, type=dtype, domain_discrete=listed)


def hparam_info(hp: Any) -> api_pb2.HParamInfo:
    """The HParams domain of one keras-tuner hyperparameter."""
    from keras_tuner.engine import hyperparameters as kt_hp

    if isinstance(hp, kt_hp.Fixed):
        return _discrete(hp.name, [hp.value])
    if isinstance(hp, kt_hp.Boolean):
        return _discrete(hp.name, [False, True])
    if isinstance(hp, kt_hp.Choice):
        return _discrete(hp.name, hp.values)
    if isinstance(hp, kt_hp.Int):
        values = list(hp.values) if hp.step is not None else None
        if values is not None and len(values) <= MAX_DISCRETE_INTS:
            return _discrete(hp.name, [int(v) for v in values])
    if isinstance(hp, (kt_hp.Int, kt_hp.Float)):
        return api_pb2.HParamInfo(
            name=hp.name, type=api_pb2.DATA_TYPE_FLOAT64,
            domain_interval=api_pb2.Interval(min_value=float(hp.min_value), max_value=float(hp.max_value)),
        )
    return api_pb2.HParamInfo(name=hp.name, type=api_pb2.DATA_TYPE_STRING)


def session_hparams(hp: keras_tuner.HyperParameters, status: str) -> dict[str, Any]:
    """A trial's active hyperparameter values (Hyperband's bookkeeping
    ``tuner/*`` values left out) plus its status, typed as the experiment
    config declares them."""
    types: dict[str, int] = {}
    for h in hp.space:
        types.setdefault(h.name, hparam_info(h).type)
    values = {}
    for k, v in hp.values.items():
        if k.startswith("tuner/"):
            continue
        values[k] = str(v) if types.get(k) == api_pb2.DATA_TYPE_STRING else v
    values[STATUS_HPARAM] = status
    return values


def write_session(run_dir: str, trial_id: str, hparams: dict[str, Any], metrics: dict[str, float],
                  status: str, start_time: float, end_time: float) -> None:
    """Writes one trial's session: start info, final metrics, end info."""
    with RunWriter(run_dir, filename_suffix=".ktplus-session") as w:
        w.summary(hparams_summary.session_start_pb(hparams, group_name=f"trial_{trial_id}",
                                                    start_time_secs=start_time), 0, start_time)
        for tag, value in sorted(metrics.items()):
            if value is not None and math.isfinite(value):
                w.scalar(tag, value, 0)
        w.summary(hparams_summary.session_end_pb(_SESSION_STATUS[status], end_time_secs=end_time), 0,
                  end_time)


#: TensorBoard's HParams dashboard shows the first five hyperparameters of
#: its list by default: the status and up to four ranked ones.
VISIBLE_RANKED = 4
#: A ranked hyperparameter is made visible from this share of the importance on.
VISIBLE_SHARE = 0.1


def _apply_ranking(infos: list[api_pb2.HParamInfo], ranking: dict[str, Any]) -> list[api_pb2.HParamInfo]:
    """Orders ``infos`` by importance (then the status, then the rest) and
    marks as ``differs`` only the few hyperparameters that mattered.

    TensorBoard sorts the experiment's hyperparameters by ``differs`` (True
    first), then by name, and its dashboard shows the first five: the flag
    is what puts them first and decides the default columns. The most
    important hyperparameter is always flagged, then the next ones while
    each holds at least `VISIBLE_SHARE` of the importance (at most
    `VISIBLE_RANKED`, so the status, first of the rest by name, is still
    shown); each ranked one's description gives its share and rank.
    """
    scores = {str(k): float(v) for k, v in (ranking.get("importance") or {}).items()}
    method = ranking.get("method", "")
    order = sorted(scores, key=lambda n: -scores[n])
    visible = {n for i, n in enumerate(order[:VISIBLE_RANKED]) if i == 0 or scores[n] >= VISIBLE_SHARE}
    by_name = {i.name: i for i in infos}
    ranked = [by_name[n] for n in order if n in by_name]
    rest = [i for i in infos if i.name not in scores and i.name != STATUS_HPARAM]
    for rank, info in enumerate(ranked, start=1):
        info.differs = info.name in visible
        info.description = (f"importance {scores[info.name]:.3f} ({method}), rank {rank} of {len(ranked)}"
                            if method else f"importance {scores[info.name]:.3f}, rank {rank} of {len(ranked)}")
    for info in rest:
        info.differs = False
    status = by_name[STATUS_HPARAM]
    status.differs = False  # listed right after the flagged ones ("_" sorts before letters): still shown
    return [*ranked, status, *rest]


def write_experiment(root: str, space: Iterable[Any], metric_tags: Iterable[str], objective: str,
                     ranking: dict[str, Any] | None = None) -> bool:
    """Writes (or rewrites, when the space, the metrics or the ranking
    changed) the experiment config to ``root``; ``metric_tags`` are added to
    those already listed. ``ranking`` (``{"method": ..., "importance":
    {name: share}}``, from the end of a search) orders the hyperparameters
    by importance and makes the important ones TensorBoard's default
    columns; it is kept, so later rewrites keep the order until the next
    ranking. Returns whether it wrote."""
    infos = [hparam_info(hp) for hp in space if not hp.name.startswith("tuner/")]
    status = _discrete(STATUS_HPARAM, list(STATUSES))
    status.display_name = "status"
    infos.append(status)
    for info in infos:  # TensorBoard shows hyperparameters that vary first
        info.differs = len(info.domain_discrete.values) != 1
    unique: dict[str, api_pb2.HParamInfo] = {}
    for info in infos:  # a name registered under several conditions: list it once
        unique.setdefault(info.name, info)
    infos = list(unique.values())
    state_path = os.path.join(root, EXPERIMENT_STATE)
    saved = read_json_dict(state_path)
    ranking = ranking if ranking is not None else saved.get("ranking")
    if ranking:
        infos = _apply_ranking(infos, ranking)
    # Metrics accumulate: a tag any trial wrote stays in the config.
    tags = sorted(set(metric_tags) | set(saved.get("metrics", [])), key=_metric_order)
    state = {"hparams": [i.SerializeToString().hex() for i in infos], "metrics": tags,
             **({"ranking": ranking} if ranking else {})}
    existing = ([name for name in os.listdir(root) if name.endswith(EXPERIMENT_SUFFIX)]
                if os.path.isdir(root) else [])
    if saved == state and len(existing) == 1:
        return False  # unchanged (a kill between writes leaves two: rewrite)
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(group="", tag=t),
                                  display_name=t, description=_describe(t, objective)) for t in tags]
    os.makedirs(root, exist_ok=True)
    old = [name for name in os.listdir(root) if name.endswith(EXPERIMENT_SUFFIX)]
    with RunWriter(root, filename_suffix=EXPERIMENT_SUFFIX) as w:
        w.summary(hparams_summary.experiment_pb(infos, metrics), 0)
    for name in old:
        with contextlib.suppress(FileNotFoundError):  # another worker removed it first
            os.unlink(os.path.join(root, name))
    # Bookkeeping beside event files that are never fsynced either: a lost state only rewrites the config.
    atomic_write_json(state_path, state, durable=False)
    return True


#: TensorBoard shows the first five metrics of the config by default.
_FIRST_METRICS = ("score", "pareto", "score_std", "best_epoch", "epochs_run", "trial_seconds", "num_params")


def _metric_order(tag: str) -> tuple[int, int | str]:
    if tag in _FIRST_METRICS:
        return (0, _FIRST_METRICS.index(tag))
    return (1 if tag.startswith("best/") else 2 if tag.startswith("last/") else 3, tag)


def _describe(tag: str, objective: str) -> str:
    if tag.startswith("best/"):
        return f"{tag[5:]} at the best epoch (best by {objective})"
    if tag.startswith("last/"):
        return f"{tag[5:]} at the last epoch run"
    return {
        "score": f"the trial's best {objective}",
        "best_epoch": "epoch (1-based) of the best objective value",
        "epochs_run": "epochs the trial really trained",
        "num_params": "model parameters",
        "trial_seconds": "wall time of the trial",
        "pruned": "1 if the trial was pruned",
        "pruned_epoch": "epoch (1-based) at which it was pruned",
        "score_std": f"standard deviation of {objective} over the cross-validation folds",
        "folds": "cross-validation folds the score averages",
        "pareto": "1 if the trial is on the Pareto front of the objectives (no completed trial is as "
                  "good in all and better in one), else 0",
    }.get(tag, tag)
