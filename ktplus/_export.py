"""``ktplus.export``: a tuned model written for serving outside Python, in
one of four formats, checked against the Keras model before it is kept.

==============  ==========================  =========================================
format          path                        read back (and verified) with
==============  ==========================  =========================================
``keras``       ``NAME.keras``              ``keras.models.load_model``
``saved_model`` a directory (no suffix)     ``tf.saved_model.load`` (its
                                            ``serving_default`` signature, as TF
                                            Serving, TF Java and DJL call it)
``onnx``        ``NAME.onnx``               ``onnxruntime.InferenceSession``
``litert``      ``NAME.tflite``             the LiteRT interpreter (``ai-edge-litert``)
==============  ==========================  =========================================

Keras writes every format (``model.save``, ``model.export``); ktplus only
wraps the model first: one input named ``features`` (raw rows in), the model
called in inference mode (augmentation layers are absent from the exported
graph, dropout is off), and the statistics of every ``Normalization`` layer
written into the graph as constants.

Beside every export ktplus writes its record, ``PATH.json`` (``model.onnx``
-> ``model.onnx.json``, the SavedModel directory ``serving/model`` ->
``serving/model.json``); `record_path` names it. Its fields::

    format, version        "ktplus-export", 1
    ktplus_version, keras_version, backend
    export_format          "keras", "saved_model", "onnx" or "litert"
    artifact               the exported file's or directory's name
    task                   "classification", "regression" or null (unknown)
    class_names            the class of each output column (classification)
    targets                the regression target of each output column, or null
    input                  {"name", "shape" (one row, no batch axis), "dtype"}
    input_shape            the same shape (what ``ktplus predict`` reshapes rows to)
    output                 {"name", "shape", "meaning"}
    trial_id, hyperparameters   the trial the model comes from (null for a bare model)
    objective              {"name", "direction", "value"} of that trial (or null)
    normalization          ktplus's normalization mode ("standardize", "minmax") or null
    normalization_statistics    one {"layer", "axis", "mean", "variance"} per
                           Normalization layer the export carries
    verification           {"runtime", "samples", "sample" ("given" or
                           "synthetic"), "max_abs_diff", "tolerance"}

The CLI adds what ``ktplus predict`` needs to read data files (``target``,
``feature_columns``, ``source``, ``data``, ``reshape``, ``refit_samples``;
see `ktplus.cli._export`). A ``.keras`` export also holds the record inside
its archive (entry ``ktplus.json``), so the file alone is enough.

Writing is all or nothing: the artifact goes to a hidden temporary path in
the destination's folder, is loaded with its format's own runtime and its
predictions are compared with the Keras model's; only then are it and its
record renamed into place. Every check that can fail without writing
(format, path, backend, optional packages, model) runs first.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

#: The formats `export` writes.
FORMATS = ("keras", "saved_model", "onnx", "litert")
#: The file suffix that names each file format (a SavedModel is a directory).
SUFFIXES = {".keras": "keras", ".onnx": "onnx", ".tflite": "litert"}
#: The formats Keras can export on each backend.
BACKEND_FORMATS = {
    "tensorflow": ("keras", "saved_model", "onnx", "litert"),
    "jax": ("keras", "saved_model", "onnx"),
    "torch": ("keras", "onnx", "litert"),
}
#: The largest max abs difference a verified export may show.
TOLERANCE = 1e-4
#: The name of the exported model's input.
INPUT_NAME = "features"
#: The record's format tag and version (shared with ``ktplus.cli._export``).
RECORD_FORMAT = "ktplus-export"
RECORD_VERSION = 1
#: The ``.keras`` archive entry that holds the record.
META_ENTRY = "ktplus.json"
#: Rows of the verification sample (the first rows of ``x``, or synthetic).
SAMPLE_ROWS = 64
#: The pip extra that installs the optional runtimes.
EXTRA = "pip install 'ktplus[export]'"


class ExportError(ValueError):
    """A model that cannot be exported as asked (bad path, format, backend,
    missing package, or an artifact whose predictions differ from the Keras
    model's). Its message is one line; nothing is left on disk."""


# ---------------------------------------------------------------- paths, formats


def format_of(path: str | os.PathLike, format: str | None = None) -> str:
    """The format ``path`` is exported in: ``format`` when given (it must
    agree with a known suffix), else from the suffix: ``.keras``, ``.onnx``,
    ``.tflite``, or a SavedModel for a path with no suffix, ending in a
    separator, or an existing directory.

    Raises:
        ExportError: for an unknown format, a suffix no format writes, or a
            format that contradicts the suffix.
    """
    text = os.fspath(path)
    if not text:
        raise ExportError("export: empty path")
    name = os.path.basename(text.rstrip("/" + os.sep))
    suffix = os.path.splitext(name)[1].lower()
    if format is not None:
        if format not in FORMATS:
            raise ExportError(f"export: unknown format {format!r}: use one of {', '.join(FORMATS)}")
        implied = SUFFIXES.get(suffix)
        if implied is not None and implied != format:
            raise ExportError(f"export: {text}: the suffix {suffix} is the {implied} format, not {format}")
        if format == "keras" and suffix != ".keras":
            raise ExportError(f"export: {text}: the keras format needs a path ending in .keras")
        if format == "litert" and suffix != ".tflite":
            raise ExportError(f"export: {text}: the litert format needs a path ending in .tflite")
        return format
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if not suffix or text.endswith(("/", os.sep)) or os.path.isdir(text):
        return "saved_model"
    raise ExportError(f"export: {text}: unknown suffix {suffix!r}: use .keras, .onnx, .tflite or a directory "
                      "path (SavedModel), or name the format")


def record_path(path: str | os.PathLike) -> str:
    """The JSON record written beside the export at ``path``: ``PATH.json``."""
    return os.fspath(path).rstrip("/" + os.sep) + ".json"


def _check_path(path: str, fmt: str) -> None:
    target = path.rstrip("/" + os.sep)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise ExportError(f"export: {path}: no such directory {folder!r}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"export: {path}: cannot write to the directory {folder!r}")
    if fmt == "saved_model":
        if os.path.exists(target) and not os.path.isdir(target):
            raise ExportError(f"export: {path}: exists and is not a directory (a SavedModel is a directory)")
        if os.path.isdir(target) and os.listdir(target) and not os.path.exists(
                os.path.join(target, "saved_model.pb")):
            raise ExportError(f"export: {path}: a non-empty directory that is not a SavedModel; "
                              "give a new path (ktplus replaces only a previous SavedModel)")
    elif os.path.isdir(target):
        raise ExportError(f"export: {path}: is a directory; the {fmt} format writes one file")
    if os.path.isdir(record_path(target)):
        raise ExportError(f"export: {record_path(target)}: is a directory (the export's JSON record goes there)")


def _packages(fmt: str, backend: str) -> list[tuple[str, str]]:
    """(module, pip name) of the packages ``fmt`` needs on ``backend``."""
    if fmt == "saved_model":
        return [("tensorflow", "tensorflow")]
    if fmt == "onnx":
        converter = {"tensorflow": [("tf2onnx", "tf2onnx")], "jax": [("jax2onnx", "jax2onnx")],
                     "torch": [("onnx", "onnx")]}.get(backend, [])
        return [*converter, ("onnxruntime", "onnxruntime")]
    if fmt == "litert":
        converter = [("litert_torch", "litert-torch")] if backend == "torch" else []
        return [*converter, ("ai_edge_litert", "ai-edge-litert")]
    return []


def backend_name(import_keras: bool = True) -> str:
    """Keras' backend: ``keras.backend.backend()``, or without importing
    Keras (``import_keras=False``, unless it is imported already) what it
    will pick: ``KERAS_BACKEND``, else ``keras.json``, else tensorflow."""
    if import_keras or "keras" in sys.modules:
        import keras

        return str(keras.backend.backend())
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent that fails, or a module blocked in sys.modules (None)
        return False


def check_format(fmt: str, import_keras: bool = True) -> None:
    """Raises ExportError when this backend or its installed packages
    cannot write and verify ``fmt`` (nothing is written)."""
    backend = backend_name(import_keras)
    allowed = BACKEND_FORMATS.get(backend, ("keras",))
    if fmt not in allowed:
        raise ExportError(f"export: the {fmt} format cannot be written on the {backend} backend "
                          f"(it writes {', '.join(allowed)}); set KERAS_BACKEND=tensorflow for every format")
    missing = [pip for module, pip in _packages(fmt, backend) if not _installed(module)]
    if missing:
        raise ExportError(f"export: the {fmt} format needs {' and '.join(missing)}, not installed "
                          f"({EXTRA})")


#: The package each format's runtime needs to read an export back (any Keras backend).
RUNTIMES = {"saved_model": ("tensorflow", "tensorflow"), "onnx": ("onnxruntime", "onnxruntime"),
            "litert": ("ai_edge_litert", "ai-edge-litert")}


def check_runtime(fmt: str) -> None:
    """Raises ExportError when the runtime that reads ``fmt`` is not
    installed (reading needs no converter and works on every backend)."""
    if fmt in RUNTIMES and not _installed(RUNTIMES[fmt][0]):
        raise ExportError(f"export: reading the {fmt} format needs {RUNTIMES[fmt][1]}, not installed ({EXTRA})")


def _check_model(model: Any, fmt: str) -> None:
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):
        raise ExportError("export: the model has no inputs yet: build it (call it on data or give it an "
                          "Input) before exporting") from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise ExportError(f"export: the model has {len(inputs)} inputs and {len(outputs)} outputs; "
                          "ktplus exports models with one input and one output")
    policy = getattr(getattr(model, "dtype_policy", None), "name", "float32")
    if fmt in ("onnx", "litert") and policy != "float32":
        raise ExportError(f"export: the {fmt} format needs a float32 model, not dtype policy {policy!r}")


# ---------------------------------------------------------------- the inference model


def _normalization_layers(model: Any) -> list[Any]:
    import keras

    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.Normalization)]


