"""What the combination tests share: tiny data, one discrete search space
every tuner (GridSearch included) can walk, the tuners by name, and the
invariant checks."""

from __future__ import annotations

import contextlib
import sys
import types
import warnings
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

import ktplus
from ktplus import _facts

N_TRAIN, N_VAL = 72, 25
SPLIT = 0.25  # 97 rows: Keras trains on the first 72 (97 * 0.75 = 72.75, rounded down)
BATCH = 32


def dataset() -> dict[str, Any]:
    """Three imbalanced classes, features far from mean 0 / variance 1,
    float64 as numpy gives them. Row 72, the first validation row (of
    ``validation_data`` and of Keras' ``validation_split``), is an outlier
    and its class is the rare one: statistics or class weights that saw it
    differ from the training rows'."""
    rng = np.random.default_rng(7)
    n = N_TRAIN + N_VAL
    y = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    x = rng.normal(size=(n, 4)) + y[:, None] * 1.5
    x = x * np.array([1.0, 10.0, 0.1, 3.0]) + np.array([5.0, -20.0, 0.0, 100.0])
    x[N_TRAIN] += 400.0
    y[N_TRAIN] = 2
    return {"x": x, "y": y, "train": (x[:N_TRAIN], y[:N_TRAIN]), "val": (x[N_TRAIN:], y[N_TRAIN:])}


class BatchCounter:
    """A ``keras.callbacks.LambdaCallback`` with a batch-level hook (an
    instance attribute, as LambdaCallback sets it): the batches of each
    epoch, over every fit of a search."""

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.callback = keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs: self.epochs.append(0),
            on_train_batch_end=lambda batch, logs: self._count())

    def _count(self) -> None:
        self.epochs[-1] += 1


class FitCustom(ktplus.DenseHyperModel):
    """A user's own ``HyperModel.fit`` (wrapping ktplus's)."""

    def fit(self, hp, model, *args, **kwargs):
        kwargs.setdefault("shuffle", True)
        return super().fit(hp, model, *args, **kwargs)


def hypermodel(prep: str | None, custom_fit: bool) -> ktplus.DenseHyperModel:
    cls = FitCustom if custom_fit else ktplus.DenseHyperModel
    knobs: dict[str, Any] = {}
    if prep == "normalization":
        knobs["normalization"] = "standardize"
    elif prep == "class_weight":
        knobs["class_weight"] = "balanced"
    return cls(input_shape=(4,), num_classes=3, layers=1, units=[4, 8], dropout=0.25,
               learning_rate=[0.01, 0.05], **knobs)


def objective(kind: str) -> Any:
    if kind == "single":
        return "val_accuracy"
    return ["val_accuracy", "val_loss"]


def tuner(name: str, hm: Any, objective: Any, directory: Any, seed: int, *, module: Any = ktplus,
          trials: int = 3, max_epochs: int = 3, **options: Any) -> Any:
    """A tuner by name, from ``module`` (ktplus or keras_tuner); "oracle" is
    ``module.Tuner`` over keras-tuner's random search oracle."""
    import keras_tuner

    common = {"objective": objective, "directory": str(directory), "project_name": "p", **options}
    if name == "random":
        return module.RandomSearch(hm, max_trials=trials, seed=seed, **common)
    if name == "bayesian":
        return module.BayesianOptimization(hm, max_trials=trials, num_initial_points=trials - 1, seed=seed,
                                           **common)
    if name == "hyperband":
        return module.Hyperband(hm, max_epochs=max_epochs, factor=max_epochs, hyperband_iterations=1,
                                seed=seed, **common)
    if name == "grid":
        return module.GridSearch(hm, max_trials=trials, seed=seed, **common)
    if name == "optuna":
        return module.OptunaSearch(hm, max_trials=trials, seed=seed, **common)
    if name == "oracle":
        oracle = keras_tuner.oracles.RandomSearchOracle(objective=objective, max_trials=trials, seed=seed)
        return module.Tuner(oracle=oracle, hypermodel=hm, **{k: v for k, v in common.items() if k != "objective"})
    raise AssertionError(name)


def pruner(kind: str | None) -> Any:
    """The median stopping rule, free to prune from the second finished
    trial's second epoch on (the default waits for 3 trials and 2 epochs)."""
    return None if kind is None else ktplus.MedianPruner(n_startup_trials=1, n_warmup_epochs=1)


def fit_kwargs(validation: str, data: dict[str, Any]) -> dict[str, Any]:
    if validation == "data":
        return {"validation_data": data["val"]}
    if validation == "split":
        return {"validation_split": SPLIT}
    return {}


def fit_xy(validation: str, data: dict[str, Any]) -> tuple[Any, Any]:
    """``validation_data``: the training rows; otherwise every row (Keras'
    split or the folds take the validation rows out)."""
    return data["train"] if validation == "data" else (data["x"], data["y"])


