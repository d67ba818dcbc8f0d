"""Per-trial TensorBoard logging: epoch scalars, text, the HParams session,
the search overview run, and the Pareto front of a multi-objective search."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from collections.abc import Iterable
from typing import Any

import keras

from ktplus._atomic import atomic_write_json, read_json_dict
from ktplus._compat import MultiObjective
from ktplus._facts import COMPLETED, FAILED, INFEASIBLE, PRUNED, TRIAL_SECONDS
from ktplus.logging._hparams import session_hparams, write_experiment, write_session
from ktplus.logging._images import write_augmentation_preview
from ktplus.logging._writer import RunWriter, replacing
from ktplus.training._pruning import CurveStore

OVERVIEW_RUN = "search_overview"
OVERVIEW_SUFFIX = ".ktplus-overview"
#: The session metric marking the Pareto front, its event files (one per
#: trial run, replaced when the trial's membership changes) and the record
#: of what was last written.
PARETO_TAG = "pareto"
PARETO_SUFFIX = ".ktplus-pareto"
PARETO_STATE = ".ktplus_pareto.json"


def trial_run_dir(root: str, trial_id: str) -> str:
    return os.path.join(root, f"trial_{trial_id}")


def _markdown_table(values: dict[str, Any]) -> str:
    rows = ["| hyperparameter | value |", "|---|---|"]
    rows += [f"| {k} | {v} |" for k, v in values.items()]
    return "\n".join(rows)


def _model_summary(model: keras.Model) -> str:
    lines: list[str] = []
    try:
        model.summary(print_fn=lambda line, *a, **k: lines.append(str(line)), line_length=100)
    except Exception as e:  # a summary is never worth failing a trial
        return f"(no summary: {e})"
    return "```\n" + "\n".join(lines) + "\n```"


class TrialLogger(keras.callbacks.Callback):
    """Writes one execution's epoch scalars (every log entry, the learning
    rate and the epoch's wall time) and, for the first execution, the
    model summary and hyperparameter table as text.

    Args:
        scalars_dir: Run directory for the epoch scalars.
        text_dir: Run directory for the text (None: no text).
        hyperparameters: The trial's active hyperparameter values.
        preview: A few raw training images: with ``text_dir``, the model's
            augmentation of them is written there as an image
            (`ktplus.logging._images`).
    """

    def __init__(self, scalars_dir: str, text_dir: str | None, hyperparameters: dict[str, Any],
                 preview: Any = None) -> None:
        super().__init__()
        self.scalars_dir = scalars_dir
        self.text_dir = text_dir
        self.hyperparameters = hyperparameters
        self.preview = preview
        self.last_logs: dict[str, float] = {}
        self.epochs = 0
        self.num_params: int | None = None
        self._writer: RunWriter | None = None
        self._text_pending = False
        self._t0 = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._writer = RunWriter(self.scalars_dir, filename_suffix=".ktplus")
        self._text_pending = self.text_dir is not None
        if self.text_dir is not None and self.preview is not None:
            try:
                write_augmentation_preview(self.text_dir, self.model, self.preview)
            except Exception as e:  # a preview is never worth failing a trial
                warnings.warn(f"ktplus: TensorBoard's augmentation preview failed: {e!r}", stacklevel=2)

    def _describe_model(self) -> None:
        """Parameter count and text, once the model is built (a subclassed
        model builds on its first batch)."""
        if self.num_params is None:
            try:
                self.num_params = int(self.model.count_params())
            except ValueError:
                return
        if self._text_pending and self.text_dir is not None:
            self._text_pending = False
            with RunWriter(self.text_dir, filename_suffix=".ktplus-text") as w:
                w.text("model_summary", _model_summary(self.model))
                w.text("hyperparameters", _markdown_table(self.hyperparameters))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._t0
        self._describe_model()
        values: dict[str, float] = {}
        for k, v in (logs or {}).items():
            try:
                values[k] = float(v)
            except (TypeError, ValueError):
                continue
        if "learning_rate" not in values:
            try:
                values["learning_rate"] = float(keras.ops.convert_to_numpy(
                    self.model.optimizer.learning_rate))
            except (AttributeError, TypeError, ValueError):
                pass
        values["epoch_seconds"] = seconds
        self.last_logs = values
        self.epochs += 1
        if self._writer is not None:
            for k, v in values.items():  # NaN/inf too: they show where a trial broke
                self._writer.scalar(k, v, epoch)
            self._writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class SearchLogger:
    """The TensorBoard side of a search: one directory, sessions, overview.

    Args:
        root: The TensorBoard log directory of the search.
        objective: The tuner's objective.
        curves: The search's curve store: the overview is drawn from the
            finished trials' curves, which every worker can read.
    """

    def __init__(self, root: str, objective: Any, curves: CurveStore) -> None:
        self.root = root
        self.objective = objective
        self.curves = curves

    def start_trial(self, trial_id: str) -> None:
        """Clears what an interrupted or retried run of this trial left."""
        path = trial_run_dir(self.root, trial_id)
        if os.path.isdir(path):
            shutil.rmtree(path)
        state_path = os.path.join(self.root, PARETO_STATE)
        written = read_json_dict(state_path) if self.marks_pareto else {}
        if str(trial_id) in written:  # its pareto file went with the run: write it again when it ends
            del written[str(trial_id)]
            atomic_write_json(state_path, written, durable=False)

    def write_overview(self) -> None:
        """Rewrites the overview run whole, in trial order.

        TensorBoard discards a tag's later points when a file shows it an
        earlier step, so points appended by several processes (resumes,
        workers) out of order would vanish; one file rewritten from the
        finished trials' curves keeps the steps in order and never
        duplicates a trial.
        """
        direction = getattr(self.objective, "direction", "min")
        best_of = max if direction == "max" else min
        # "best so far" follows the one ranking (ktplus._ranking): a pruned trial's
        # partial score is drawn as an objective point but never becomes the best.
        full = set(self.curves.best_values(direction, states=(COMPLETED,)))
        points = [(int(trial_id), score, trial_id in full) for trial_id, score in
                  self.curves.best_values(direction, states=(COMPLETED, PRUNED)).items() if trial_id.isdigit()]
        run = os.path.join(self.root, OVERVIEW_RUN)
        old = os.listdir(run) if os.path.isdir(run) else []
        best = None
        with RunWriter(run, filename_suffix=OVERVIEW_SUFFIX) as w:
            for step, score, fully_trained in sorted(points):
                w.scalar("objective", score, step)
                if fully_trained:
                    best = score if best is None else best_of(best, score)
                if best is not None:
                    w.scalar("best_so_far", best, step)
        for name in old:
            if name.startswith("events.out.tfevents"):
                with contextlib.suppress(FileNotFoundError):  # another worker removed it first
                    os.unlink(os.path.join(run, name))

    def end_trial(self, trial: Any, status: str, metrics: dict[str, float], start: float,
                  space: Any) -> None:
        run_dir = trial_run_dir(self.root, trial.trial_id)
        end = time.time()
        metrics = {TRIAL_SECONDS: end - start, **metrics}  # the value the trial recorded, if any
        write_session(run_dir, trial.trial_id, session_hparams(trial.hyperparameters, status), metrics,
                      status, start, end)
        if status not in (FAILED, INFEASIBLE):
            self.write_overview()
        write_experiment(self.root, space, metrics, getattr(self.objective, "name", "objective"))

    def rank_hyperparameters(self, importance: Any, space: Any) -> None:
        """Rewrites the experiment config with the hyperparameters in order
        of ``importance`` (a `ktplus.importance` table), the important ones
        as TensorBoard's default columns. Never raises (a warning instead):
        logging must not stop a search."""
        try:
            ranking = {"method": importance.attrs.get("method", ""),
                       "importance": {str(n): float(v) for n, v in
                                      zip(importance["hyperparameter"], importance["importance"])}}
            write_experiment(self.root, space, [], getattr(self.objective, "name", "objective"), ranking=ranking)
        except Exception as e:
            warnings.warn(f"ktplus: TensorBoard logging of the hyperparameters' importance failed: {e!r}",
                          stacklevel=2)

    @property
    def marks_pareto(self) -> bool:
        """Whether the search has two or more objectives (its sessions then
        get the ``pareto`` metric)."""
        return isinstance(self.objective, MultiObjective) and len(self.objective.objectives) >= 2

    def mark_pareto(self, trials: Iterable[Any], space: Any) -> None:
        """Gives each completed trial's HParams session the metric
        ``pareto`` (1 on the front of ``trials``, 0 off it), writing only
        for the trials whose membership changed since the last call (in any
        process of the search: what was written is kept in the log
        directory); the experiment config lists the metric.

        Each value is written at a step that grows with the number of
        completed trials, in one event file per trial run that replaces the
        earlier one: TensorBoard shows the latest. Never raises (a warning
        instead): logging must not stop a search.

        Args:
            trials: Every trial of the search (keras-tuner `Trial` records).
            space: The search space's hyperparameters (for the config).
        """
        from ktplus._pareto import pareto_membership

        try:
            membership = pareto_membership(trials, self.objective)
            state_path = os.path.join(self.root, PARETO_STATE)
            written = read_json_dict(state_path)
            changed = {t: on for t, on in membership.items() if written.get(t) != on}
            if not changed:
                return
            for trial_id, on in changed.items():
                with replacing(trial_run_dir(self.root, trial_id), PARETO_SUFFIX) as w:
                    w.scalar(PARETO_TAG, 1.0 if on else 0.0, step=len(membership))
            write_experiment(self.root, space, [PARETO_TAG], getattr(self.objective, "name", "objective"))
            atomic_write_json(state_path, {**written, **membership}, durable=False)
        except Exception as e:
            warnings.warn(f"ktplus: TensorBoard logging of the Pareto front failed: {e!r}", stacklevel=2)
