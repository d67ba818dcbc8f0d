"""``keep_checkpoints=k``: only the k best trials' checkpoints stay on disk.

keras-tuner keeps the best-epoch weights of every trial
(``trial_<id>/checkpoint.weights.h5``) forever. With ``keep_checkpoints=k``
a ktplus tuner deletes, after each trial, the checkpoints that can no
longer be needed. It never deletes:

* the checkpoints of the k best trials by ktplus's one ranking
  (`ktplus._ranking`, the oracle's ``get_best_trials(k)``: the trials
  ``get_best_models(n <= k)``, ``evaluate`` and ``refit`` load, pruned
  trials after the fully trained ones) and, for such a trial that
  continued another (Hyperband's
  ``tuner/trial_id``), the checkpoint of that parent: keras-tuner's
  Hyperband loads it before the trial's own weights when it rebuilds the
  model;
* the checkpoint of any trial that has not finished (running, waiting for a
  retry, re-queued after a crash or a lost worker), nor the one it continues;
* with Hyperband, the checkpoint of any trial a later round of a bracket may
  still continue from (never a pruned trial: ktplus's Hyperband does not
  promote one).

Crash safety: `prune_checkpoints` runs once the oracle has recorded and saved
the ended trial (whose checkpoint was written during the trial), and only
deletes the files of finished trials outside that set. A finished trial's
score never changes and new trials only push others down the ranking, so a
deleted checkpoint is never needed again, and a kill at any point (between
two deletions included) leaves every kept file in place; a resumed search
goes on from the same state.

Distributed search: a worker reads the trials' statuses from the chief's
``trial.json`` files *before* it asks the chief for the ranking, so a trial
it sees finished and outside the top k can never re-enter it. The Hyperband
brackets live on the chief only: with Hyperband a worker deletes nothing
(run the search without workers, or tidy up after it with
`prune_checkpoints` on a tuner reloaded outside the cluster).
"""

from __future__ import annotations

import glob
import os
import warnings
import weakref
from typing import Any

from ktplus._compat import (
    HyperbandOracle,
    TrialStatus,
    local_oracle,
    saved_trials,
)
from ktplus._errors import invalid
from ktplus._ranking import tier
from ktplus.tuners._distributed import is_worker
from ktplus.tuners._oracles import promotable_trials

#: Trial statuses after which a trial never trains (nor loads a checkpoint) again.
FINISHED = (TrialStatus.COMPLETED, TrialStatus.FAILED)
#: keras-tuner's hyperparameter naming the trial a Hyperband trial continues.
PARENT = "tuner/trial_id"
#: Per tuner: the trials whose checkpoint is gone for good (so that each
#: trial's end does not list every earlier trial's files again).
_gone: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def keep_count(tuner: Any) -> int | None:
    """The tuner's ``keep_checkpoints`` (None: keep every checkpoint)."""
    options = getattr(tuner, "options", None)
    return getattr(options, "keep_checkpoints", None)


def _parent(trial: Any) -> str | None:
    hp = getattr(trial, "hyperparameters", None)
    parent = getattr(hp, "values", {}).get(PARENT) if hp is not None else None
    return None if parent is None else str(parent)


def checkpoint_files(tuner: Any, trial_id: str) -> list[str]:
    """The files of one trial's checkpoint that exist: keras-tuner's weights
    file, its TensorFlow-format shards, and leftover temporary files of
    ktplus's atomic writes (``.tmp-<pid>-<name>``, see `AtomicSaveBestEpoch`)."""
    path = tuner._checkpoint_path(trial_id)
    directory, name = os.path.split(path)
    found = [path] if os.path.exists(path) else []
    found += glob.glob(glob.escape(path) + ".*")
    found += glob.glob(os.path.join(glob.escape(directory), f".tmp-*-{glob.escape(name)}"))
    return found


