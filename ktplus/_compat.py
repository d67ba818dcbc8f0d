"""Every use of keras-tuner's internals, in one place, behind one version check.

ktplus builds on keras-tuner's private modules (``keras_tuner.src...``), on
private methods it overrides (``_build_and_fit_model``, ``_try_build``,
``_run_and_update_trial``, ``_try_run_and_update_trial``) and on the text of
two of its error messages. Those are not part of keras-tuner's
public API and may change in any release, so this module refuses, loudly and
at import, a keras-tuner version ktplus was not tested with (set
``KTPLUS_SKIP_KERAS_TUNER_CHECK=1`` to try an untested version anyway).
Nothing else in ktplus imports ``keras_tuner.src``.
"""

from __future__ import annotations

import collections
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import keras_tuner

#: keras-tuner releases whose internals ktplus was tested against.
TESTED_KERAS_TUNER = ("1.4.8",)


def check_keras_tuner_version(version: str = keras_tuner.__version__) -> None:
    """Raises ImportError for a keras-tuner release ktplus was not tested with."""
    if version in TESTED_KERAS_TUNER or os.environ.get("KTPLUS_SKIP_KERAS_TUNER_CHECK") == "1":
        return
    raise ImportError(
        f"ktplus's tuners use keras-tuner internals tested with keras-tuner "
        f"{', '.join(TESTED_KERAS_TUNER)}, but keras-tuner {version} is installed. Install a tested "
        f"version (pip install 'keras-tuner=={TESTED_KERAS_TUNER[-1]}'), or set "
        "KTPLUS_SKIP_KERAS_TUNER_CHECK=1 to try this one at your own risk."
    )


check_keras_tuner_version()

from keras.src.saving import saving_lib as _saving_lib  # noqa: E402  (keras-tuner imported Keras)
from keras_tuner.src import utils as _kt_utils  # noqa: E402
from keras_tuner.src.distribute import utils as dist_utils  # noqa: E402
from keras_tuner.src.engine import objective as objective_module  # noqa: E402
from keras_tuner.src.engine import oracle as oracle_module  # noqa: E402
from keras_tuner.src.engine import trial as trial_module  # noqa: E402
from keras_tuner.src.engine import tuner_utils  # noqa: E402
from keras_tuner.src.engine.hyperparameters import HyperParameters  # noqa: E402
from keras_tuner.src.tuners.bayesian import BayesianOptimizationOracle  # noqa: E402
from keras_tuner.src.tuners.hyperband import HyperbandOracle  # noqa: E402

from ktplus._atomic import atomic_write_text  # noqa: E402

TrialStatus = trial_module.TrialStatus
Trial = trial_module.Trial
MultiObjective = objective_module.MultiObjective
DefaultObjective = objective_module.DefaultObjective
average_metrics_dicts = tuner_utils.average_metrics_dicts
convert_to_metrics_dict = tuner_utils.convert_to_metrics_dict
create_objective = objective_module.create_objective

__all__ = [
    "BayesianOptimizationOracle",
    "DefaultObjective",
    "HyperParameters",
    "HyperbandOracle",
    "KERAS_TUNER_CALLBACKS",
    "MultiObjective",
    "OversizedModelError",
    "BestEpochSaver",
    "SaveBestEpoch",
    "TESTED_KERAS_TUNER",
    "Trial",
    "TrialStatus",
    "TunerHooks",
    "atomic_state_writes",
    "chief_server",
    "grpc_parts",
    "average_metrics_dicts",
    "convert_to_metrics_dict",
    "create_objective",
    "dist_utils",
    "is_consecutive_failure_error",
    "objective_names",
    "oracle_lock",
]


def objective_names(objective: Any) -> list[str]:
    """The metric names an objective reads (none for the default objective)."""
    if isinstance(objective, MultiObjective):
        return [o.name for o in objective.objectives]
    if isinstance(objective, DefaultObjective):
        return []
    return [objective.name]


def is_consecutive_failure_error(error: BaseException) -> bool:
    """Whether ``error`` is keras-tuner's "too many consecutive failures"
    (``Oracle._check_consecutive_failures``, matched by its text)."""
    return isinstance(error, RuntimeError) and "consecutive failures" in str(error)


