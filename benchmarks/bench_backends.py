"""Every ktplus feature on each Keras backend, timed: the README's backend table.

Runs the script of ``tests/test_backends.py`` (the suite runs it on JAX and
PyTorch; TensorFlow is the backend of the rest of the suite) once per
backend, each in a fresh process, and prints one row per feature with each
backend's wall seconds.

    python benchmarks/bench_backends.py [--backends tensorflow jax torch]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def script() -> str:
    namespace: dict = {}
    source = (ROOT / "tests" / "test_backends.py").read_text()
    start = source.index('SCRIPT = r"""')
    exec(source[start:source.index('"""', start + 13) + 3], namespace)
    return namespace["SCRIPT"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    args = parser.parse_args()
    seen = {}
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as directory:
            result = subprocess.run([sys.executable, "-c", script(), directory], capture_output=True, text=True,
                                    env={**os.environ, "KERAS_BACKEND": backend}, check=False)
        lines = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            sys.exit(f"{backend}: no result\n{result.stderr[-2000:]}")
        seen[backend] = json.loads(lines[-1].removeprefix("RESULT "))
    features = [k for k, v in seen[args.backends[0]].items() if isinstance(v, dict)]
    print("| feature | " + " | ".join(args.backends) + " |")
    print("|---|" + "---|" * len(args.backends))
    for feature in features:
        cells = []
        for backend in args.backends:
            record = seen[backend].get(feature, {})
            ok = "yes" if record.get("ok") else f"NO ({record.get('error', '')[:60]})"
            cells.append(ok + (f", {record['seconds']} s" if "seconds" in record else ""))
        print(f"| {feature} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