def keras_split(x: Any, y: Any) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Keras' own ``validation_split`` (what ``model.fit`` trains and validates on)."""
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    (xt, yt), (xv, yv) = train_validation_split((x, y), validation_split=SPLIT)
    return (np.asarray(xt), np.asarray(yt)), (np.asarray(xv), np.asarray(yv))


def training_rows(validation: str, data: dict[str, Any]) -> tuple[Any, Any]:
    if validation == "data":
        return data["train"]
    return keras_split(data["x"], data["y"])[0]


def scored_on(validation: str, data: dict[str, Any]) -> tuple[Any, Any]:
    """The rows a trial's validation metrics were measured on."""
    if validation == "data":
        return data["val"]
    return keras_split(data["x"], data["y"])[1]


def is_pruned(trial: Any) -> bool:
    return _facts.is_pruned(trial)


def report_best(search: Any) -> str:
    return str(search.frame().iloc[0]["trial_id"])


def assert_reproduces(model: Any, trial: Any, objective: Any, x: Any, y: Any) -> None:
    """The model's metrics on ``x, y`` are the trial's recorded ones."""
    measured = model.evaluate(x, y, verbose=0, return_dict=True)
    names = [objective] if isinstance(objective, str) else objective
    for name in names:
        recorded = trial.metrics.get_last_value(name)
        got = measured[name.removeprefix("val_")]
        assert np.isclose(got, recorded, rtol=1e-4, atol=1e-5), (name, got, recorded, trial.trial_id)


def assert_training_rows_only(tuner: Any, model: Any, row: dict[str, Any], data: dict[str, Any]) -> None:
    """Statistics (the model's normalization, the balanced weights' labels)
    come from exactly the rows the model trained on."""
    if row["cv"] is None:
        candidates = [training_rows(row["validation"], data)]
    else:
        candidates = [part[0] for part in tuner_folds(tuner, data)]
    if row["prep"] == "normalization":
        layer = model.get_layer("standardize")
        mean = np.asarray(layer.mean).reshape(-1)
        expected = [np.asarray(xt, dtype="float64").mean(axis=0) for xt, _ in candidates]
        assert any(np.allclose(mean, e, rtol=1e-5, atol=1e-4) for e in expected), (mean, expected)
    if row["prep"] == "class_weight":
        labels = np.sort(np.asarray(tuner.hypermodel.statistics.labels).reshape(-1))
        assert any(np.array_equal(labels, np.sort(np.asarray(yt).reshape(-1))) for _, yt in candidates)


def tuner_folds(tuner: Any, data: dict[str, Any]) -> list[Any]:
    """The folds a cv search trains on, rebuilt with scikit-learn from the
    tuner's seed (stratified for a classifier, shuffled)."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=tuner.options.cv, shuffle=True, random_state=tuner.search_seed)
    x, y = data["x"], data["y"]
    return [((x[tr], y[tr]), (x[va], y[va])) for tr, va in splitter.split(x, y)]


# -- global state ------------------------------------------------------------------


def _keras_tuner_functions() -> dict[tuple[str, str], int]:
    """The identity of every function and method keras-tuner's modules hold."""
    out: dict[tuple[str, str], int] = {}
    for modname, module in list(sys.modules.items()):
        if not modname.startswith("keras_tuner") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if callable(value):
                out[(modname, attr)] = id(value)
            if isinstance(value, type) and value.__module__ == modname:
                for name, member in list(vars(value).items()):
                    if callable(member) or isinstance(member, (staticmethod, classmethod, property)):
                        out[(f"{modname}.{attr}", name)] = id(member)
    return out


class GlobalState:
    """Warnings filters and keras-tuner's functions, taken at construction."""

    def __init__(self) -> None:
        self.filters = list(warnings.filters)
        self.functions = _keras_tuner_functions()
        self.showwarning = warnings.showwarning

    def assert_unchanged(self) -> None:
        assert warnings.filters == self.filters, "warnings filters changed"
        assert warnings.showwarning is self.showwarning
        after = _keras_tuner_functions()
        changed = [k for k, v in self.functions.items() if after.get(k, v) != v]
        assert not changed, f"keras-tuner functions replaced: {changed[:5]}"


class _Probe:
    def __init__(self) -> None:
        self.shown = 0
        module = types.ModuleType("ktplus_probe")
        exec("import warnings\ndef warn():\n    warnings.warn('probe', UserWarning)\n", module.__dict__)
        sys.modules["ktplus_probe"] = module
        self.module = module

    def warn_again(self) -> None:
        self.module.warn()


@contextlib.contextmanager
def warned_once() -> Iterator[_Probe]:
    """A warning shown once before the block (default filters: once per
    location); ``probe.warn_again()`` must not show it again."""
    probe = _Probe()
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if "probe" in str(message):
            probe.shown += 1
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        probe.module.warn()
        yield probe
    finally:
        warnings.showwarning = original
        sys.modules.pop("ktplus_probe", None)
