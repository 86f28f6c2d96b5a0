"""The workspace: every stage reads and writes here, never to another stage directly.

SQLite by default (one file under ``.crm-migrate/``), PostgreSQL by URL for teams and
nightly syncs. Tables are documented in docs/workspace.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from connectors.urls import make_engine
from mappings.canonical import DICT_FIELDS, GOLDEN_ATTRIBUTES, LIST_FIELDS
from migrate.errors import WorkspaceError

#: Bump with an upgrade step in ``_UPGRADES`` whenever a table changes.
SCHEMA_VERSION = 2

KEY = sa.String(255)
metadata = sa.MetaData()


def _attribute_columns() -> list[sa.Column]:
    types = {"email_opt_in": sa.Boolean, "do_not_contact": sa.Boolean}
    return [sa.Column(a, types.get(a, sa.Text)) for a in GOLDEN_ATTRIBUTES]


meta = sa.Table("meta", metadata, sa.Column("key", KEY, primary_key=True), sa.Column("value", sa.Text))

runs = sa.Table(
    "runs", metadata,
    sa.Column("run_id", KEY, primary_key=True),
    sa.Column("command", sa.Text), sa.Column("status", sa.String(20)),
    sa.Column("started_at", sa.Text), sa.Column("finished_at", sa.Text),
    sa.Column("config_hash", sa.String(64)), sa.Column("log_path", sa.Text), sa.Column("error", sa.Text),
)

stages = sa.Table(
    "stages", metadata,
    sa.Column("run_id", KEY, primary_key=True), sa.Column("stage", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer), sa.Column("status", sa.String(20)), sa.Column("started_at", sa.Text), sa.Column("finished_at", sa.Text),
    sa.Column("rows_in", sa.BigInteger), sa.Column("rows_out", sa.BigInteger), sa.Column("detail", sa.Text),
)

source_counts = sa.Table(
    "source_counts", metadata,
    sa.Column("source", KEY, primary_key=True), sa.Column("dataset", KEY, primary_key=True),
    sa.Column("run_id", KEY), sa.Column("rows_in", sa.BigInteger),
)

records = sa.Table(
    "records", metadata,
    sa.Column("record_key", KEY, primary_key=True),
    sa.Column("source", KEY, index=True), sa.Column("source_id", KEY), sa.Column("source_ref", sa.Text),
    *_attribute_columns(),
    sa.Column("name_key", sa.Text),
    sa.Column("source_updated_at", sa.Text), sa.Column("extra", sa.Text), sa.Column("row_hash", sa.String(32)),
    sa.Column("first_seen_run", KEY), sa.Column("last_seen_run", KEY),
)

related = sa.Table(
    "related", metadata,
    sa.Column("related_key", KEY, primary_key=True),
    sa.Column("kind", KEY, index=True), sa.Column("source", KEY), sa.Column("source_id", KEY),
    sa.Column("source_ref", sa.Text), sa.Column("parent_record_key", KEY, index=True),
    sa.Column("data", sa.Text), sa.Column("row_hash", sa.String(32)), sa.Column("last_seen_run", KEY),
)

quarantine = sa.Table(
    "quarantine", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", KEY), sa.Column("source", KEY, index=True), sa.Column("dataset", KEY),
    sa.Column("source_ref", sa.Text), sa.Column("record_key", KEY), sa.Column("stage", sa.String(32)),
    sa.Column("reason", sa.String(64)), sa.Column("column", sa.Text), sa.Column("value", sa.Text),
    sa.Column("detail", sa.Text), sa.Column("raw", sa.Text), sa.Column("status", sa.String(16)),
)

pairs = sa.Table(
    "pairs", metadata,
    sa.Column("record_key_l", KEY, primary_key=True), sa.Column("record_key_r", KEY, primary_key=True),
    sa.Column("match_weight", sa.Float), sa.Column("match_probability", sa.Float),
    sa.Column("rule", sa.Text), sa.Column("levels", sa.Text), sa.Column("run_id", KEY),
)

clusters = sa.Table(
    "clusters", metadata,
    sa.Column("record_key", KEY, primary_key=True), sa.Column("cluster_id", KEY, index=True),
)

golden = sa.Table(
    "golden", metadata,
    sa.Column("golden_id", KEY, primary_key=True),
    sa.Column("status", sa.String(16)), sa.Column("retired_into", KEY),
    *_attribute_columns(),
    sa.Column("lineage", sa.Text), sa.Column("member_count", sa.Integer), sa.Column("row_hash", sa.String(32)),
    sa.Column("created_run", KEY), sa.Column("updated_run", KEY),
)

xref = sa.Table(
    "xref", metadata,
    sa.Column("record_key", KEY, primary_key=True), sa.Column("golden_id", KEY, index=True),
    sa.Column("role", sa.String(16)), sa.Column("origin_id", KEY),
)

golden_events = sa.Table(
    "golden_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", KEY), sa.Column("golden_id", KEY, index=True), sa.Column("event", sa.String(16)),
    sa.Column("other_id", KEY), sa.Column("detail", sa.Text), sa.Column("at", sa.Text),
)

review_items = sa.Table(
    "review_items", metadata,
    sa.Column("item_id", KEY, primary_key=True), sa.Column("kind", sa.String(16)),
    sa.Column("status", sa.String(16)), sa.Column("record_key_l", KEY), sa.Column("record_key_r", KEY),
    sa.Column("golden_id", KEY), sa.Column("attribute", sa.Text), sa.Column("evidence", sa.Text),
    sa.Column("created_run", KEY),
)

decisions = sa.Table(
    "decisions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_id", KEY), sa.Column("constraint", sa.String(16)),
    sa.Column("record_key_l", KEY), sa.Column("record_key_r", KEY), sa.Column("attribute", sa.Text),
    sa.Column("value", sa.Text), sa.Column("who", sa.Text), sa.Column("at", sa.Text), sa.Column("note", sa.Text),
    sa.Column("previous", sa.Text), sa.Column("revoked_at", sa.Text),
    sa.Column("golden_id", KEY), sa.Column("revoked_by", sa.Text),
)

load_ledger = sa.Table(
    "load_ledger", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", KEY), sa.Column("phase", KEY), sa.Column("entity", sa.String(32)),
    sa.Column("batch_no", sa.Integer), sa.Column("status", sa.String(16)), sa.Column("row_count", sa.Integer),
    sa.Column("checksum", sa.String(64)), sa.Column("started_at", sa.Text), sa.Column("finished_at", sa.Text),
    sa.Column("new_keys", sa.Text), sa.Column("sent", sa.Integer), sa.Column("failed", sa.Integer),
)

load_results = sa.Table(
    "load_results", metadata,
    sa.Column("run_id", KEY, primary_key=True), sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("key", KEY, primary_key=True), sa.Column("phase", KEY), sa.Column("status", sa.String(16)),
    sa.Column("target_id", KEY), sa.Column("created", sa.Boolean), sa.Column("reason", sa.Text),
    sa.Column("ledger_id", sa.Integer),
)

id_map = sa.Table(
    "id_map", metadata,
    sa.Column("entity", sa.String(32), primary_key=True), sa.Column("key", KEY, primary_key=True),
    sa.Column("target_id", KEY), sa.Column("phase", KEY), sa.Column("run_id", KEY),
    sa.Column("action", sa.String(16)), sa.Column("checksum", sa.String(32)),
)

load_before = sa.Table(
    "load_before", metadata,
    sa.Column("entity", sa.String(32), primary_key=True), sa.Column("key", KEY, primary_key=True),
    sa.Column("phase", KEY, index=True), sa.Column("ledger_id", sa.Integer), sa.Column("image", sa.Text),
)

load_phases = sa.Table(
    "load_phases", metadata,
    sa.Column("phase", KEY, primary_key=True), sa.Column("status", sa.String(16)),
    sa.Column("fingerprint", sa.String(64)), sa.Column("run_id", KEY), sa.Column("at", sa.Text),
)

models = sa.Table(
    "models", metadata,
    sa.Column("name", KEY, primary_key=True), sa.Column("model", sa.Text), sa.Column("trained_at", sa.Text),
)

corrections = sa.Table(
    "corrections", metadata,
    sa.Column("source", KEY, primary_key=True), sa.Column("source_ref", KEY, primary_key=True),
    sa.Column("original", sa.String(64)), sa.Column("raw", sa.Text), sa.Column("quarantine_id", sa.Integer),
    sa.Column("who", sa.Text), sa.Column("at", sa.Text),
)

cursors = sa.Table(
    "cursors", metadata,
    sa.Column("source", KEY, primary_key=True), sa.Column("value", sa.Text), sa.Column("run_id", KEY),
)

_UPGRADES: dict[int, list[str]] = {  # version -> SQL statements that bring the previous version to it
    2: ["ALTER TABLE decisions ADD COLUMN golden_id VARCHAR(255)", "ALTER TABLE decisions ADD COLUMN revoked_by TEXT",
        "ALTER TABLE xref ADD COLUMN origin_id VARCHAR(255)"],
}


def now() -> str:
    """The current UTC time as ISO text (workspace timestamps)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Workspace:
    """The migration's state store.

    Example:
        >>> ws = Workspace("sqlite://", Path("."))
        >>> ws.schema_version()
        2
    """

    def __init__(self, url: str, base_dir: Path):
        self.engine = make_engine(url, base_dir, create_dirs=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self.engine.dispose()
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        with self.engine.begin() as conn:
            has_meta = sa.inspect(conn).has_table("meta")
            found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar() \
                if has_meta else None
            if found is not None and int(found) > SCHEMA_VERSION:
                raise WorkspaceError(
                    f"the workspace was written by a newer crm-migrate (schema {found}, this one knows "
                    f"{SCHEMA_VERSION}); upgrade crm-migrate")
            metadata.create_all(conn)
            for version in range(int(found or SCHEMA_VERSION) + 1, SCHEMA_VERSION + 1):
                for statement in _UPGRADES.get(version, []):
                    conn.execute(sa.text(statement))
            self.set_meta(conn, "schema_version", str(SCHEMA_VERSION))

    def meta(self, key: str) -> str | None:
        """A value kept in ``meta`` (None when unset)."""
        return self.scalar(sa.select(meta.c.value).where(meta.c.key == key))

    def set_meta(self, conn: sa.Connection, key: str, value: str) -> None:
        """Keep a value in ``meta``, inside the caller's transaction."""
        conn.execute(sa.delete(meta).where(meta.c.key == key))
        conn.execute(sa.insert(meta).values(key=key, value=value))

    def schema_version(self) -> int:
        """The workspace schema version recorded in ``meta``."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar_one())

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A transaction on the workspace."""
        with self.engine.begin() as conn:
            yield conn

    def frame(self, query: sa.Executable, conn: sa.Connection | None = None) -> pd.DataFrame:
        """Run a query and return a DataFrame."""
        if conn is not None:
            result = conn.execute(query)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        with self.engine.connect() as own:
            return self.frame(query, own)

    def scalar(self, query: sa.Executable) -> Any:
        """Run a query returning one value."""
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def insert(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows in batches (one executemany per 10,000 rows)."""
        for start in range(0, len(rows), 10_000):
            conn.execute(sa.insert(table), rows[start:start + 10_000])

    def upsert(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]],
               keep: tuple[str, ...] = ()) -> None:
        """Insert rows, updating those whose primary key exists; columns in ``keep`` keep their old value."""
        if not rows:
            return
        keys = [c.name for c in table.primary_key.columns] + list(keep)
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            module = sa.dialects.sqlite if dialect == "sqlite" else sa.dialects.postgresql
            stmt = module.insert(table)
            updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
            pk = [c.name for c in table.primary_key.columns]
            stmt = stmt.on_conflict_do_update(index_elements=pk, set_=updates) if updates else \
                stmt.on_conflict_do_nothing(index_elements=pk)
        else:
            stmt = sa.dialects.mysql.insert(table)
            stmt = stmt.on_duplicate_key_update({c.name: stmt.inserted[c.name] for c in table.columns
                                                 if c.name not in keys})
        for start in range(0, len(rows), 10_000):
            conn.execute(stmt, rows[start:start + 10_000])


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets `status` read while a run writes; NORMAL sync is crash-safe in WAL mode.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def encode_frame(frame: pd.DataFrame, table: sa.Table) -> list[dict[str, Any]]:
    """DataFrame rows as dicts for ``table``: lists/dicts as JSON text, NaN as None."""
    cols = [c.name for c in table.columns if c.name in frame.columns]
    out = frame[cols].astype("object")
    for col in cols:
        if col in LIST_FIELDS or col in DICT_FIELDS or col in ("lineage", "data", "levels"):
            # Stages may hand over JSON text already (pandas' encoder is much faster).
            out[col] = [v if isinstance(v, str) or v is None else json.dumps(v, ensure_ascii=False, default=str)
                        for v in out[col]]
    out = out.where(out.notna(), None)
    return out.to_dict("records")


def decode_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The inverse of :func:`encode_frame` for the JSON columns present."""
    for col in frame.columns:
        if col in LIST_FIELDS or col in DICT_FIELDS or col in ("lineage", "data", "levels"):
            frame[col] = [json.loads(v) if isinstance(v, str) else ([] if col in LIST_FIELDS else {})
                          for v in frame[col]]
    for col in ("email_opt_in", "do_not_contact"):
        if col in frame.columns:
            frame[col] = frame[col].astype("boolean")
    return frame




def read_table(ws: Workspace, table: sa.Table, columns: list[str] | None = None,
               where: Any = None) -> pd.DataFrame:
    """A workspace table (or some of its columns) as a decoded DataFrame."""
    cols = [table.c[c] for c in columns] if columns else list(table.c)
    query = sa.select(*cols)
    if where is not None:
        query = query.where(where)
    return decode_frame(ws.frame(query))
