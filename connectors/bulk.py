"""Each database's bulk path for new rows: PostgreSQL COPY, MariaDB LOAD DATA, SQLite executemany.

The caller runs :func:`bulk_insert` inside a savepoint of the batch's transaction; if the
database rejects any row, the whole call fails and the caller falls back to one row per
savepoint, so a bad row becomes a failed result with the database's own reason.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa

#: SQLSTATE classes and codes worth a retry: connection lost, serialization failure, deadlock,
#: lock not available, server shutting down, too many connections.
_PG_TRANSIENT = ("08", "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300")
#: MySQL/MariaDB error numbers worth a retry: lock wait timeout, deadlock, can't connect,
#: server gone away, lost connection, too many connections.
_MYSQL_TRANSIENT = {1205, 1213, 2002, 2003, 2006, 2013, 1040}

#: NULL as written in the bulk files; a real value equal to it makes the batch take the plain path.
_PG_NULL = "\\N"
_MYSQL_NULL = "NULL"
#: Joins a batch's keys into one PostgreSQL parameter (ASCII unit separator, chr(31)).
_SEPARATOR = "\x1f"


def is_transient(exc: BaseException) -> bool:
    """Whether a database error is worth retrying (the batch is idempotent, so a retry is safe)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = getattr(exc, "orig", exc)
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str):
        return state.startswith(_PG_TRANSIENT)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in _MYSQL_TRANSIENT
    return "database is locked" in str(orig)


def bulk_insert(conn: sa.Connection, table: sa.Table, rows: pd.DataFrame, plain: bool = True) -> bool:
    """Insert ``rows`` (target column names) into ``table`` with the dialect's fastest path.

    Where that path cannot take the rows as they are (MariaDB's ``LOAD DATA`` warned), a
    strict multi-row ``INSERT`` runs instead; with ``plain=False`` nothing is inserted and
    the answer is False.
    """
    rows = _typed(table, rows)
    dialect = conn.dialect.name
    if dialect == "postgresql":
        _copy(conn, table, rows)
    elif not (dialect in ("mysql", "mariadb") and _load_data(conn, table, rows)):
        if not plain:
            return False
        conn.execute(sa.insert(table), db_records(rows))
    return True


def select_by_keys(conn: sa.Connection, table: sa.Table, key: str, keys: list[str],
                   columns: list[str]) -> list[tuple[Any, ...]]:
    """``columns`` of the rows whose ``key`` is in ``keys``, straight through the driver.

    One array parameter on PostgreSQL, a client-escaped tuple on MariaDB, chunks of
    placeholders on SQLite: no per-key statement compilation.
    """
    if not keys:
        return []
    q = conn.dialect.identifier_preparer.quote
    base = f"SELECT {', '.join(q(c) for c in columns)} FROM {q(table.name)} WHERE {q(key)}"
    dialect = conn.dialect.name
    if dialect == "postgresql":
        if not any(_SEPARATOR in k for k in keys):  # one text parameter: adapting a 100k-item array is slow
            return list(conn.exec_driver_sql(base + " = ANY(string_to_array(%s, chr(31)))",
                                             (_SEPARATOR.join(keys),)).fetchall())
        return list(conn.exec_driver_sql(base + " = ANY(%s)", (list(keys),)).fetchall())
    out: list[tuple[Any, ...]] = []
    chunk = 20_000 if dialect in ("mysql", "mariadb") else 900
    for start in range(0, len(keys), chunk):
        part = tuple(keys[start:start + chunk])
        if dialect in ("mysql", "mariadb"):
            out += conn.exec_driver_sql(base + " IN %s", (part,)).fetchall()
        else:
            out += conn.exec_driver_sql(base + f" IN ({', '.join('?' * len(part))})", part).fetchall()
    return out


def _copy(conn: sa.Connection, table: sa.Table, rows: pd.DataFrame) -> None:
    """PostgreSQL: COPY ... FROM STDIN in CSV (plain INSERTs if no CSV can say the rows' NULLs apart)."""
    cols = ", ".join(_quote(conn, c) for c in rows.columns)
    encoded = _arrow_csv(rows)
    if encoded is not None:
        statement = f"COPY {_quote(conn, table.name)} ({cols}) FROM STDIN WITH (FORMAT csv)"
    elif not _holds(rows, _PG_NULL):
        encoded = rows.to_csv(index=False, header=False, quoting=csv.QUOTE_MINIMAL, na_rep=_PG_NULL).encode()
        statement = f"COPY {_quote(conn, table.name)} ({cols}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    else:
        conn.execute(sa.insert(table), db_records(rows))
        return
    with driver_cursor(conn, statement) as cursor, cursor.copy(statement) as copy:
        copy.write(encoded)


