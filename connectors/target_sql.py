"""The new CRM as a SQL database: idempotent upserts keyed by ``external_id``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from connectors.crm_schema import reference_metadata
from connectors.urls import make_engine, safe_url
from migrate.errors import EXIT_USAGE, TargetError

#: Entities in load order: parents before the records that point at them.
ENTITIES = ("accounts", "contacts", "addresses", "orders", "invoices", "activities")


class TargetSchemaError(TargetError):
    """The target database has tables that do not fit the schema we load into."""

    exit_code = EXIT_USAGE


@dataclass
class RowResult:
    """One row's outcome, like a Bulk API 2.0 result: success with the target id, or failed."""

    external_id: str
    status: str                 # success | failed
    target_id: str | None
    created: bool
    reason: str | None = None


class SqlTarget:
    """A SQLAlchemy-reachable CRM database in the reference schema.

    Example:
        >>> t = SqlTarget("sqlite://", Path("."))
        >>> [r.status for r in t.upsert("accounts", [{"external_id": "G-1", "name": "Acme Ltd"}])]
        ['success']
    """

    def __init__(self, url: str, base_dir: Path):
        self.url = url
        self.engine = make_engine(url, base_dir, create_dirs=True)
        self.metadata = reference_metadata()
        try:
            self.metadata.create_all(self.engine)
            self._check_schema()
        except sa.exc.SQLAlchemyError as exc:
            raise TargetError(f"cannot create the reference schema in {safe_url(url)}: {_reason(exc)}") from None

    def _check_schema(self) -> None:
        """Tables that already existed must have the reference columns; say which are missing."""
        inspector = sa.inspect(self.engine)
        problems = []
        for table in self.metadata.sorted_tables:
            found = {c["name"] for c in inspector.get_columns(table.name)}
            missing = [c.name for c in table.columns if c.name not in found]
            if missing:
                problems.append(f"table {table.name!r} exists but lacks column(s) {', '.join(missing)}")
        if problems:
            raise TargetSchemaError(f"{self.describe()} is not in the reference CRM schema: " + "; ".join(problems))

    def describe(self) -> str:
        """The target, password hidden."""
        return safe_url(self.url)

    def table(self, entity: str) -> sa.Table:
        """The target table for an entity."""
        return self.metadata.tables[entity]

    def existing(self, entity: str, external_ids: list[str]) -> dict[str, str]:
        """external_id -> target id for the rows that already exist."""
        table = self.table(entity)
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(external_ids), 5_000):
                part = external_ids[start:start + 5_000]
                rows = conn.execute(sa.select(table.c.external_id, table.c.id).where(table.c.external_id.in_(part)))
                found.update({ext: str(tid) for ext, tid in rows})
        return found

    def upsert(self, entity: str, rows: list[dict[str, Any]]) -> list[RowResult]:
        """Insert or update rows by external_id in one transaction; on a rejected row, retry row by row.

        A row the database rejects becomes a failed result with the database's reason;
        the batch's other rows still load.
        """
        if not rows:
            return []
        ids = [r["external_id"] for r in rows]
        before = self.existing(entity, ids)
        try:
            with self.engine.begin() as conn:
                conn.execute(self._upsert_statement(conn, entity), rows)
        except sa.exc.OperationalError as exc:
            raise TargetError(f"{self.describe()}: {entity}: {_reason(exc)}") from None
        except sa.exc.SQLAlchemyError:
            return self._row_by_row(entity, rows, before)
        after = self.existing(entity, ids)
        return [RowResult(e, "success", after.get(e), e not in before) for e in ids]

    def _row_by_row(self, entity: str, rows: list[dict[str, Any]], before: dict[str, str]) -> list[RowResult]:
        results = []
        for row in rows:
            try:
                with self.engine.begin() as conn:
                    conn.execute(self._upsert_statement(conn, entity), [row])
            except sa.exc.SQLAlchemyError as exc:
                results.append(RowResult(row["external_id"], "failed", None, False, _reason(exc)))
                continue
            tid = self.existing(entity, [row["external_id"]]).get(row["external_id"])
            results.append(RowResult(row["external_id"], "success", tid, row["external_id"] not in before))
        return results

    def _upsert_statement(self, conn: sa.Connection, entity: str) -> sa.Executable:
        table = self.table(entity)
        dialect = conn.dialect.name
        updatable = [c.name for c in table.columns if c.name not in ("id", "external_id")]
        if dialect in ("sqlite", "postgresql"):
            module = sa.dialects.sqlite if dialect == "sqlite" else sa.dialects.postgresql
            stmt = module.insert(table)
            return stmt.on_conflict_do_update(index_elements=["external_id"],
                                              set_={c: stmt.excluded[c] for c in updatable})
        if dialect in ("mysql", "mariadb"):
            stmt = sa.dialects.mysql.insert(table)
            return stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in updatable})
        raise TargetError(f"{self.describe()}: upsert is not supported on {dialect}")

    def delete(self, entity: str, external_ids: list[str]) -> int:
        """Delete rows by external_id; returns how many were deleted."""
        table = self.table(entity)
        deleted = 0
        with self.engine.begin() as conn:
            for start in range(0, len(external_ids), 5_000):
                part = external_ids[start:start + 5_000]
                deleted += conn.execute(sa.delete(table).where(table.c.external_id.in_(part))).rowcount
        return deleted

    def read(self, entity: str) -> pd.DataFrame:
        """Every row of an entity's table (for reconciliation read-back and tests)."""
        with self.engine.connect() as conn:
            result = conn.execute(sa.select(self.table(entity)).order_by(self.table(entity).c.external_id))
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