def _delete(tuner: Any, trial_id: str) -> tuple[bool, bool]:
    """Deletes a trial's checkpoint files: (any deleted, none left)."""
    deleted = failed = False
    for fname in checkpoint_files(tuner, trial_id):
        try:
            os.unlink(fname)
            deleted = True
        except FileNotFoundError:  # another worker was quicker
            pass
        except OSError as e:  # a disk-space option must not end the search
            failed = True
            warnings.warn(f"keep_checkpoints: could not delete {fname}: {e}", RuntimeWarning, stacklevel=3)
    return deleted, not failed


def prune_checkpoints(tuner: Any) -> list[str]:
    """Deletes the checkpoints ``keep_checkpoints`` no longer keeps.

    Called by the tuner after each trial ended (after the oracle recorded
    it); does nothing with ``keep_checkpoints=None``. See the module's
    documentation for what is never deleted.

    Args:
        tuner: A ktplus tuner.

    Returns:
        The ids of the trials whose checkpoint files were deleted by this
        call, in order.

    Example:

    >>> import tempfile
    >>> import ktplus
    >>> from ktplus.tuners._keep import prune_checkpoints
    >>> hm = ktplus.DenseHyperModel(input_shape=(4,), num_classes=3)
    >>> tuner = ktplus.RandomSearch(hm, objective="val_accuracy", max_trials=3,
    ...                             keep_checkpoints=1, directory=tempfile.mkdtemp())
    >>> prune_checkpoints(tuner)  # no trial has ended yet
    []
    """
    keep = keep_count(tuner)
    if keep is None:
        return []
    oracle = tuner.oracle
    # The statuses first, the ranking second: a trial already finished and
    # out of this ranking can never get back into the top k.
    if is_worker():
        if isinstance(local_oracle(oracle), HyperbandOracle):
            return []  # its brackets live on the chief: any checkpoint may still be continued
        trials = saved_trials(tuner.project_dir)
        if trials is None:
            return []  # a record could not be read: decide at the next trial's end
        promotable: set[str] = set()
    else:
        trials = {str(tid): trial for tid, trial in oracle.trials.items()}
        promotable = promotable_trials(oracle) or set()
    finished = {tid for tid, trial in trials.items() if trial.status in FINISHED}
    # The one ranking: what get_best_models(n <= k), evaluate() and refit() load.
    best = oracle.get_best_trials(keep)

    kept = {str(trial.trial_id) for trial in best} | promotable
    if len(best) == keep and best[-1].score is not None:
        # Ties with the k-th best (in its tier): the oracle orders them by its trial dict, which a
        # resume rebuilds in directory-listing order, so any of them may rank in the top k later.
        last = best[-1]
        kept.update(tid for tid, trial in trials.items() if trial.score == last.score and tier(trial) == tier(last))
    # Rebuilding a kept model, or training an unfinished trial, loads the checkpoint it continues.
    needing_parent = [*best, *(trial for tid, trial in trials.items() if tid not in finished)]
    kept.update(p for p in map(_parent, needing_parent) if p is not None)

    done = _gone.setdefault(tuner, set())
    deleted = []
    for tid in sorted(finished - kept - done):
        removed, gone = _delete(tuner, tid)
        if gone:  # never needed again: not looked at again by this tuner
            done.add(tid)
        if removed:
            deleted.append(tid)
    return deleted


def check_num_models(tuner: Any, num_models: Any) -> None:
    """Refuses to load more models than ``keep_checkpoints`` keeps.

    Args:
        tuner: A ktplus tuner.
        num_models: How many of the best trials' models are asked for.

    Raises:
        ValueError: when ``num_models`` exceeds ``keep_checkpoints`` (the
            checkpoints of the trials past the k best were deleted).
    """
    keep = keep_count(tuner)
    if keep is not None and isinstance(num_models, int) and num_models > keep:
        raise invalid("num_models", num_models,
                      f"at most keep_checkpoints={keep}: only the {keep} best trials' checkpoints are "
                      "kept on disk. Ask for fewer models, or build and train more from "
                      "`tuner.get_best_hyperparameters(n)`; pass a larger keep_checkpoints (or None) "
                      "to the tuner to keep more")