def inference_model(model: Any, input_shape: Sequence[int] | None = None,
                    reshape: Sequence[int] | None = None, copy: bool = True) -> Any:
    """``features -> [Reshape] -> model (inference mode)``, uncompiled.

    With ``copy`` (what a ``.keras`` file needs), a Functional or Sequential
    model is cloned with its weights (no compile state: the file loads
    without ktplus's metrics); otherwise, and for any other model, the model
    itself is called (what the other formats trace, and what every export
    is verified against). ``input_shape`` is the raw row shape (default: the
    model's), ``reshape`` the shape the model views a row as (when they
    differ a ``Reshape`` layer named ``ktplus_reshape`` sits in between).
    """
    import keras

    net = model
    if copy and (isinstance(model, keras.Sequential) or type(model).__name__ == "Functional"):
        net = keras.models.clone_model(model)
        net.set_weights(model.get_weights())
        for layer in _normalization_layers(net):
            layer.finalize_state()  # its mean and variance tensors from the weights just set
    shape = tuple(int(d) for d in (input_shape if input_shape is not None else model.inputs[0].shape[1:]))
    inputs = keras.Input(shape=shape, dtype=model.inputs[0].dtype, name=INPUT_NAME)
    h = inputs
    if reshape is not None and tuple(reshape) != shape:
        h = keras.layers.Reshape(tuple(int(d) for d in reshape), name="ktplus_reshape")(h)
    return keras.Model(inputs, net(h, training=False), name="ktplus_export")


