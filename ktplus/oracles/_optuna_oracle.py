"""`OptunaOracle`: a keras-tuner oracle whose configurations come from an
Optuna sampler through Optuna's ask-and-tell interface.

keras-tuner's trial records stay the one truth. The study lives in memory:
``populate_space`` asks it for a trial (only the active hyperparameters are
suggested), ``end_trial`` tells it how the trial ended: its objective
values, pruned (with its epoch curve as intermediate values) or failed; a
model over ``max_model_size`` is told as infeasible (a violated
``max_model_size`` constraint, with the worst values seen so far). On a
resume the study is rebuilt from the trial records; the only thing the
records cannot hold, the samplers' own per-trial and per-study system
attributes (CMA-ES's state, NSGA-II's generations, QMC's sequence index),
is saved with keras-tuner's oracle state (``oracle.json``) after every
trial and joined back by trial id, so a resumed sampler knows every
finished trial. In keras-tuner's chief/worker mode the oracle, and so the
sampler, lives on the chief.
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal

import keras_tuner
import optuna
from optuna.trial import TrialState

from ktplus._compat import TrialStatus
from ktplus._facts import CURVES_DIR, is_pruned
from ktplus._pareto import objective_directions, objective_values
from ktplus._seed import check_seed, oracle_seed
from ktplus.oracles._samplers import check_sampler, make_sampler, quiet_optuna
from ktplus.oracles._space import active_params, suggest

#: The constraint an oversized model violates (Optuna's constraint name).
SIZE_CONSTRAINT = "max_model_size"
#: Where a trial's keras-tuner id is kept on its Optuna trial.
TRIAL_ID_ATTR = "keras_tuner_trial_id"


def study_directions(objective: Any) -> list[Literal["minimize", "maximize"]]:
    """Optuna's directions for a keras-tuner objective, one per objective."""
    return ["maximize" if d == "max" else "minimize" for d in objective_directions(objective)[1]]