@contextmanager
def oracle_lock(oracle: Any) -> Iterator[None]:
    """Holds the lock keras-tuner's ``@synchronized`` oracle methods use."""
    name = threading.current_thread().name
    lock = oracle_module.LOCKS[oracle]
    lock.acquire()
    oracle_module.THREADS[oracle] = name
    try:
        yield
    finally:
        oracle_module.THREADS[oracle] = None
        lock.release()


class _CountedPatch:
    """``owner.name`` replaced by ``replacement`` while at least one user
    holds the patch: nested and concurrent holds are counted, and the
    original is back when the last one is released."""

    def __init__(self, owner: Any, name: str, replacement: Any) -> None:
        self.owner, self.name, self.replacement = owner, name, replacement
        self.original: Any = None
        self._users = 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if self._users == 0:
                self.original = getattr(self.owner, self.name)
                setattr(self.owner, self.name, self.replacement)
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                setattr(self.owner, self.name, self.original)
                self.original = None


# -- atomic state writes, for ktplus's own tuners only -------------------------

_atomic_lock = threading.Lock()
_atomic_dirs: collections.Counter[str] = collections.Counter()


def _dispatch_save_json(path: Any, obj: Any) -> str:
    """keras-tuner's ``save_json``, atomic under a ktplus tuner's project."""
    original = _save_json_patch.original or _kt_utils.save_json
    text_path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
    if "://" not in text_path:
        absolute = os.path.abspath(text_path)
        if any(absolute.startswith(d + os.sep) for d in list(_atomic_dirs)):
            text = json.dumps(obj)
            # Atomic (a killed process leaves the old file or the new one), without fsyncs: keras-tuner
            # rewrites its state files several times a trial and never syncs them itself.
            atomic_write_text(absolute, text, durable=False)
            return text
    return original(path, obj)


@contextmanager
def atomic_state_writes(project_dir: str) -> Iterator[None]:
    """Makes keras-tuner's JSON state writes under ``project_dir`` atomic
    while the context is open (a temporary file, then a rename): a kill
    mid-write leaves the old file or the new one, never half of one. They
    are not fsynced (keras-tuner never syncs them either): an operating-
    system crash may lose the last writes, never leave a torn file.

    keras-tuner writes ``oracle.json``, ``trial.json`` and the tuner state
    through ``keras_tuner.src.utils.save_json``; it is swapped for a
    dispatcher only while a ktplus tuner works (nested and concurrent uses
    are counted) and restored after, and writes outside the ktplus tuners'
    project directories go to keras-tuner's own function unchanged.
    """
    directory = os.path.abspath(project_dir)
    with _atomic_lock:
        _atomic_dirs[directory] += 1
    _save_json_patch.acquire()
    try:
        yield
    finally:
        _save_json_patch.release()
        with _atomic_lock:
            _atomic_dirs[directory] -= 1
            if _atomic_dirs[directory] <= 0:
                del _atomic_dirs[directory]


_save_json_patch = _CountedPatch(_kt_utils, "save_json", _dispatch_save_json)


from keras_tuner.src.engine.tuner_utils import SaveBestEpoch  # noqa: E402


class BestEpochSaver(SaveBestEpoch):
    """keras-tuner's best-epoch checkpoint callback with its private
    ``_save_model`` routed to `save_best` (override it) and keras-tuner's
    own write available as `write_weights`."""

    def _save_model(self) -> None:
        self.save_best()

    def save_best(self) -> None:
        self.write_weights()

    def write_weights(self) -> None:
        with keras_saving_cached():
            super()._save_model()


#: Keras' saving skip-sets by object type, computed once a process (`keras_saving_cached`).
_SKIPSETS: dict[str, Any] = {}


def _cached_skipset(obj_type: str) -> Any:
    found = _SKIPSETS.get(obj_type)
    if found is None:
        assert _skipset_patch is not None  # installed only by it
        found = _SKIPSETS[obj_type] = _skipset_patch.original(obj_type)
    return found


# A Keras without it (older Keras 3's ``get_attr_skiplist`` caches correctly) is left alone.
_skipset_patch = (_CountedPatch(_saving_lib, "get_attr_skipset", _cached_skipset)
                  if callable(getattr(_saving_lib, "get_attr_skipset", None)) else None)


