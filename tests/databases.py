"""One helper runs a test on every database: ``@with_databases("sqlite", "postgresql", "mariadb")``.

Each test gets a fresh, empty database and its URL. PostgreSQL and MariaDB are the local
servers (127.0.0.1, trust auth / root without password). When ``CI`` is set, a server
that does not answer fails the test; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/{db}?charset=utf8mb4&local_infile=1",
}
ADMIN_DB = {"postgresql": "postgres", "mariadb": "mysql"}


def with_databases(*names: str):
    """Parametrise a test over databases; the test takes a ``db_url`` argument."""
    return pytest.mark.parametrize("db_url", [pytest.param(n, id=n) for n in names], indirect=True)


@contextmanager
def fresh_database(kind: str, tmp_path) -> Iterator[str]:
    """A new empty database of ``kind``; dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite'}"
        return
    name = f"crm_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(SERVERS[kind].format(db=ADMIN_DB[kind]), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        message = f"{kind} server not reachable: {str(exc.orig).splitlines()[0]}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: a missing server is a failure)")
        pytest.skip(message)
    try:
        yield SERVERS[kind].format(db=name)
    finally:
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()
