"""``ktplus tensorboard DIR``: serves a search's TensorBoard logs on
127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import sys

from ktplus.cli._errors import CLIError


def run_tensorboard(args: argparse.Namespace) -> int:
    """Starts ``tensorboard`` on the search's logs and waits for it.

    Raises:
        CLIError: for a directory without logs, or a TensorBoard that fails.
    """
    import socket
    import subprocess

    from ktplus.results import _find_project

    if not os.path.isdir(args.dir):
        raise CLIError(f"ktplus tensorboard: no such directory: {args.dir}")
    try:
        project = _find_project(args.dir)
        logdir = os.path.join(project, "tensorboard")
    except ValueError:
        logdir = args.dir  # a log directory itself
    if not os.path.isdir(logdir):
        raise CLIError(f"ktplus tensorboard: {args.dir} has no TensorBoard logs ({logdir} is missing)")
    port = args.port
    if port == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", logdir,
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    print(f"TensorBoard for {logdir} at http://127.0.0.1:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        _, err = proc.communicate()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a loaded machine: Ctrl-C still ends cleanly
            proc.kill()
            proc.wait()
        return 0
    if proc.returncode:
        last = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or ["unknown error"]
        raise CLIError(f"ktplus tensorboard: tensorboard exited with {proc.returncode}: {last[0]}")
    return 0