@contextlib.contextmanager
def _constant_statistics(model: Any) -> Iterator[None]:
    """Normalization statistics as numpy constants while converting (the
    tensors Keras keeps would become extra graph inputs in ONNX)."""
    import keras

    saved = []
    for layer in _normalization_layers(model):
        if getattr(layer, "mean", None) is not None:
            saved.append((layer, layer.mean, layer.variance))
            layer.mean = np.asarray(keras.ops.convert_to_numpy(layer.mean))
            layer.variance = np.asarray(keras.ops.convert_to_numpy(layer.variance))
    try:
        yield
    finally:
        for layer, mean, variance in saved:
            layer.mean, layer.variance = mean, variance


def normalization_statistics(model: Any) -> list[dict[str, Any]]:
    """One ``{"layer", "axis", "mean", "variance"}`` per Normalization layer
    of ``model`` (the statistics the export carries)."""
    import keras

    found = []
    for layer in _normalization_layers(model):
        if getattr(layer, "mean", None) is None:
            continue
        mean = np.asarray(keras.ops.convert_to_numpy(layer.mean), dtype="float64")
        variance = np.asarray(keras.ops.convert_to_numpy(layer.variance), dtype="float64")
        axis = list(layer.axis) if isinstance(layer.axis, (list, tuple)) else layer.axis
        found.append({"layer": layer.name, "axis": axis, "mean": mean.squeeze().tolist(),
                      "variance": variance.squeeze().tolist(),
                      "formula": "(x - mean) / max(sqrt(variance), 1e-7)"})
    return found