@contextmanager
def keras_saving_cached() -> Iterator[None]:
    """Keras' private ``saving_lib.get_attr_skipset`` memoized while the
    block runs. Keras caches each set under one global key and looks it up
    under another (``saving_attr_skipset_`` / ``saving_attr_skiplist_``),
    so every ``save_weights`` builds reference ``Layer``, ``Optimizer`` and
    ``Metric`` objects again (~10 ms a small model's ``.weights.h5``
    here). A set holds the attribute names of those classes' fresh
    instances: the same for the whole process, so the file written is the
    same. Nested and concurrent uses are counted (`_CountedPatch`)."""
    if _skipset_patch is None:
        yield
        return
    _skipset_patch.acquire()
    try:
        yield
    finally:
        _skipset_patch.release()


def grpc_parts() -> tuple[Any, Any]:
    """keras-tuner's gRPC protocol module and its chief's server module
    (imported on first use: they load grpc)."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    return protos, oracle_chief


@contextmanager
def chief_server(serve: Callable[[Any], None]) -> Iterator[None]:
    """Runs ``serve(oracle)`` instead of keras-tuner's
    ``oracle_chief.start_server`` while a chief's ``search()`` runs."""
    _, oracle_chief = grpc_parts()
    original = oracle_chief.start_server
    oracle_chief.start_server = serve
    try:
        yield
    finally:
        oracle_chief.start_server = original


#: The callbacks keras-tuner adds to every fit itself (epoch-level only).
KERAS_TUNER_CALLBACKS = (tuner_utils.TunerCallback, SaveBestEpoch)


# -- the private Tuner methods ktplus hooks into --------------------------------


class OversizedModelError(keras_tuner.errors.FailedTrialError):
    """A model over the tuner's ``max_model_size``: ktplus skips the
    configuration as infeasible (it never counts as a failed trial).

    Args:
        num_params: The model's size as keras-tuner measures it (its
            trainable parameters).
        max_model_size: The tuner's limit.
    """

    def __init__(self, num_params: int, max_model_size: Any) -> None:
        self.num_params = int(num_params)
        self.max_model_size = max_model_size
        super().__init__(f"Oversized model: {self.num_params} parameters > max_model_size={max_model_size}; "
                         "skipped")


#: keras-tuner's ``_try_build`` refusal of a model over ``max_model_size``.
_OVERSIZED = re.compile(r"^Oversized model: (\d+) parameters")


def with_objective_value(results: Any, objective: Any, known: dict[str, float] | None = None) -> Any:
    """A trial's ``results`` (as ``HyperModel.fit`` or ``Tuner.run_trial``
    return them) with a list objective's combined value where a dict of
    metrics holds every objective but not that value: keras-tuner wants it
    under ``multi_objective`` and computes it as ``MultiObjective.get_value``
    does ("min" metrics added, "max" ones subtracted), with ``known`` values
    (ktplus's trial-level objectives, such as ``num_params``) for those the
    dict leaves out. Anything else (a
    single objective, a History, a float, a dict lacking an objective) is
    returned as it is, for keras-tuner to read or refuse."""
    if not isinstance(objective, MultiObjective):
        return results
    if isinstance(results, list):
        return [with_objective_value(r, objective, known) for r in results]
    if isinstance(results, dict) and objective.name not in results:
        values = {**(known or {}), **results}  # the trial-level values ktplus measures itself
        if objective.has_value(values):
            return {**results, objective.name: objective.get_value(values)}
    return results


@contextmanager
def _completing(owner: Any, name: str, objective: Any,
                known: Callable[[], dict[str, float]] | None = None) -> Iterator[None]:
    """While open, ``owner.<name>()`` (``HyperModel.fit``, ``Tuner.run_trial``)
    returns its results through `with_objective_value`: keras-tuner validates
    them right after the call (``validate_trial_results``). Only with a list
    objective, and only on ``owner`` itself (its class is untouched)."""
    attrs = getattr(owner, "__dict__", None)
    if not isinstance(objective, MultiObjective) or attrs is None:
        yield
        return
    missing = object()
    own = attrs.get(name, missing)
    method = getattr(owner, name)

    def completed(*args: Any, **kwargs: Any) -> Any:
        return with_objective_value(method(*args, **kwargs), objective, known() if known else None)

    attrs[name] = completed
    try:
        yield
    finally:
        if own is missing:
            attrs.pop(name, None)
        else:
            attrs[name] = own