class OptunaOracle(keras_tuner.Oracle):
    """A keras-tuner oracle driven by an Optuna sampler.

    Use it with `ktplus.Tuner(oracle=...)` (or through
    `ktplus.OptunaSearch`); every ktplus option (lr decay, early stopping,
    pruning, fast path, TensorBoard, cross-validation, resume, distributed
    search) works unchanged.

    Args:
        objective: As keras-tuner's: a metric name, a `keras_tuner.Objective`,
            or a list of them for a multi-objective (Pareto) search; the
            built-in "num_params" and "trial_seconds" (both minimized) need
            no compiled metric.
        max_trials: The number of trials.
        sampler: "tpe" (default: multivariate TPE over grouped, conditional
            spaces; Optuna's multi-objective TPE with several objectives),
            "cmaes", "gp" (needs PyTorch), "qmc", "random", "nsga2" (two or
            more objectives), or any `optuna.samplers.BaseSampler`.
        seed: Seeds a named sampler: the same seed (``seed=0`` included)
            suggests the same sequence of configurations in a single-process
            search. None: a random seed, drawn once and kept with the
            oracle's state (a resumed search goes on with it).
        hyperparameters: As keras-tuner's oracles.
        allow_new_entries: As keras-tuner's oracles.
        tune_new_entries: As keras-tuner's oracles.
        max_retries_per_trial: As keras-tuner's oracles.
        max_consecutive_failed_trials: As keras-tuner's oracles.

    Attributes:
        study: The in-memory `optuna.Study` (its trials mirror keras-tuner's).
        sampler: The Optuna sampler.

    Example:

    >>> import ktplus
    >>> oracle = ktplus.OptunaOracle(objective="val_accuracy", max_trials=5, sampler="tpe", seed=1)
    >>> type(oracle.sampler).__name__
    'TPESampler'
    """

    def __init__(
        self,
        objective: Any = None,
        max_trials: int | None = None,
        sampler: Any = "tpe",
        seed: int | None = None,
        hyperparameters: Any = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
    ) -> None:
        from ktplus._objectives import create_objective

        objective = create_objective(objective)
        self.directions = study_directions(objective)
        check_sampler(sampler, self.directions)
        seed = check_seed(seed)
        super().__init__(objective=objective, max_trials=max_trials, hyperparameters=hyperparameters,
                         allow_new_entries=allow_new_entries, tune_new_entries=tune_new_entries,
                         seed=oracle_seed(seed),
                         max_retries_per_trial=max_retries_per_trial,
                         max_consecutive_failed_trials=max_consecutive_failed_trials)
        # The given seed (0 included), else keras-tuner's draw, as a plain int.
        self.seed: int = int(self.seed)
        self._seed_state = self.seed
        self.sampler_name: str | None = sampler.lower() if isinstance(sampler, str) else None
        self.sampler = make_sampler(sampler, self.seed)
        self.study = self._new_study()
        #: keras-tuner trial id -> Optuna trial number.
        self._numbers: dict[str, int] = {}
        #: Oversized trials waiting for a completed trial's values.
        self._waiting_infeasible: list[str] = []
        #: Enqueued configurations (`ktplus.Tuner.enqueue_trial`).
        self.queue: Any = None

    def _new_study(self) -> optuna.Study:
        with quiet_optuna():
            return optuna.create_study(sampler=self.sampler, directions=list(self.directions))

    # -- ask -------------------------------------------------------------------

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Asks the sampler for a configuration (an enqueued one first)."""
        with quiet_optuna():
            entry = self.queue.take(trial_id) if self.queue is not None else None
            if entry is not None:
                self.study.enqueue_trial(entry)
            trial = self.study.ask()
            values = suggest(trial, self.get_space())
            trial.set_user_attr(TRIAL_ID_ATTR, str(trial_id))
        self._numbers[str(trial_id)] = trial.number
        return {"status": TrialStatus.RUNNING, "values": values}

    # -- tell ------------------------------------------------------------------

    @keras_tuner.synchronized
    def end_trial(self, trial: Any) -> None:
        """keras-tuner's ``end_trial``, then tells the sampler how it ended."""
        try:
            super().end_trial(trial)
        finally:
            if self.tell_ended_trial(trial.trial_id):
                self.save()  # oracle.json with what the tell changed (the sampler's attributes)

    def tell_ended_trial(self, trial_id: str) -> bool:
        """Tells the study how keras-tuner's trial ``trial_id`` ended (once;
        nothing while it waits for a retry). ktplus's lost-worker recovery
        calls it for a trial it fails by hand.

        Returns:
            Whether the study changed.
        """
        trial = self.trials.get(trial_id)
        number = self._numbers.get(str(trial_id))
        if trial is None or number is None or trial_id in self._retry_queue:
            return False
        frozen = self.study.get_trials(deepcopy=False)[number]
        if frozen.state.is_finished():
            return False
        state, values, curve = self._outcome(trial)
        with quiet_optuna():
            live = optuna.trial.Trial(self.study, frozen._trial_id)
            if state == "infeasible":
                live.set_constraint(SIZE_CONSTRAINT, 1.0)
                worst = self._worst_values()
                if worst is None:
                    self._waiting_infeasible.append(str(trial_id))
                else:
                    self.study.tell(number, worst)
                return True
            for step, value in curve.items():
                live.report(value, step)
            self.study.tell(number, values, state=state)
            if state == TrialState.COMPLETE and self._waiting_infeasible:
                self._tell_waiting()
        return True

    def _tell_waiting(self) -> None:
        worst = self._worst_values()
        if worst is None:
            return
        for trial_id in self._waiting_infeasible:
            self.study.tell(self._numbers[trial_id], worst)
        self._waiting_infeasible = []

    def _outcome(self, trial: Any) -> tuple[Any, Any, dict[int, float]]:
        """(state, values, intermediate values) of an ended keras-tuner trial."""
        status = trial.status
        if status == TrialStatus.STOPPED:
            return "infeasible", None, {}
        if status != TrialStatus.COMPLETED:
            return TrialState.FAIL, None, {}
        curve = self._curve(trial.trial_id) if len(self.directions) == 1 else {}
        if is_pruned(trial):
            return TrialState.PRUNED, None, curve
        values = objective_values(trial, self.objective)
        if not all(math.isfinite(v) for v in values):
            return TrialState.FAIL, None, curve
        return TrialState.COMPLETE, values, curve

    def _curve(self, trial_id: str) -> dict[int, float]:
        """The trial's objective by epoch, from ktplus's curve files (the
        mean over its folds with cross-validation; {} without a ktplus tuner)."""
        from ktplus.training._pruning import CurveStore

        directory = getattr(self, "_directory", None)
        if directory is None:
            return {}
        store = CurveStore(os.path.join(str(directory), self._project_name, CURVES_DIR))
        return {step: v for step, v in store.trial_curve(trial_id).items() if math.isfinite(v)}

    def _worst_values(self) -> list[float] | None:
        """Each objective's worst value over the completed trials (what an
        infeasible trial is told with, beside its violated constraint)."""
        complete = [t.values for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if not t.system_attrs.get(f"constraints:{SIZE_CONSTRAINT}")]
        if not complete:
            return None
        return [(min if d == "maximize" else max)(v[i] for v in complete) for i, d in enumerate(self.directions)]

    # -- resume ----------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        trials = self.study.get_trials(deepcopy=False)
        state["optuna"] = {
            "study_system_attrs": dict(self.study._storage.get_study_system_attrs(self.study._study_id)),
            "trial_system_attrs": {tid: dict(trials[n].system_attrs) for tid, n in self._numbers.items()
                                   if n < len(trials)},
            # What the sampler was told of each trial (for reading; rebuilt from the records on reload).
            "trial_states": {tid: trials[n].state.name for tid, n in self._numbers.items() if n < len(trials)},
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._saved_optuna = state.get("optuna") or {}

    def reload(self) -> None:
        """keras-tuner's reload, then the study rebuilt from the trial records."""
        super().reload()
        self._rebuild(getattr(self, "_saved_optuna", {}))

    def _rebuild(self, saved: dict[str, Any]) -> None:
        """A fresh study holding every keras-tuner trial, in start order:
        finished ones with their outcome, the rest (running, or waiting for
        a retry) as running trials that are told when they end."""
        if self.sampler_name is not None:  # a resumed seeded sampler must not replay its first draws
            self.sampler = make_sampler(self.sampler_name, self.seed + len(self.trials))
        self.study = self._new_study()
        self._numbers = {}
        self._waiting_infeasible = []
        storage, study_id = self.study._storage, self.study._study_id
        for key, value in (saved.get("study_system_attrs") or {}).items():
            storage.set_study_system_attr(study_id, key, value)
        system_attrs = saved.get("trial_system_attrs") or {}
        order = [t for t in self.start_order if t in self.trials]
        order += sorted(t for t in self.trials if t not in order)
        finished = set(self.end_order) - set(self._retry_queue)
        infeasible: list[tuple[str, dict[str, Any], Any, dict[str, Any]]] = []
        space = self.get_space()
        with quiet_optuna():
            for trial_id in order:
                trial = self.trials[trial_id]
                params, dists = active_params(space, trial.hyperparameters.values)
                attrs = dict(system_attrs.get(trial_id) or {})
                user_attrs = {TRIAL_ID_ATTR: trial_id}
                state, values, curve = (self._outcome(trial) if trial_id in finished
                                        else (TrialState.RUNNING, None, {}))
                if state == "infeasible":
                    attrs[f"constraints:{SIZE_CONSTRAINT}"] = 1.0
                    infeasible.append((trial_id, params, dists, attrs))
                    state = TrialState.RUNNING
                self.study.add_trial(optuna.trial.create_trial(
                    state=state, values=values, params=params, distributions=dists,
                    intermediate_values=curve or None, system_attrs=attrs, user_attrs=user_attrs))
                self._numbers[trial_id] = len(self._numbers)
            self._waiting_infeasible = [t for t, *_ in infeasible]
            self._tell_waiting()