def normalization_mode(model: Any) -> str | None:
    """ktplus's normalization built into ``model``: "standardize", "minmax" or None."""
    from ktplus.hypermodels._prep import NORMALIZATIONS

    return next((layer.name for layer in _normalization_layers(model) if layer.name in NORMALIZATIONS), None)


# ---------------------------------------------------------------- runtimes


class Runner:
    """An exported artifact loaded with its format's runtime: ``runner(x)``
    predicts on a float array of rows; ``runtime`` names the runtime and its
    version, ``input_name`` and ``output_name`` the artifact's tensors."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], runtime: str, input_name: str,
                 output_name: str) -> None:
        self._fn = fn
        self.runtime = runtime
        self.input_name = input_name
        self.output_name = output_name

    def __call__(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        parts = [np.asarray(self._fn(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0,))


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    """``model``'s inference-mode predictions, called eagerly (no
    ``predict`` function to trace for a few rows)."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))


def _keras_runner(path: str) -> Runner:
    import keras

    model = keras.models.load_model(path, compile=False)
    return Runner(lambda x: _predict(model, x), f"keras {keras.__version__}",
                  model.inputs[0].name, model.layers[-1].name)


def _saved_model_runner(path: str) -> Runner:
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    fn = loaded.signatures["serving_default"]
    (input_name,) = list(fn.structured_input_signature[1])
    (output_name,) = list(fn.structured_outputs)

    def run(x: np.ndarray) -> np.ndarray:
        return fn(**{input_name: tf.constant(x)})[output_name].numpy()

    run.loaded = loaded  # type: ignore[attr-defined]  # keeps the variables alive
    return Runner(run, f"tensorflow {tf.__version__} (tf.saved_model.load, serving_default)",
                  input_name, output_name)


def _onnx_runner(path: str) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    (inp,), out = session.get_inputs(), session.get_outputs()[0]

    def run(x: np.ndarray) -> np.ndarray:
        return session.run([out.name], {inp.name: x})[0]

    return Runner(run, f"onnxruntime {ort.__version__}", inp.name, out.name)


def _litert_runner(path: str) -> Runner:
    from ai_edge_litert import interpreter as litert

    interpreter = litert.Interpreter(model_path=path)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    state = {"rows": -1}

    def run(x: np.ndarray) -> np.ndarray:
        if state["rows"] != len(x):
            interpreter.resize_tensor_input(inp["index"], list(x.shape))
            interpreter.allocate_tensors()
            state["rows"] = len(x)
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(out["index"]))

    try:
        from importlib.metadata import version

        where = f"ai-edge-litert {version('ai-edge-litert')}"
    except Exception:  # pragma: no cover - metadata missing
        where = "ai-edge-litert"
    return Runner(run, f"{where} (LiteRT interpreter)", inp["name"], out["name"])


