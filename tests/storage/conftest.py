"""A real PostgreSQL server for the storage tests: Debian's ``postgresql``
package (``.ci/run`` installs it), started once per test session on
127.0.0.1 in a temporary data directory (`tests.storage.postgres_server`)
and stopped after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.storage.postgres_server import Postgres, binaries, local_postgres

USER = "ktplus"
PASSWORD = "s3cret-pw"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    bindir = binaries()
    missing = bindir is None
    try:
        import psycopg  # noqa: F401  (SQLAlchemy's driver for postgresql://)
    except ImportError:
        missing = True
    if missing:  # the README's test command installs both: a missing one is a failure, never a skip
        pytest.fail("PostgreSQL (apt-get install postgresql) and psycopg[binary] are needed: the README's test "
                    "command installs them")
    assert bindir is not None
    with local_postgres(bindir, USER, PASSWORD) as server:
        yield server
