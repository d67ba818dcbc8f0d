"""A real PostgreSQL server on 127.0.0.1 in a temporary data directory
(Debian's ``postgresql`` package; run as the ``postgres`` user when the
caller is root: the server refuses root). The storage tests' fixture and
``benchmarks/bench_workers.py`` both start theirs here."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple


class Postgres(NamedTuple):
    """A running server: its port and the superuser it was created with."""

    port: int
    user: str
    password: str

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        return f"postgresql://{self.user}:{password or self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database, as its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def binaries() -> str | None:
    """The directory of PostgreSQL's ``pg_ctl`` and ``initdb`` (None: not installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return os.path.dirname(found[-1])
    pg_ctl = shutil.which("pg_ctl")
    return os.path.dirname(os.path.realpath(pg_ctl)) if pg_ctl else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_postgres(bindir: str, user: str, password: str) -> Iterator[Postgres]:
    """Starts a server with ``bindir``'s binaries (fsync off, 100
    connections, a unix socket in its own directory), yields it, and stops
    it and removes its data. Raises ``subprocess.CalledProcessError`` when
    it cannot start."""
    root = tempfile.mkdtemp(prefix="ktplus-pg-")
    data, pwfile = os.path.join(root, "data"), os.path.join(root, "pw")
    with open(pwfile, "w") as f:
        f.write(password)
    as_user: list[str] = []
    if os.geteuid() == 0:
        os.chmod(root, 0o755)
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    try:
        subprocess.run([*as_user, f"{bindir}/initdb", "-D", data, "-U", user, f"--pwfile={pwfile}",
                        "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=100"
        subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", data, "-o", options, "-l", os.path.join(root, "log"),
                        "-w", "-t", "60", "start"], check=True, capture_output=True)
        yield Postgres(port, user, password)
    finally:
        if os.path.isdir(data):
            subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                           capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