@contextmanager
def driver_cursor(conn: sa.Connection, what: str) -> Iterator[Any]:
    """The driver's own cursor on the connection (no per-row result processing), its errors raised as
    SQLAlchemy would raise them, so callers handle them like any other (``what``: the statement)."""
    try:
        yield conn.connection.driver_connection.cursor()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(what, None, exc, conn.dialect.loaded_dbapi.Error) from None


def _arrow_csv(rows: pd.DataFrame, null: str = "", as_ints: list[str] | None = None) -> pa.Buffer | None:
    """CSV by Arrow's C++ writer (4-5x pandas'): every value quoted, NULL bare as ``null``.

    ``as_ints`` are boolean columns written as 1/0. None when a column mixes types Arrow will not take.
    """
    try:
        data = pa.Table.from_pandas(rows, preserve_index=False)
        for col in as_ints or []:
            data = data.set_column(data.schema.get_field_index(col), col, pc.cast(data[col], pa.int8()))
        buffer = pa.BufferOutputStream()
        pa_csv.write_csv(data, buffer, pa_csv.WriteOptions(include_header=False, quoting_style="all_valid",
                                                           null_string=null))
    except (pa.ArrowException, ValueError, TypeError):
        return None
    return buffer.getvalue()


def _load_data(conn: sa.Connection, table: sa.Table, rows: pd.DataFrame) -> bool:
    """MariaDB: LOAD DATA LOCAL INFILE; False when the server refuses it or warns about any value.

    LOAD DATA LOCAL turns bad values (and duplicate keys) into warnings instead of errors, so
    any warning undoes it and the caller's strict multi-row INSERT runs instead. A quoted
    ``"NULL"`` is the text NULL, a bare one is NULL.
    """
    booleans = [c for c in rows.columns if isinstance(table.c[c].type, sa.Boolean)]
    encoded = _arrow_csv(rows, _MYSQL_NULL, booleans)
    if encoded is None:  # pandas writes it, but cannot quote the text NULL apart from NULL
        if _holds(rows, _MYSQL_NULL):
            return False
        frame = rows.copy()
        for col in booleans:
            frame[col] = frame[col].astype(object).map(lambda v: int(bool(v)), na_action="ignore")
        encoded = frame.to_csv(index=False, header=False, quoting=csv.QUOTE_MINIMAL, na_rep=_MYSQL_NULL,
                               lineterminator="\n").encode()
    fd, path = tempfile.mkstemp(suffix=".csv", prefix="crm-migrate-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(encoded)
        cols = ", ".join(f"`{c}`" for c in rows.columns)
        statement = (f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table.name}` CHARACTER SET utf8mb4 "
                     "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                     f"LINES TERMINATED BY '\\n' ({cols})")
        cursor = conn.connection.driver_connection.cursor()
        try:
            with conn.begin_nested() as savepoint:
                loaded = cursor.execute(statement, (path,))
                cursor.execute("SHOW WARNINGS LIMIT 1")
                if loaded != len(rows) or cursor.fetchall():
                    savepoint.rollback()
                    return False
        except Exception as exc:  # the server or driver refuses LOCAL INFILE: the plain path works everywhere
            if is_transient(exc):
                raise
            return False
        return True
    finally:
        os.unlink(path)


def _typed(table: sa.Table, rows: pd.DataFrame) -> pd.DataFrame:
    """Integer columns as nullable integers, so a CSV never says ``12.0`` for an id."""
    out = rows.copy()
    for col in out.columns:
        if isinstance(table.c[col].type, sa.Integer) and not isinstance(table.c[col].type, sa.Boolean):
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("Int64")
    return out


def _holds(rows: pd.DataFrame, marker: str) -> bool:
    return any((rows[c] == marker).any() for c in rows.columns if pd.api.types.is_string_dtype(rows[c].dtype))


def _quote(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def db_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with None for missing values (what DBAPI drivers expect)."""
    obj = frame.astype(object)
    return obj.where(obj.notna(), None).to_dict("records")