def load_runner(path: str, fmt: str) -> Runner:
    """``path`` (written in ``fmt``) loaded with its format's own runtime."""
    return {"keras": _keras_runner, "saved_model": _saved_model_runner, "onnx": _onnx_runner,
            "litert": _litert_runner}[fmt](path)


# ---------------------------------------------------------------- writing


@contextlib.contextmanager
def _quiet_conversion(expected: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """The converters' logging and C++ output captured; replayed only when
    the block fails with an error other than ExportError and ``expected``
    (``KTPLUS_TF_LOGS=1`` shows everything)."""
    if os.environ.get("KTPLUS_TF_LOGS") == "1":
        yield
        return
    levels = {name: logging.getLogger(name).level for name in ("tf2onnx", "absl", "tensorflow")}
    try:
        saved = os.dup(2)
    except OSError:
        saved = -1
    with tempfile.TemporaryFile(mode="w+b") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in levels:
            logging.getLogger(name).setLevel(logging.ERROR)
        ok = False
        if saved >= 0:
            sys.stderr.flush()
            os.dup2(tmp.fileno(), 2)
        quiet_errors: tuple[type[BaseException], ...] = (ExportError, *expected)
        try:
            yield
            ok = True
        except quiet_errors:
            ok = True
            raise
        finally:
            if saved >= 0:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            if not ok:
                tmp.seek(0)
                sys.stderr.write(tmp.read().decode(errors="replace")[-4000:])


def _temp_path(target: str, fmt: str) -> str:
    folder, name = os.path.split(os.path.abspath(target))
    suffix = {"keras": ".keras", "litert": ".tflite", "onnx": ".onnx"}.get(fmt, "")
    return os.path.join(folder, f".{name}.{os.getpid()}.tmp{suffix}")


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def _move_into_place(tmp: str, target: str) -> None:
    if os.path.isdir(tmp) and os.path.isdir(target):  # a previous SavedModel: swapped, then removed
        old = f"{tmp}.old"
        os.replace(target, old)
        os.replace(tmp, target)
        _remove(old)
    else:
        os.replace(tmp, target)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def write_export(model: Any, path: str, fmt: str, sample: np.ndarray, record: dict[str, Any],
                 sample_kind: str, tolerance: float = TOLERANCE, reference: Any = None) -> dict[str, Any]:
    """Writes the inference model ``model`` (see `inference_model`) to
    ``path`` in ``fmt``, verifies it on ``sample`` against ``reference``
    (the user's own model, uncopied; default ``model``) and writes ``record``
    (completed with the input, output, statistics and verification fields)
    beside it. The path and format must have been checked (`check_export`).

    Returns:
        The record as written.

    Raises:
        ExportError: when Keras cannot convert the model or the artifact's
            predictions differ by more than ``tolerance`` (nothing is left).
    """
    import keras

    target = path.rstrip("/" + os.sep)
    tmp = _temp_path(target, fmt)
    tmp_record = _temp_path(record_path(target), "json")
    _remove(tmp)
    try:
        with _quiet_conversion():
            expected = _predict(reference if reference is not None else model, sample)
            try:
                with _constant_statistics(model):
                    if fmt == "keras":
                        model.save(tmp)
                    else:
                        model.export(tmp, format={"saved_model": "tf_saved_model"}.get(fmt, fmt), verbose=False)
            except Exception as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                raise ExportError(f"export: Keras could not write the {fmt} format: {type(e).__name__}: "
                                  f"{first}") from e
            try:
                runner = load_runner(tmp, fmt)
                got = np.asarray(runner(sample))
            except Exception as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                raise ExportError(f"export: the {fmt} export was written but its runtime could not load or run "
                                  f"it: {type(e).__name__}: {first}; nothing written") from e
            if got.size != expected.size:
                raise ExportError(f"export: the {fmt} export predicts {got.shape} for {len(sample)} rows, the "
                                  f"Keras model {expected.shape}; nothing written")
            got = got.reshape(expected.shape)
        diff = float(np.max(np.abs(got.astype("float64") - expected.astype("float64")))) if expected.size else 0.0
        if not np.isfinite(diff) or diff > tolerance:
            raise ExportError(f"export: the {fmt} export's predictions differ from the Keras model's by up to "
                              f"{diff:.3g} (max abs difference on {len(sample)} {sample_kind} rows, tolerance "
                              f"{tolerance:g}); nothing written")
        record = dict(record)
        record.update({
            "format": RECORD_FORMAT, "version": RECORD_VERSION, "keras_version": keras.__version__,
            "backend": keras.backend.backend(), "export_format": fmt, "artifact": os.path.basename(target),
            "input": {"name": runner.input_name, "shape": [int(d) for d in sample.shape[1:]],
                      "dtype": str(sample.dtype)},
            "input_shape": [int(d) for d in sample.shape[1:]],
            "normalization_statistics": normalization_statistics(model),
            "verification": {"runtime": runner.runtime, "samples": int(len(sample)), "sample": sample_kind,
                             "max_abs_diff": diff, "tolerance": tolerance},
        })
        record["output"] = {"name": runner.output_name, "shape": [int(d) for d in expected.shape[1:]],
                            **record.get("output", {})}
        record.setdefault("ktplus_version", _version())
        record = _jsonable(record)
        text = json.dumps(record, indent=1)
        if fmt == "keras":
            with zipfile.ZipFile(tmp, "a") as z:
                z.writestr(META_ENTRY, text)
        with open(tmp_record, "w") as f:
            f.write(text + "\n")
        _move_into_place(tmp, target)
        os.replace(tmp_record, record_path(target))
        return record
    finally:
        _remove(tmp)
        _remove(f"{tmp}.old")
        _remove(tmp_record)


def _version() -> str:
    from ktplus import __version__

    return __version__


def check_export(model: Any, path: str, format: str | None = None) -> str:
    """Every check that needs no writing: the format (returned), the path,
    the backend and optional packages, and the model.

    Raises:
        ExportError: with one line naming what is wrong.
    """
    fmt = format_of(path, format)
    _check_path(os.fspath(path), fmt)
    check_format(fmt)
    if model is not None:
        _check_model(model, fmt)
    return fmt


# ---------------------------------------------------------------- the public function


def _sample(x: Any, shape: tuple[int, ...], dtype: str, model: Any) -> tuple[np.ndarray, str]:
    if x is not None:
        try:
            sample = np.asarray(x)[:SAMPLE_ROWS]
            if sample.dtype == object or sample.ndim == 0:
                raise TypeError
        except (TypeError, ValueError, IndexError):
            raise ExportError(f"export: x must be rows to verify on (a numpy array or array-like of shape "
                              f"(n, *{shape})), not {type(x).__name__}") from None
        if sample.ndim == len(shape) and sample.shape == shape:
            sample = sample[None]
        if sample.shape[1:] != shape:
            if sample.ndim >= 2 and int(np.prod(sample.shape[1:])) == int(np.prod(shape)):
                sample = sample.reshape((-1, *shape))
            else:
                raise ExportError(f"export: x has rows of shape {tuple(sample.shape[1:])}, but the model takes "
                                  f"rows of shape {shape}")
        if len(sample) == 0:
            raise ExportError("export: x has no rows to verify the export on")
        return sample.astype(dtype), "given"
    rng = np.random.default_rng(0)
    sample = rng.standard_normal((16, *shape))
    stats = [s for s in normalization_statistics(model) if s["layer"]]
    if stats:  # rows in the range the model was trained on
        try:
            mean, variance = np.asarray(stats[0]["mean"]), np.asarray(stats[0]["variance"])
            sample = mean + np.sqrt(np.maximum(variance, 0)) * sample
        except ValueError:
            pass
    return sample.astype(dtype), "synthetic"


def _is_tuner(obj: Any) -> bool:
    return hasattr(obj, "oracle") and hasattr(obj, "get_best_models")


def _trial_fields(tuner: Any) -> dict[str, Any]:
    from ktplus._ranking import best_trials

    trials = best_trials(tuner.oracle, 1)
    if not trials:
        raise ExportError("export: the tuner has no completed trial, so there is no best model")
    trial = trials[0]
    objective = tuner.oracle.objective
    name = getattr(objective, "name", None)
    direction = getattr(objective, "direction", None)
    if name is None and hasattr(objective, "objectives"):  # several objectives: the score's
        name = ",".join(getattr(o, "name", str(o)) for o in objective.objectives)
    return {
        "trial_id": trial.trial_id,
        "hyperparameters": {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")},
        "objective": {"name": name, "direction": direction, "value": trial.score},
    }


def _output_meaning(task: str | None, class_names: list[Any] | None, targets: list[Any] | None,
                    columns: int | None = None) -> str:
    if task == "classification" and columns == 1 and class_names is not None and len(class_names) == 2:
        return (f"the probability of class {class_names[1]!r} (one column; below 0.5: class "
                f"{class_names[0]!r})")
    if task == "classification":
        return f"class probabilities, one column per class in class_names ({len(class_names or [])} classes)"
    if task == "regression":
        return "regression predictions, one column per target" + (" in targets" if targets else "")
    return "the model's raw outputs"


def export(model_or_tuner: Any, path: str | os.PathLike, format: str | None = None, *,
           model: Any = None, x: Any = None, class_names: Sequence[Any] | None = None,
           targets: Sequence[str] | None = None, tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Exports a model, or a tuner's best model, for serving; verifies it.

    The exported model takes raw rows (its input is named ``features``)
    and returns predictions: the data preparation the model holds
    (normalization with its statistics) is inside, augmentation and dropout
    are not (inference mode). Right after writing, the artifact is loaded
    with its format's own runtime (Keras, TensorFlow, ONNX Runtime or the
    LiteRT interpreter) and its predictions on a sample are compared with
    the Keras model's; an export whose max abs difference exceeds
    ``tolerance`` raises and leaves nothing on disk. A JSON record of the
    export is written beside it at ``PATH.json`` (`record_path`; the fields
    are listed in this module's documentation).

    Args:
        model_or_tuner: A built Keras model with one input and one output,
            or a (ktplus or keras-tuner) tuner after its search: its best
            trial in ktplus's ranking, whose model is
            ``tuner.get_best_models(1)[0]`` unless ``model`` is given.
        path: Where to write: ``NAME.keras``, ``NAME.onnx``,
            ``NAME.tflite``, or a directory path (a SavedModel).
        format: "keras", "saved_model", "onnx" or "litert" (default: from
            the path's suffix). It must agree with a known suffix; use it to
            write a SavedModel into a directory whose name has a dot.
        model: With a tuner, the model to export instead of the best
            trial's checkpoint, e.g. ``tuner.refit(x, y)`` (the record
            still names the best trial).
        x: Rows to verify the export on (the first 64 are used), shaped as
            the model's input. Without it, 16 synthetic rows are drawn
            (seed 0): standard normal values, scaled to the statistics of the
            model's first Normalization layer when it has one. Real rows are
            the better check.
        class_names: The class of each output column (classification).
            From a ktplus tuner, defaults to ``0 .. num_classes - 1``.
        targets: The regression target of each output column.
        tolerance: The largest max abs difference accepted (default 1e-4).

    Returns:
        The JSON record written beside the export, as a dict.

    Raises:
        ExportError: (a ValueError) for an unknown format, a path that
            cannot be written, a format this backend or the installed
            packages cannot write (``pip install 'ktplus[export]'``), a model
            with several inputs or outputs, or an artifact whose predictions
            differ (nothing is written then).

    Example:

    >>> import os, tempfile, keras, ktplus
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> record = ktplus.export(model, os.path.join(tempfile.mkdtemp(), "m.keras"))
    >>> record["export_format"], record["verification"]["max_abs_diff"] <= 1e-4
    ('keras', True)
    >>> tuner.search(x_train, y_train, epochs=10, validation_split=0.2)  # doctest: +SKIP
    >>> ktplus.export(tuner, "model.onnx", x=x_train)  # doctest: +SKIP
    >>> ktplus.export(tuner, "serving/digits/1")  # a SavedModel  # doctest: +SKIP
    """
    if not isinstance(tolerance, (int, float)) or not tolerance >= 0:
        raise ExportError(f"export: tolerance must be a number >= 0, not {tolerance!r}")
    from ktplus._quiet import import_quietly

    import_quietly()
    record: dict[str, Any] = {"trial_id": None, "hyperparameters": None, "objective": None}
    task = None
    for arg, value in (("class_names", class_names), ("targets", targets)):
        if value is not None and (isinstance(value, (str, bytes)) or not hasattr(value, "__len__")):
            raise ExportError(f"export: {arg} must be a list of names, one per output column, not {value!r}")
    names = list(class_names) if class_names is not None else None
    if _is_tuner(model_or_tuner):
        tuner = model_or_tuner
        hypermodel = getattr(tuner, "hypermodel", None)
        task = getattr(hypermodel, "task", None)
        if task == "classification" and names is None:
            classes = 2 if getattr(hypermodel, "output_activation", None) == "sigmoid" else \
                getattr(hypermodel, "num_classes", None)
            names = list(range(int(classes))) if classes else None
        fmt = check_export(model, os.fspath(path), format)  # before loading a checkpoint
        _trial_fields(tuner)  # a tuner without a completed trial: one clear error
        source = model if model is not None else tuner.get_best_models(1)[0]
        record.update(_trial_fields(tuner))  # after get_best_models, which reads a shared study anew
        record["model"] = "given (model=)" if model is not None else "the best trial's checkpoint"
    else:
        if model is not None:
            raise ExportError("export: model= goes with a tuner; pass the model as the first argument")
        source = model_or_tuner
        fmt = check_export(None, os.fspath(path), format)
    _check_model(source, fmt)
    if task is None:
        task = "classification" if names is not None else "regression" if targets is not None else None
    if names is not None and task != "classification":
        raise ExportError("export: class_names is for classification; this is a regression model")
    columns = _output_columns(source)
    _check_names(names, targets, columns)
    reference = inference_model(source, copy=False)
    net = inference_model(source) if fmt == "keras" else reference
    shape = tuple(int(d) for d in net.inputs[0].shape[1:])
    sample, kind = _sample(x, shape, str(net.inputs[0].dtype), net)
    record.update({
        "ktplus_version": _version(), "task": task, "class_names": names,
        "targets": list(targets) if targets is not None else None,
        "normalization": normalization_mode(net),
        "output": {"meaning": _output_meaning(task, names, list(targets) if targets else None, columns)},
    })
    return write_export(net, os.fspath(path), fmt, sample, record, kind, tolerance, reference=reference)


def _output_columns(model: Any) -> int | None:
    shape = tuple(model.outputs[0].shape)
    return int(shape[-1]) if len(shape) == 2 and shape[-1] is not None else None


def _check_names(names: list[Any] | None, targets: Sequence[str] | None, columns: int | None) -> None:
    """class_names / targets agree with the model's output columns (two
    names for one sigmoid column)."""
    if columns is None:
        return
    if names is not None and not (len(names) == columns or (columns == 1 and len(names) == 2)):
        allowed = "2 names (one probability column)" if columns == 1 else f"{columns} names, one per column"
        raise ExportError(f"export: class_names has {len(names)} names, but the model has {columns} output "
                          f"column{'s' if columns != 1 else ''}; give {allowed}")
    if targets is not None and len(targets) != columns:
        raise ExportError(f"export: targets has {len(targets)} names, but the model has {columns} output "
                          f"column{'s' if columns != 1 else ''}; give one per column")
