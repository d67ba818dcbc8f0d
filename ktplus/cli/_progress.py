"""The progress display: trial i of N, best so far, elapsed and remaining
time, as a bar on a terminal and as one line per trial otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ktplus import _facts
from ktplus._ranking import best_trials


def fmt_seconds(s: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on.

    >>> fmt_seconds(75), fmt_seconds(3725)
    ('1:15', '1:02:05')
    """
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """Trial i of N, best so far, elapsed and remaining time.

    Args:
        total: The number of trials expected, or None when unknown.
        objective: The objective's name, shown with the best score.
        stream: Where to write (default: ``sys.stdout``); a terminal gets
            one bar redrawn in place, anything else one line per update.
    """

    WIDTH = 24

    def __init__(self, total: int | None, objective: str, stream: TextIO | None = None) -> None:
        self.total = total
        self.objective = objective
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.done_at_start: int | None = None

    def update(self, done: int, best: float | None, last: str = "", front: int | None = None) -> None:
        """Shows ``done`` finished trials, the best score (or, for several
        objectives, the size of the Pareto front) and the last trial's outcome."""
        if self.done_at_start is None:
            self.done_at_start = done - 1 if done else 0
        elapsed = time.monotonic() - self.start
        ran = done - self.done_at_start
        parts = []
        if self.total:
            filled = int(self.WIDTH * min(done, self.total) / self.total)
            parts.append(f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] trial {done}/{self.total}")
        else:
            parts.append(f"trial {done}")
        if best is not None:
            parts.append(f"best {self.objective} {best:.4g}")
        if front is not None:
            parts.append(f"Pareto front {front} trial{'' if front == 1 else 's'}")
        parts.append(f"{fmt_seconds(elapsed)} elapsed")
        if self.total and ran > 0 and done < self.total:
            parts.append(f"~{fmt_seconds(elapsed / ran * (self.total - done))} left")
        line = " | ".join(parts) + (f" | {last}" if last and not self.tty else "")
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Ends the bar's line on a terminal."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def hyperband_total(oracle: Any) -> int | None:
    """The number of trials a Hyperband oracle will run, or None if unknown."""
    try:
        total = 0
        for bracket in range(oracle._get_num_brackets()):
            for round_num in range(oracle._get_num_rounds(bracket)):
                total += oracle._get_size(bracket, round_num)
        return int(total * oracle.hyperband_iterations)
    except Exception:
        return None


def with_progress(cls: type, progress_factory: Callable[[Any], Progress]) -> type:
    """A subclass of the tuner class ``cls`` that shows a `Progress` built by
    ``progress_factory(tuner)`` when the search begins."""

    class WithProgress(cls):  # type: ignore[misc, valid-type]
        def on_search_begin(self) -> None:
            super().on_search_begin()
            self._progress = progress_factory(self)

        def on_trial_end(self, trial: Any) -> None:
            from ktplus._pareto import objective_directions, objective_values

            super().on_trial_end(trial)
            finished = [t for t in self.oracle.trials.values()
                        if str(t.status) in ("COMPLETED", "FAILED")]
            detail = f"trial {trial.trial_id} {_facts.status_of(trial)}"
            names = objective_directions(self.oracle.objective)[0]
            if len(names) > 1:  # a trial's score mixes the objectives: show each, and the front
                values = objective_values(trial, self.oracle.objective)
                if trial.score is not None:
                    detail += f" ({', '.join(f'{n} {v:.4g}' for n, v in zip(names, values))})"
                self._progress.update(len(finished), None, detail, front=len(self.pareto_front()))
                return
            best = best_trials(self.oracle, 1)  # ktplus's one ranking: fully trained trials first
            score = best[0].score if best else None
            if trial.score is not None:
                detail += f" ({self.oracle.objective.name} {trial.score:.4g})"
            self._progress.update(len(finished), score, detail)

        def on_search_end(self) -> None:
            super().on_search_end()
            self._progress.close()

    WithProgress.__name__ = cls.__name__
    WithProgress.__qualname__ = cls.__qualname__
    return WithProgress