class TunerHooks(keras_tuner.Tuner):
    """Maps the private `keras_tuner.Tuner` methods ktplus extends to named
    hooks, so the rest of ktplus overrides no underscored method.

    ``_build_and_fit_model`` (one execution: build, then ``HyperModel.fit``)
    calls ``_fit_execution(trial, fit, args, kwargs)`` with ``fit`` running
    keras-tuner's own implementation; ``_try_build`` (every build, including
    ``load_model``) calls ``_after_build(model)``, and raises
    `OversizedModelError` where keras-tuner refuses a model over
    ``max_model_size`` (a `FailedTrialError` told apart by its text only).

    A trial whose build raised `OversizedModelError` ends with keras-tuner's
    STOPPED status (keras-tuner never ends a trial so itself): the oracle's
    ``end_trial`` then neither scores nor retries it, and
    ``max_consecutive_failed_trials`` counts FAILED trials only. The status
    is set as ``_try_run_and_update_trial`` returns, before ``on_trial_end``
    hands the trial to the oracle (across keras-tuner's gRPC in a
    distributed search, which carries the status but not the message), and
    no traceback is printed for it.

    With a list objective, the dict of metrics a ``HyperModel.fit`` or a
    ``run_trial`` returns gets the combined ``multi_objective`` value
    keras-tuner asks for (`with_objective_value`).
    """

    def _run_and_update_trial(self, trial: Any, *fit_args: Any, **fit_kwargs: Any) -> Any:
        try:
            with _completing(self, "run_trial", self.oracle.objective, lambda: self._trial_values(trial)):
                return super()._run_and_update_trial(trial, *fit_args, **fit_kwargs)
        except OversizedModelError as error:  # a skipped configuration, not an error
            self.__dict__.setdefault("_oversized_trials", {})[trial.trial_id] = error
            return None

    def _try_run_and_update_trial(self, trial: Any, *fit_args: Any, **fit_kwargs: Any) -> None:
        super()._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)
        error = self.__dict__.get("_oversized_trials", {}).pop(trial.trial_id, None)
        if error is not None:
            trial.status = TrialStatus.STOPPED
            trial.message = str(error)

    def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        def fit(*fit_args: Any, **fit_kwargs: Any) -> Any:
            with _completing(self.hypermodel, "fit", self.oracle.objective, lambda: self._trial_values(trial)):
                return super(TunerHooks, self)._build_and_fit_model(trial, *fit_args, **fit_kwargs)

        return self._fit_execution(trial, fit, args, kwargs)

    def _try_build(self, hp: Any) -> Any:
        try:
            model = super()._try_build(hp)
        except keras_tuner.errors.FailedTrialError as error:
            found = _OVERSIZED.match(str(error))
            if found is None or isinstance(error, OversizedModelError):
                raise
            raise OversizedModelError(int(found.group(1)), self.max_model_size) from error
        return self._after_build(model)

    def _fit_execution(self, trial: Any, fit: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        return fit(*args, **kwargs)

    def _after_build(self, model: Any) -> Any:
        return model

    def _trial_values(self, trial: Any) -> dict[str, float]:
        """The trial-level values the tuner measures itself (none here)."""
        return {}

    def _checkpoint_path(self, trial_id: str) -> str:
        """Where keras-tuner keeps a trial's best-epoch weights."""
        return str(self._get_checkpoint_fname(trial_id))


# -- what ``keep_checkpoints`` must not delete ----------------------------------


def local_oracle(oracle: Any) -> Any:
    """The oracle object that runs the search algorithm: ``oracle`` itself,
    or, on a distributed worker, the local one its gRPC client wraps
    (``OracleClient._oracle``: it has the class and the arguments, no trials)."""
    return getattr(oracle, "_oracle", oracle)


def hyperband_promotable(oracle: Any) -> set[str] | None:
    """The trials a later Hyperband round may still continue from (it loads
    their checkpoints), or None when ``oracle`` is no `HyperbandOracle`.

    Reads ``HyperbandOracle._brackets`` (the brackets not yet complete, each
    ``{"bracket_num", "rounds": [[{"past_id", "id"}, ...], ...]}``) and
    ``_get_size``: a trial of round r can still be picked while round r + 1
    has free places and it was not picked already.
    """
    if not isinstance(oracle, HyperbandOracle):
        return None
    ids: set[str] = set()
    for bracket in oracle._brackets:
        rounds = bracket["rounds"]
        for r in range(len(rounds) - 1):
            later = rounds[r + 1]
            if len(later) >= oracle._get_size(bracket["bracket_num"], r + 1):
                continue
            picked = {info["past_id"] for info in later}
            ids.update(str(info["id"]) for info in rounds[r] if info["id"] not in picked)
    return ids


def saved_trials(project_dir: str) -> dict[str, Any] | None:
    """Every trial the oracle saved in ``project_dir`` (its
    ``trial_*/trial.json`` files), by id; None if one cannot be read (a
    distributed worker reads the chief's records this way)."""
    import glob

    trials: dict[str, Any] = {}
    for fname in glob.glob(os.path.join(glob.escape(project_dir), "trial_*", "trial.json")):
        try:
            trial = Trial.load(fname)
        except Exception:  # missing or half-written (gfile raises its own errors)
            return None
        trials[str(trial.trial_id)] = trial
    return trials


def build_model(tuner: Any, hp: Any) -> Any:
    """A model of ``hp`` built as a trial's is (keras-tuner's ``_try_build``:
    a cleared session, the tuner's loss/optimizer/metrics overrides and its
    size limit), without Hyperband's reload of a parent checkpoint."""
    hp = hp.copy()
    for name in [n for n in hp.values if n.startswith("tuner/")]:
        del hp.values[name]
    return tuner._try_build(hp)


# -- facts only Keras' private modules tell ------------------------------------


def keras_array_dtype(dtype: Any) -> Any:
    """The dtype Keras' own array adapter gives numpy data of ``dtype`` in
    ``fit`` (``array_slicing.convert_to_sliceable``: floats that are not
    ``keras.backend.floatx()`` are cast to it), as a numpy dtype; None for a
    dtype Keras' adapter refuses. Asked of Keras with an empty array."""
    import numpy as np
    from keras.src.trainers.data_adapters import array_slicing

    try:
        return np.dtype(array_slicing.convert_to_sliceable(np.empty((0,), dtype)).array.dtype)
    except (ValueError, TypeError):
        return None


def batch_hook_names() -> tuple[str, ...]:
    """The batch-level hooks of `keras.callbacks.Callback` (``on_batch_end``,
    ``on_train_batch_begin``, ``on_predict_batch_end``, ...)."""
    import keras

    return tuple(sorted(n for n in dir(keras.callbacks.Callback) if n.startswith("on_") and "batch" in n))


def has_batch_hooks(callback: Any) -> bool:
    """Whether ``callback`` defines a batch-level hook, decided as Keras'
    ``CallbackList`` decides it (``python_utils.is_default`` of the bound
    hook): a method a subclass overrides and a function set on the instance
    (``keras.callbacks.LambdaCallback(on_train_batch_end=...)``) both count."""
    from keras.src.utils.python_utils import is_default

    return any(not is_default(getattr(callback, name)) for name in batch_hook_names() if hasattr(callback, name))


def backend_runs_steps_per_execution() -> bool:
    """Whether Keras' backend trains with ``steps_per_execution`` above 1:
    the PyTorch trainer refuses it (``keras/src/backend/torch/trainer.py``:
    "`steps_per_execution` must be 1 with the PyTorch backend")."""
    import keras

    return bool(keras.backend.backend() != "torch")


def keras_training_split(arrays: Any, validation_split: float) -> Any:
    """The part of ``arrays`` (a nested structure, e.g. ``(x, y)``) that
    ``model.fit(..., validation_split=...)`` trains on, split by Keras' own
    ``train_validation_split``: the first ``floor(n * (1 - validation_split))``
    samples, floats cast to ``keras.backend.floatx()`` as Keras casts them.

    Raises:
        ValueError: Keras' own, for data it cannot split (a dataset, a
            generator) or too few samples to split.
    """
    from keras.src.trainers.data_adapters import array_slicing

    train, _ = array_slicing.train_validation_split(arrays, validation_split=validation_split)
    return train


@contextmanager
def random_state_kept() -> Iterator[None]:
    """Runs a block (a pre-flight model build and evaluation) and puts back
    every global random state it may draw from or reset: Python's
    ``random`` (Keras' unseeded initializers and seed generators draw their
    seeds there), numpy's, Keras' global seed and global `SeedGenerator`
    (``keras.backend.clear_session`` drops both: ``global_state``), the
    TensorFlow eager context's operation seeds and PyTorch's CPU generator.
    What the block does is then invisible to the trials that follow."""
    import random
    import sys

    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    py_state, np_state = random.getstate(), np.random.get_state()
    keras_seed = global_state.get_global_attribute(rng_utils.GLOBAL_RANDOM_SEED)
    generator = global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR)
    generator_state = None if generator is None else generator.state.value * 1  # a copy
    tf_context = tf_seed = tf_rng = None
    if "tensorflow" in sys.modules:
        from tensorflow.python.eager import context

        tf_context = context.context()
        tf_seed, tf_rng = tf_context._seed, getattr(tf_context, "_rng", None)
        tf_rng = None if tf_rng is None else (tf_rng, tf_rng.getstate())
    torch_state = sys.modules["torch"].get_rng_state() if "torch" in sys.modules else None
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, keras_seed)
        global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, generator)
        if generator is not None:
            generator.state.assign(generator_state)
        if tf_context is not None and tf_context._seed == tf_seed and tf_rng is not None:
            tf_context._rng = tf_rng[0]
            tf_rng[0].setstate(tf_rng[1])
        if torch_state is not None:
            sys.modules["torch"].set_rng_state(torch_state)


