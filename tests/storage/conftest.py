"""A real PostgreSQL server for the storage tests: Debian's ``postgresql``
package (``.ci/run`` installs it), started once per test session on
127.0.0.1 in a temporary data directory (as the ``postgres`` user when the
tests run as root: the server refuses root) and stopped after."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from typing import NamedTuple

import pytest

USER = "ktplus"
PASSWORD = "s3cret-pw"


class Postgres(NamedTuple):
    port: int

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database (each test its own), as its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _binaries() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return os.path.dirname(found[-1])
    pg_ctl = shutil.which("pg_ctl")
    return os.path.dirname(os.path.realpath(pg_ctl)) if pg_ctl else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    bindir = _binaries()
    missing = bindir is None
    try:
        import psycopg  # noqa: F401  (SQLAlchemy's driver for postgresql://)
    except ImportError:
        missing = True
    if missing:  # the README's test command installs both: a missing one is a failure, never a skip
        pytest.fail("PostgreSQL (apt-get install postgresql) and psycopg[binary] are needed: the README's test "
                    "command installs them")
    assert bindir is not None
    root = tempfile.mkdtemp(prefix="ktplus-pg-")
    data, pwfile = os.path.join(root, "data"), os.path.join(root, "pw")
    with open(pwfile, "w") as f:
        f.write(PASSWORD)
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        os.chmod(root, 0o755)
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_user, f"{bindir}/initdb", "-D", data, "-U", USER, f"--pwfile={pwfile}",
                    "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    log = os.path.join(root, "log")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=100"
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "-t", "60",
                    "start"], check=True, capture_output=True)
    try:
        yield Postgres(port)
    finally:
        subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
