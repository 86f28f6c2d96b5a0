"""The new CRM as a SQL database (SQLite, PostgreSQL, MariaDB): bulk, idempotent writes keyed by external id.

Either the bundled reference schema (``schema: reference``, created when missing) or an
existing schema described by a target mapping (YAML): per entity, the table, its external
id and id columns, and which reference column feeds which target column.

A batch is one target transaction: look up which keys exist (and read the rows that will
change, for their before-images), let the loader record that, then insert the new rows
with the dialect's bulk path and update the changed ones. A row the database rejects
becomes a failed result with the database's reason; the batch's other rows still load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.bulk import bulk_insert, db_records, is_transient, select_by_keys
from connectors.crm_schema import loaded_columns, reference_metadata
from connectors.targets import ENTITIES, BatchPlan, RecordPlan, Target, canonical, row_checksums
from connectors.urls import make_engine, safe_url
from migrate.errors import EXIT_USAGE, TargetError

#: Keys per ``IN (...)`` lookup: well under every dialect's bind-parameter limit.
LOOKUP_CHUNK = 5_000


class TargetSchemaError(TargetError):
    """The target database has tables that do not fit the schema or mapping we load into."""

    exit_code = EXIT_USAGE


class TargetUnavailable(TargetError):
    """A transient database error (connection lost, deadlock, lock timeout): worth retrying."""

    transient = True


class _EntityMap(BaseModel):
    """One entity in a target mapping file."""

    model_config = ConfigDict(extra="forbid")
    table: str
    key: str = "external_id"
    id: str = "id"
    columns: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class TableSpec:
    """Where one entity lives in the target: table, external id column, id column, column names."""

    entity: str
    table: sa.Table
    key: str
    id: str
    columns: dict[str, str]  # reference column -> target column

    def kinds(self) -> dict[str, tuple[str, int | None]]:
        """Reference column -> (canonical kind, decimal scale) from the target column types."""
        return {ref: _kind(self.table.c[col].type) for ref, col in self.columns.items()}


class SqlTarget(Target):
    """A SQLAlchemy-reachable CRM database.

    Example:
        >>> t = SqlTarget("sqlite://", Path("."))
        >>> rows = pd.DataFrame({"external_id": ["G-1"], "name": ["Acme Ltd"]})
        >>> t.write("accounts", rows, t.checksums("accounts", rows), lambda plan: None, set())["status"].tolist()
        ['success']
    """

    def __init__(self, url: str, base_dir: Path, mapping: str | None = None, create: bool = True):
        self.url = url
        self.engine = make_engine(url, base_dir, create_dirs=True, bulk_load=True)
        #: Reference tables not created yet (only when opened with ``create=False``, e.g. for a plan).
        self.missing: set[str] = set()
        try:
            self.specs = self._reference(create) if mapping is None else self._mapped(base_dir / mapping)
        except sa.exc.SQLAlchemyError as exc:
            raise _failure(self.describe(), exc) from None

    # -- schema --------------------------------------------------------------------------------------
    def _reference(self, create: bool) -> dict[str, TableSpec]:
        md = reference_metadata()
        if create:
            try:
                md.create_all(self.engine)
            except sa.exc.SQLAlchemyError as exc:
                raise TargetError(f"cannot create the reference schema in {self.describe()}: {_reason(exc)}") \
                    from None
        inspector = sa.inspect(self.engine)
        self.missing = {t for t in md.tables if not inspector.has_table(t)}
        problems = []
        for table in md.sorted_tables:
            if table.name in self.missing:
                continue
            found = {c["name"] for c in inspector.get_columns(table.name)}
            missing = [c.name for c in table.columns if c.name not in found]
            if missing:
                problems.append(f"table {table.name!r} exists but lacks column(s) {', '.join(missing)}")
        if problems:
            raise TargetSchemaError(f"{self.describe()} is not in the reference CRM schema: " + "; ".join(problems))
        return {name: TableSpec(name, md.tables[name], "external_id", "id",
                                {c: c for c in loaded_columns(md.tables[name])}) for name in ENTITIES}

    def _mapped(self, path: Path) -> dict[str, TableSpec]:
        """Reflect the tables a mapping names; every missing table or column is listed at once."""
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            maps = {e: _EntityMap.model_validate(m) for e, m in raw.items()}
        except OSError as exc:
            raise TargetSchemaError(f"target mapping {path}: {exc.strerror}") from None
        except (yaml.YAMLError, ValidationError, AttributeError) as exc:
            raise TargetSchemaError(f"target mapping {path}: not a valid mapping: {str(exc).splitlines()[0]}") from None
        unknown = sorted(set(maps) - set(ENTITIES))
        problems = [f"unknown entity {e!r} (expected one of {', '.join(ENTITIES)})" for e in unknown]
        inspector = sa.inspect(self.engine)
        md = sa.MetaData()
        specs = {}
        for entity in ENTITIES:
            m = maps.get(entity)
            if m is None:
                continue
            if not inspector.has_table(m.table):
                problems.append(f"{entity}: table {m.table!r} does not exist in {self.describe()}")
                continue
            table = sa.Table(m.table, md, autoload_with=self.engine)
            for what, col in [("key", m.key), ("id", m.id), *((f"columns.{r}", c) for r, c in m.columns.items())]:
                if col not in table.c:
                    problems.append(f"{entity}.{what}: table {m.table!r} has no column {col!r}")
            if m.key in table.c and not _is_unique(inspector, m.table, m.key):
                problems.append(f"{entity}.key: column {m.key!r} of {m.table!r} is not unique; the external id "
                                "needs a unique index so a rerun finds what was loaded")
            specs[entity] = TableSpec(entity, table, m.key, m.id, {"external_id": m.key, **m.columns})
        if problems:
            raise TargetSchemaError(f"target mapping {path}: " + "; ".join(problems))
        return specs

    def describe(self) -> str:
        """The target, password hidden."""
        return safe_url(self.url)

    def entities(self) -> tuple[str, ...]:
        """Entities this target takes, in load order."""
        return tuple(self.specs)

    def table(self, entity: str) -> sa.Table:
        """The target table for an entity."""
        return self.specs[entity].table

    def preflight(self) -> None:
        """Probe insert, update and delete rights on every table with statements that touch no row.

        A read-only database, user or transaction fails here, before the ledger or the
        target is written.
        """
        try:
            with self.engine.connect() as conn, conn.begin() as tx:
                for spec in self.specs.values():
                    t, key = spec.table, spec.table.c[spec.key]
                    nothing = sa.false()
                    conn.execute(sa.update(t).where(nothing).values({key: key}))
                    conn.execute(sa.insert(t).from_select([key], sa.select(key).where(nothing)))
                    conn.execute(sa.delete(t).where(nothing))
                tx.rollback()
        except sa.exc.SQLAlchemyError as exc:
            raise _failure(f"{self.describe()} does not accept writes", exc) from None

    # -- checksums ------------------------------------------------------------------------------------
    def _sent(self, entity: str, rows: pd.DataFrame) -> list[str]:
        """Reference columns of ``rows`` this target stores, in a fixed order."""
        return [c for c in self.specs[entity].columns if c in rows.columns]

    def checksums(self, entity: str, rows: pd.DataFrame) -> pd.Series:
        """Checksum per row of the values as the target stores them (types from the target columns)."""
        kinds = self.specs[entity].kinds()
        cols = [c for c in self._sent(entity, rows) if c != "external_id"]
        return row_checksums({c: canonical(rows[c], *kinds[c]) for c in ["external_id", *cols]}, rows.index)

    # -- writing -------------------------------------------------------------------------------------
    def write(self, entity: str, rows: pd.DataFrame, sums: pd.Series, record: RecordPlan,
              known: set[str]) -> pd.DataFrame:
        """Create or update a batch in one transaction; see :meth:`Target.write`."""
        spec = self.specs[entity]
        cols = self._sent(entity, rows)
        keys = rows["external_id"].tolist()
        try:
            with self.engine.connect() as conn, conn.begin():
                before = self._rows(conn, spec, keys, cols)
                old_sums = self._sums(spec, before, cols)
                new_sums = dict(zip(keys, sums))
                changed = [k for k in before.index if old_sums[k] != new_sums[k]]
                have = set(before.index)  # a set: Index membership costs microseconds per key
                plan = BatchPlan(new=[k for k in keys if k not in have], changed=changed,
                                 unchanged=[k for k in before.index if old_sums[k] == new_sums[k]],
                                 images=_images(before.loc[changed], spec))
                record(plan)
                indexed = rows[cols].set_index(rows["external_id"].to_numpy(), drop=False)
                fresh = indexed if before.empty else indexed.loc[plan.new]  # a first load skips the label lookups
                ids, failed = self._insert(conn, spec, fresh)
                failed.update(self._update(conn, spec, indexed.loc[changed]))
                ids.update(before["_id"].astype(str).to_dict())
        except sa.exc.SQLAlchemyError as exc:
            raise _failure(f"{self.describe()}: {entity}", exc) from None
        key = pd.Series(keys, dtype=object)
        bad = key.isin(list(failed))
        return pd.DataFrame({"external_id": key, "status": np.where(bad, "failed", "success"),
                             "target_id": key.map(ids).where(~bad, None), "created": key.isin(plan.new) & ~bad,
                             "reason": key.map(failed)})

    def _rows(self, conn: sa.Connection, spec: TableSpec, keys: list[str], cols: list[str]) -> pd.DataFrame:
        """Rows among ``keys`` that exist, by external id, in reference column names plus ``_id``."""
        found = select_by_keys(conn, spec.table, spec.key, keys, [*(spec.columns[c] for c in cols), spec.id])
        frame = pd.DataFrame(found, columns=[*cols, "_id"])
        return frame.set_index(frame["external_id"].astype(str).to_numpy())

    def _sums(self, spec: TableSpec, frame: pd.DataFrame, cols: list[str]) -> dict[str, str]:
        if frame.empty:
            return {}
        return self.checksums(spec.entity, frame[cols]).to_dict()

    def _insert(self, conn: sa.Connection, spec: TableSpec, rows: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
        """Insert new rows with the bulk path; on a rejected row, row by row. Returns ids and failures."""
        if rows.empty:
            return {}, {}
        target_rows = rows.rename(columns=spec.columns)
        try:
            with conn.begin_nested():
                bulk_insert(conn, spec.table, target_rows)
            failed: dict[str, str] = {}
        except sa.exc.SQLAlchemyError as exc:
            if is_transient(exc):
                raise
            failed = self._one_by_one(conn, sa.insert(spec.table), target_rows, spec.key)
        done = [k for k in rows.index if k not in failed]
        return {str(k): str(i) for k, i in select_by_keys(conn, spec.table, spec.key, done, [spec.key, spec.id])}, \
            failed

    def _update(self, conn: sa.Connection, spec: TableSpec, rows: pd.DataFrame) -> dict[str, str]:
        """Update changed rows by external id; on a rejected row, row by row. Returns failures."""
        if rows.empty:
            return {}
        t = spec.table
        values = {spec.columns[c]: sa.bindparam(f"v_{c}") for c in rows.columns if c != "external_id"}
        stmt = sa.update(t).where(t.c[spec.key] == sa.bindparam("v_external_id")).values(values)
        params = rows.rename(columns=lambda c: f"v_{c}")
        try:
            with conn.begin_nested():
                conn.execute(stmt, db_records(params))
            return {}
        except sa.exc.SQLAlchemyError as exc:
            if is_transient(exc):
                raise
            return self._one_by_one(conn, stmt, params, "v_external_id")

    def _one_by_one(self, conn: sa.Connection, stmt: sa.Executable, rows: pd.DataFrame, key: str) -> dict[str, str]:
        """Run ``stmt`` per row in its own savepoint; returns key -> the database's reason for each rejected row."""
        failed = {}
        for row in db_records(rows):
            try:
                with conn.begin_nested():
                    conn.execute(stmt, [row])
            except sa.exc.SQLAlchemyError as exc:
                if is_transient(exc):
                    raise
                failed[str(row[key])] = _reason(exc)
        return failed

    # -- reading, deleting, restoring ------------------------------------------------------------------
    def existing(self, entity: str, keys: list[str]) -> pd.DataFrame:
        """``external_id, target_id, checksum`` of the rows among ``keys`` that exist."""
        spec = self.specs[entity]
        cols = list(spec.columns)
        if entity in self.missing:
            return self._summary(spec, pd.DataFrame(), cols)
        with self.engine.connect() as conn:
            frame = self._rows(conn, spec, keys, cols)
        return self._summary(spec, frame, cols)

    def read_back(self, entity: str) -> pd.DataFrame:
        """``external_id, target_id, checksum`` of every row, streamed in chunks."""
        spec = self.specs[entity]
        cols = list(spec.columns)
        t = spec.table
        query = sa.select(*[t.c[spec.columns[c]].label(c) for c in cols], t.c[spec.id].label("_id"))
        parts = []
        if entity in self.missing:
            return self._summary(spec, pd.DataFrame(), cols)
        with self.engine.connect().execution_options(yield_per=50_000) as conn:
            for chunk in conn.execute(query).partitions():
                parts.append(self._summary(spec, pd.DataFrame(chunk, columns=[*cols, "_id"]), cols))
        return pd.concat(parts, ignore_index=True) if parts else self._summary(spec, pd.DataFrame(), cols)

    def _summary(self, spec: TableSpec, frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
        if frame.empty:
            return pd.DataFrame(columns=["external_id", "target_id", "checksum"])
        return pd.DataFrame({"external_id": frame["external_id"].astype(str).to_numpy(),
                             "target_id": frame["_id"].astype(str).to_numpy(),
                             "checksum": self.checksums(spec.entity, frame[cols]).to_numpy()})

    def delete(self, entity: str, keys: list[str]) -> int:
        """Delete rows by external id; returns how many were deleted."""
        spec = self.specs[entity]
        key = spec.table.c[spec.key]
        deleted = 0
        with self.engine.begin() as conn:
            for start in range(0, len(keys), LOOKUP_CHUNK):
                deleted += conn.execute(sa.delete(spec.table).where(key.in_(keys[start:start + LOOKUP_CHUNK]))).rowcount
        return deleted

    def restore(self, entity: str, images: dict[str, dict[str, Any]]) -> int:
        """Write before-images back (target column -> value) by external id."""
        if not images:
            return 0
        spec = self.specs[entity]
        t = spec.table
        cols = sorted({c for image in images.values() for c in image})
        stmt = sa.update(t).where(t.c[spec.key] == sa.bindparam("k_")).values(
            {c: sa.bindparam(f"v_{c}") for c in cols})
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"k_": k, **{f"v_{c}": image.get(c) for c in cols}} for k, image in images.items()])
        return len(images)

    def read(self, entity: str) -> pd.DataFrame:
        """Every row of an entity's table, ordered by external id (for tests and people)."""
        spec = self.specs[entity]
        with self.engine.connect() as conn:
            result = conn.execute(sa.select(spec.table).order_by(spec.table.c[spec.key]))
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _kind(type_: sa.types.TypeEngine) -> tuple[str, int | None]:
    if isinstance(type_, sa.Boolean):
        return "bool", None
    if isinstance(type_, sa.Integer):
        return "int", None
    if isinstance(type_, sa.Numeric) and not isinstance(type_, sa.Float):
        return "decimal", type_.scale or 0
    if isinstance(type_, (sa.Date, sa.DateTime)):
        return "date", None
    return "text", None


def _is_unique(inspector: sa.Inspector, table: str, column: str) -> bool:
    pk = inspector.get_pk_constraint(table).get("constrained_columns") or []
    uniques = [u["column_names"] for u in inspector.get_unique_constraints(table)]
    uniques += [i["column_names"] for i in inspector.get_indexes(table) if i.get("unique")]
    return [column] == pk or [column] in uniques


def _images(frame: pd.DataFrame, spec: TableSpec) -> dict[str, dict[str, Any]]:
    """Rows before an update, as JSON-safe target column -> value (text for decimals and dates)."""
    if frame.empty:
        return {}
    cols = [c for c in frame.columns if c not in ("_id", "external_id")]
    data = frame[cols].rename(columns=spec.columns)
    return {k: json.loads(json.dumps(r, default=str)) for k, r in zip(frame.index, db_records(data))}


def _failure(where: str, exc: sa.exc.SQLAlchemyError) -> TargetError:
    """The error to raise for a database failure: retryable when it is transient."""
    return (TargetUnavailable if is_transient(exc) else TargetError)(f"{where}: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["SqlTarget", "TableSpec", "TargetSchemaError", "TargetUnavailable"]
