"""Releasing what TensorFlow keeps of a finished trial's training graphs.

Every graph-mode trace of a ``tf.custom_gradient`` function registers a
uniquely named gradient function (``CustomGradient-<n>``) in TensorFlow's
process-global gradient registry and never removes it; the registered
function's closure holds the traced outputs, hence their graph, so every
trained model leaks its training graph: about 4 MB per trial of a small MLP,
in raw keras-tuner and in a plain ``model.fit`` loop alike.

Which entries a Keras fit registers (TensorFlow 2.21, Keras 3.15; found by
tracing real fits and walking each new entry's closure):

* The registered function is TensorFlow's ``internal_grad_fn``, a closure
  over ``tape_grad_fn`` (module ``tensorflow.python.ops.custom_gradient``),
  itself a closure over ``grad_fn``, the gradient function the
  ``tf.custom_gradient`` user wrote (its *origin*), and ``result``, the
  traced outputs, whose ``.graph`` is the graph the op was traced in.
* A plain fit (Dense layers, Adam or SGD, no distribution strategy)
  registers one entry per trace of its train step (two for a first fit,
  whose first call creates the optimizer's variables, and one more when a
  partial last batch retraces; evaluate and predict register none). Their
  origin is not Keras' code: it is TensorFlow's
  ``ReplicaContextBase.all_reduce.<locals>.grad_wrapper.<locals>.<lambda>``
  (``tensorflow.python.distribute.distribute_lib``), which makes
  ``all_reduce`` differentiable; Keras' TensorFlow optimizer
  (``keras/src/backend/tensorflow/optimizer.py``,
  ``_all_reduce_sum_gradients``) calls ``all_reduce`` in every train step,
  under the default strategy too. Their graph is ``one_step_on_data``,
  nested in ``multi_step_on_iterator``: the ``tf.function`` s of Keras'
  TensorFlow trainer (``keras/src/backend/tensorflow/trainer.py``).
* Keras' own ``custom_gradient`` ops (quantizers, quantized or LoRA
  ``Dense``/``EinsumDense`` kernels) have an origin in a ``keras.`` module.
* A user's ``tf.custom_gradient`` has an origin in the user's module; when
  it runs inside the user's own ``tf.function``, its graph is that
  function's, which may be called again (and differentiated, looking its
  entry up) in a later trial: such an entry must stay.

The rule, then: an entry is released when its origin is Keras' (a ``keras.``
module, or TensorFlow's ``all_reduce`` gradient) *and* it was traced directly
in one of Keras' trainer step functions (control-flow branches in between
are looked through), whose gradients are taken within that same trace and
never looked up again. An entry whose origin or graph cannot be identified
is kept. Only on the TensorFlow backend; a no-op otherwise.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras

_PREFIX = "CustomGradient-"
#: The module of TensorFlow's custom-gradient wrappers, walked through.
_WRAPPER_MODULE = "tensorflow.python.ops.custom_gradient"
#: Closure cells of those wrappers that hold the next function inward.
_INNER_CELLS = ("tape_grad_fn", "grad_fn")
#: TensorFlow's differentiable all_reduce, which Keras' optimizer calls.
_ALL_REDUCE = ("tensorflow.python.distribute.distribute_lib", "ReplicaContextBase.all_reduce.")
#: The tf.function names of Keras' TensorFlow trainer (make_train_function,
#: make_test_function, make_predict_function).
_KERAS_STEP_FUNCTIONS = frozenset({"one_step_on_data", "multi_step_on_iterator",
                                   "one_step_on_data_distributed", "multi_step_on_data"})
_MAX_DEPTH = 8


def _registry() -> dict[str, Any] | None:
    if keras.backend.backend() != "tensorflow":
        return None
    try:
        from tensorflow.python.framework import ops
    except ImportError:  # pragma: no cover - the TensorFlow backend imports it
        return None
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


def _cells(fn: Any) -> dict[str, Any]:
    """A function's closure, by free-variable name."""
    code, closure = getattr(fn, "__code__", None), getattr(fn, "__closure__", None)
    if code is None or not closure:
        return {}
    cells = {}
    for name, cell in zip(code.co_freevars, closure):
        try:
            cells[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return cells


def _graph_of(result: Any) -> Any:
    """The graph the traced outputs ``result`` belong to, if any."""
    for tensor in result if isinstance(result, (list, tuple)) else ():
        graph = getattr(tensor, "graph", None)
        if graph is not None:
            return graph
    return None


def _origin(entry: Any) -> tuple[Any, Any] | None:
    """``(origin, graph)`` of a registry entry: the gradient function the
    ``tf.custom_gradient`` user wrote, and the graph the op was traced in;
    None when the chain of wrappers is not the one known."""
    fn = entry.get("type") if isinstance(entry, dict) else None
    graph = None
    for _ in range(_MAX_DEPTH):
        if not callable(fn):
            return None
        try:
            fn = inspect.unwrap(fn)
        except ValueError:  # a __wrapped__ cycle
            return None
        if getattr(fn, "__module__", None) != _WRAPPER_MODULE:
            return (fn, graph) if graph is not None else None
        cells = _cells(fn)
        if graph is None:
            graph = _graph_of(cells.get("result"))
        fn = next((cells[name] for name in _INNER_CELLS if callable(cells.get(name))), None)
    return None


def _step_function(graph: Any) -> str | None:
    """The name of the function a graph was traced for, looking through
    the branch and body graphs of ``tf.cond``/``tf.while_loop``."""
    try:
        from tensorflow.python.ops.control_flow_v2_func_graphs import ControlFlowFuncGraph
    except ImportError:  # pragma: no cover - TensorFlow moved it
        ControlFlowFuncGraph = ()  # noqa: N806
    for _ in range(_MAX_DEPTH):
        if graph is None or not getattr(graph, "building_function", False):
            return None  # the eager context's graph, or not a graph
        if not isinstance(graph, ControlFlowFuncGraph):
            return getattr(graph, "name", None)
        graph = getattr(graph, "outer_graph", None)
    return None


def is_keras_training_entry(entry: Any) -> bool:
    """Whether a gradient-registry entry was registered by Keras' own
    training code (see the module docstring)."""
    found = _origin(entry)
    if found is None:
        return False
    origin, graph = found
    module = getattr(origin, "__module__", None) or ""
    qualname = getattr(origin, "__qualname__", None) or ""
    keras_origin = module.startswith("keras.") or (module, qualname[:len(_ALL_REDUCE[1])]) == _ALL_REDUCE
    return keras_origin and _step_function(graph) in _KERAS_STEP_FUNCTIONS


def gradient_registry_snapshot() -> frozenset[str]:
    """The custom-gradient entries registered so far (empty on another
    backend)."""
    registry = _registry()
    return frozenset(k for k in registry if k.startswith(_PREFIX)) if registry else frozenset()


def release_trial_gradients(before: frozenset[str]) -> int:
    """Removes the custom-gradient entries Keras' training code registered
    since the snapshot ``before``; returns how many. Every other entry (a
    user's ``tf.custom_gradient``, anything not identified) stays."""
    registry = _registry()
    if not registry:
        return 0
    released = 0
    for key in [k for k in list(registry) if k.startswith(_PREFIX) and k not in before]:
        if is_keras_training_entry(registry.get(key)):
            registry.pop(key, None)
            released += 1
    return released