# -- what keras-tuner's run_trial and _build_and_fit_model do around a fit ------


def trial_callbacks(tuner: Any, trial: Any, given: list[Any]) -> list[Any]:
    """The callbacks keras-tuner's ``Tuner.run_trial`` gives the one
    execution of ``trial``: deep copies of ``given`` (TensorBoard ones
    pointed at the trial's folder), its ``TunerCallback`` and the
    best-epoch checkpoint."""
    checkpoint = SaveBestEpoch(objective=tuner.oracle.objective,
                               filepath=tuner._get_checkpoint_fname(trial.trial_id))
    callbacks = tuner._deepcopy_callbacks(given)
    tuner._configure_tensorboard_dir(callbacks, trial, 0)
    return [*callbacks, tuner_utils.TunerCallback(tuner, trial), checkpoint]


def save_build_config(tuner: Any, trial: Any, model: Any) -> None:
    """What keras-tuner's ``_build_and_fit_model`` saves after a fit for
    ``load_model`` (a multi-backend Keras's build config)."""
    from keras_tuner.src.backend import config as kt_backend_config

    if kt_backend_config.multi_backend():
        _kt_utils.save_json(tuner._get_build_config_fname(trial.trial_id), model.get_build_config())


def requeue_ongoing(oracle: Any, tuner_ids: list[str]) -> list[str]:
    """Hands the trials ongoing under ``tuner_ids`` back to keras-tuner's
    retry queue (what ``Oracle.reload`` does with every ongoing trial on a
    resume), so the next ``create_trial`` of any tuner id runs them."""
    moved = []
    for tuner_id in tuner_ids:
        trial = oracle.ongoing_trials.pop(tuner_id, None)
        if trial is not None:
            oracle._retry_queue.append(trial.trial_id)
            moved.append(trial.trial_id)
    return moved


def keras_compile_metric(spec: Any, y_true: Any, y_pred: Any) -> Any:
    """The metric object Keras' ``compile`` makes of ``spec`` for an output
    with ``y_pred``'s shape and targets with ``y_true``'s (``"accuracy"``
    becomes binary, sparse categorical or categorical accuracy; a function
    a ``MeanMetricWrapper``): only Keras' private compile utilities say."""
    from keras.src.trainers import compile_utils

    return compile_utils.get_metric(spec, y_true, y_pred)


def keras_compile_loss(spec: Any, y_true: Any, y_pred: Any) -> Any:
    """The loss object Keras' ``compile`` makes of ``spec`` (a name, a
    function or a ``Loss``) for an output with ``y_pred``'s shape."""
    from keras.src.trainers import compile_utils

    return compile_utils.get_loss(spec, y_true, y_pred)
