"""Import TensorFlow, Keras and keras-tuner without their start-up noise.

TensorFlow's C++ runtime prints info lines (oneDNN, CUDA stubs, CPU
features) to file descriptor 2 before any Python logging is set up, and no
environment variable silences all of them. While ktplus imports these
libraries it sends fd 2 to a temporary file, then replays every line that is
not known start-up noise, so real errors and warnings are still shown. Set
``KTPLUS_TF_LOGS=1`` to see everything.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} [\d:.]+ +\d+ (port|cudart_stub|cpu_feature_guard|cuda_\w+|gpu_device)\.cc"
    r"|To enable the following instructions:"
    r"|WARNING: TF_ENABLE_ONEDNN_OPTS"
    r")"
)


def _replay(data: str) -> None:
    kept = [line for line in data.splitlines(keepends=True) if not _NOISE.match(line)]
    if kept:
        sys.stderr.write("".join(kept))
        sys.stderr.flush()


def import_quietly() -> None:
    """Imports tensorflow (if installed), keras and keras_tuner quietly."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras_tuner" in sys.modules or os.environ.get("KTPLUS_TF_LOGS") == "1":
        import keras_tuner  # noqa: F401

        return
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (embedded interpreters)
        import keras_tuner  # noqa: F401

        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        sys.stderr.flush()
        os.dup2(tmp.fileno(), 2)
        try:
            import keras  # noqa: F401
            import keras_tuner  # noqa: F401

            tf = sys.modules.get("tensorflow")
            if tf is not None:  # device discovery prints its own lines once
                tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            _replay(tmp.read().decode("utf-8", "replace"))
