"""Per-trial TensorBoard logging: epoch scalars, text, the HParams session,
and the search overview run."""

from __future__ import annotations

import math
import os
import shutil
import time
from typing import Any

import keras

from ktplus.logging._hparams import EXPERIMENT_STATE, session_hparams, write_experiment, write_session
from ktplus.logging._writer import RunWriter

OVERVIEW_RUN = "search_overview"


def _overview_suffix(trial_id: str) -> str:
    return f".ktplus-trial-{trial_id}"


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
    """

    def __init__(self, scalars_dir: str, text_dir: str | None, hyperparameters: dict[str, Any]) -> None:
        super().__init__()
        self.scalars_dir = scalars_dir
        self.text_dir = text_dir
        self.hyperparameters = hyperparameters
        self.last_logs: dict[str, float] = {}
        self.epochs = 0
        self.num_params: int | None = None
        self._writer: RunWriter | None = None
        self._t0 = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._writer = RunWriter(self.scalars_dir, filename_suffix=".ktplus")
        self.num_params = int(self.model.count_params())
        if self.text_dir is not None:
            with RunWriter(self.text_dir, filename_suffix=".ktplus-text") as w:
                w.text("model_summary", _model_summary(self.model))
                w.text("hyperparameters", _markdown_table(self.hyperparameters))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._t0
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
    """

    def __init__(self, root: str, objective: Any) -> None:
        self.root = root
        self.objective = objective

    def start_trial(self, trial_id: str) -> None:
        """Clears what an interrupted or retried run of this trial left: its
        run, and its point in the overview (each trial's overview point is
        its own file, so it can be replaced without touching the others)."""
        path = trial_run_dir(self.root, trial_id)
        if os.path.isdir(path):
            shutil.rmtree(path)
        overview = os.path.join(self.root, OVERVIEW_RUN)
        if os.path.isdir(overview):
            for name in os.listdir(overview):
                if name.endswith(_overview_suffix(trial_id)):
                    os.unlink(os.path.join(overview, name))

    def end_trial(self, trial: Any, status: str, metrics: dict[str, float], start: float,
                  best_so_far: float | None, space: Any) -> None:
        run_dir = trial_run_dir(self.root, trial.trial_id)
        end = time.time()
        metrics = {**metrics, "trial_seconds": end - start}
        write_session(run_dir, trial.trial_id, session_hparams(trial.hyperparameters, status), metrics,
                      status, start, end)
        score = metrics.get("score")
        try:
            step = int(trial.trial_id)
        except ValueError:
            step = 0
        if status != "failed" and score is not None and math.isfinite(score):
            with RunWriter(os.path.join(self.root, OVERVIEW_RUN),
                           filename_suffix=_overview_suffix(trial.trial_id)) as w:
                w.scalar("objective", score, step)
                if best_so_far is not None:
                    w.scalar("best_so_far", best_so_far, step)
        known = set(metrics)
        try:
            import json

            with open(os.path.join(self.root, EXPERIMENT_STATE)) as f:
                known |= set(json.load(f).get("metrics", []))
        except (OSError, ValueError):
            pass
        write_experiment(self.root, space, known, getattr(self.objective, "name", "objective"))
