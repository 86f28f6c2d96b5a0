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
import pyarrow as pa
import pyarrow.json as pa_json
import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.bulk import bulk_insert, db_records, driver_cursor, is_transient, select_by_keys
from connectors.crm_schema import loaded_columns, reference_metadata
from connectors.targets import ENTITIES, BatchPlan, RecordPlan, Target, canonical, row_checksums
from connectors.urls import make_engine, safe_url
from migrate.errors import EXIT_USAGE, TargetError

#: Keys per ``IN (...)`` lookup: well under every dialect's bind-parameter limit.
LOOKUP_CHUNK = 5_000
#: Dialects that compare a batch with the rows they hold in the database, through a temporary table.
_STAGED = ("postgresql", "mysql", "mariadb")
_STAGE = "crm_migrate_stage"
#: What the comparison with a staged batch returns per existing key.
_FOUND = pa.schema([("key", pa.string()), ("id", pa.string()), ("same", pa.int64())])


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
    key_index: str | None = None  # the unique index on the external id column

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
        #: Entities whose last batch found some of its keys in the target: their next batch looks first.
        self._found: set[str] = set()
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
                                {c: c for c in loaded_columns(md.tables[name])},
                                None if name in self.missing else _unique_index(inspector, name, "external_id"))
                for name in ENTITIES}

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
            key_index = _unique_index(inspector, m.table, m.key)
            if m.key in table.c and key_index is None:
                problems.append(f"{entity}.key: column {m.key!r} of {m.table!r} is not unique; the external id "
                                "needs a unique index so a rerun finds what was loaded")
            specs[entity] = TableSpec(entity, table, m.key, m.id, {"external_id": m.key, **m.columns}, key_index)
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
        """Create or update a batch in one transaction; see :meth:`Target.write`.

        While no key of the entity has been found in the target, a batch is first sent whole
        with the bulk path: if the database takes it, every row is new and no lookup is needed
        (a first load). A key that exists (or any rejected row) rolls that attempt back and the
        batch looks its keys up instead.
        """
        spec = self.specs[entity]
        cols = self._sent(entity, rows)
        index = pd.Index(rows["external_id"].to_numpy(dtype=object))
        keys = index.tolist()
        indexed = rows[cols].set_index(index, drop=False)
        try:
            with self.engine.connect() as conn, conn.begin():
                if entity not in self._found and known.isdisjoint(keys) and self._insert_all(conn, spec, indexed):
                    plan = BatchPlan(new=keys, changed=[], unchanged=[])
                    record(plan)
                    ids, failed = self._new_ids(conn, spec, index), {}
                else:
                    found = self._existing(conn, spec, indexed, sums, cols)
                    (self._found.add if len(found) else self._found.discard)(entity)
                    plan = self._plan(conn, spec, keys, found, cols)
                    record(plan)
                    ids, failed = self._insert(conn, spec, indexed.loc[plan.new])
                    failed.update(self._update(conn, spec, indexed.loc[plan.changed]))
                    ids = pd.concat([ids, found["_id"].astype(str)])
        except sa.exc.SQLAlchemyError as exc:
            raise _failure(f"{self.describe()}: {entity}", exc) from None
        bad = index.isin(list(failed))
        return pd.DataFrame({"external_id": index.to_numpy(), "status": np.where(bad, "failed", "success"),
                             "target_id": ids.reindex(index).where(~bad, None).to_numpy(),
                             "created": index.isin(plan.new) & ~bad, "reason": index.map(failed).to_numpy()})

    def _existing(self, conn: sa.Connection, spec: TableSpec, rows: pd.DataFrame, sums: pd.Series,
                  cols: list[str]) -> pd.DataFrame:
        """The batch's rows the target holds: by key, ``_id`` and ``same`` (identical to what the batch sends).

        PostgreSQL and MariaDB compare in the database (:meth:`_compared`); otherwise, or if the
        staging table refuses a value, the rows are read and their checksums compared here.
        """
        if conn.dialect.name in _STAGED:
            try:
                with conn.begin_nested():
                    return self._compared(conn, spec, rows, cols)
            except sa.exc.SQLAlchemyError as exc:
                if is_transient(exc):
                    raise
        before = self._rows(conn, spec, rows.index.tolist(), cols)
        same = self.checksums(spec.entity, before[cols]).to_numpy() == sums.reindex(before.index).to_numpy()
        return pd.DataFrame({"_id": before["_id"].to_numpy(), "same": same}, index=before.index)

    def _compared(self, conn: sa.Connection, spec: TableSpec, rows: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
        """:meth:`_existing` in the database: the batch goes to a temporary table of the target's column
        types with the bulk path, and one join says which keys exist and whether every value is equal.

        Only keys, ids and one flag come back, instead of every column of every existing row.
        """
        q = conn.dialect.identifier_preparer.quote
        target = [spec.columns[c] for c in cols]
        stage = sa.Table(_STAGE, sa.MetaData(), *(sa.Column(c, spec.table.c[c].type) for c in target))
        postgres = conn.dialect.name == "postgresql"
        # Named so that only a temporary table can ever be dropped, never a CRM table of that name.
        drop = f"DROP {'TABLE IF EXISTS pg_temp.' if postgres else 'TEMPORARY TABLE IF EXISTS '}{q(_STAGE)}"
        conn.exec_driver_sql(drop)
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {q(_STAGE)} AS SELECT {', '.join(q(c) for c in target)} FROM {q(spec.table.name)} "
            "WHERE 1 = 0")
        bulk_insert(conn, stage, rows[cols].rename(columns=spec.columns))
        # Strict equality: byte for byte (MariaDB's collations would call 'Ann' and 'ann ' equal), NULL equal to NULL.
        equal = (" AND ".join(f"t.{q(c)} IS NOT DISTINCT FROM s.{q(c)}" for c in target) if postgres else
                 " AND ".join(f"CAST(t.{q(c)} AS BINARY) <=> CAST(s.{q(c)} AS BINARY)" for c in target))
        # From the batch into the target's unique index, always: right after a bulk load MariaDB's
        # statistics may still say the target is empty, and it would scan it once per batch row.
        join, text = ("JOIN", "TEXT") if postgres else ("STRAIGHT_JOIN", "CHAR")
        hint = f" FORCE INDEX ({q(spec.key_index)})" if spec.key_index and not postgres else ""
        found = _json_rows(conn, {"key": f"s.{q(spec.key)}", "id": f"CAST(t.{q(spec.id)} AS {text})",
                                  "same": f"CASE WHEN {equal} THEN 1 ELSE 0 END"},
                           f"FROM {q(_STAGE)} s {join} {q(spec.table.name)} t{hint} "
                           f"ON t.{q(spec.key)} = s.{q(spec.key)}", _FOUND)
        conn.exec_driver_sql(drop)
        return pd.DataFrame({"_id": found["id"].to_numpy(zero_copy_only=False),
                             "same": found["same"].to_numpy(zero_copy_only=False).astype(bool)},
                            index=found["key"].to_numpy(zero_copy_only=False))

    def _plan(self, conn: sa.Connection, spec: TableSpec, keys: list[str], found: pd.DataFrame,
              cols: list[str]) -> BatchPlan:
        """What a batch does, given which of its keys the target holds and which of those differ (``found``)."""
        if found.empty:
            return BatchPlan(new=keys, changed=[], unchanged=[])
        have = set(found.index)  # a set: Index membership costs microseconds per key
        changed = found.index[~found["same"].to_numpy()].tolist()
        images = _images(self._rows(conn, spec, changed, cols), spec) if changed else {}
        return BatchPlan(new=[k for k in keys if k not in have], changed=changed,
                         unchanged=found.index[found["same"].to_numpy()].tolist(), images=images)

    def _rows(self, conn: sa.Connection, spec: TableSpec, keys: list[str], cols: list[str]) -> pd.DataFrame:
        """Rows among ``keys`` that exist, by external id, in reference column names plus ``_id``."""
        found = select_by_keys(conn, spec.table, spec.key, keys, [*(spec.columns[c] for c in cols), spec.id])
        frame = pd.DataFrame(found, columns=[*cols, "_id"])
        return frame.set_index(frame["external_id"].astype(str).to_numpy())

    def _insert_all(self, conn: sa.Connection, spec: TableSpec, rows: pd.DataFrame) -> bool:
        """Insert every row with the bulk path in a savepoint; False (and nothing inserted) if any is refused."""
        try:
            with conn.begin_nested():
                if bulk_insert(conn, spec.table, rows.rename(columns=spec.columns), plain=False):
                    return True
        except sa.exc.SQLAlchemyError as exc:
            if is_transient(exc):
                raise
        self._found.add(spec.entity)
        return False

    def _insert(self, conn: sa.Connection, spec: TableSpec, rows: pd.DataFrame) -> tuple[pd.Series, dict[str, str]]:
        """Insert new rows with the bulk path; on a rejected row, row by row. Returns ids by key and failures."""
        if rows.empty:
            return pd.Series(dtype=object), {}
        target_rows = rows.rename(columns=spec.columns)
        try:
            with conn.begin_nested():
                bulk_insert(conn, spec.table, target_rows)
            failed: dict[str, str] = {}
        except sa.exc.SQLAlchemyError as exc:
            if is_transient(exc):
                raise
            failed = self._one_by_one(conn, sa.insert(spec.table), target_rows, spec.key)
        return self._new_ids(conn, spec, rows.index[~rows.index.isin(list(failed))]), failed

    def _new_ids(self, conn: sa.Connection, spec: TableSpec, keys: pd.Index) -> pd.Series:
        """Target ids of rows just inserted in the order of ``keys``.

        A counter column (sequence, AUTO_INCREMENT, rowid) numbers rows in insertion order, so
        when the first and last key's ids are ``len(keys) - 1`` apart nothing else took a
        number in between and the ids are consecutive: two lookups instead of reading every
        id back. Otherwise (another writer, a gap, a column the database does not count) they
        are read back.
        """
        if len(keys) and spec.table.autoincrement_column is spec.table.c[spec.id]:
            ends = dict(select_by_keys(conn, spec.table, spec.key, [keys[0], keys[-1]], [spec.key, spec.id]))
            first, last = int(ends[keys[0]]), int(ends[keys[-1]])
            if last - first == len(keys) - 1:
                return pd.Series(np.arange(first, last + 1).astype(str).astype(object), index=keys)
        found = select_by_keys(conn, spec.table, spec.key, keys.tolist(), [spec.key, spec.id])
        return pd.Series([str(i) for _, i in found], index=[str(k) for k, _ in found], dtype=object)

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


def _json_rows(conn: sa.Connection, columns: dict[str, str], source: str, schema: pa.Schema) -> pa.Table:
    """``SELECT columns source`` as an Arrow table, the database joining the rows into one JSON-lines text.

    MariaDB's driver is pure Python: one string per query instead of a Python object per value
    is what makes reading 50,000 rows cheap. Should MariaDB cut the text short (it is capped
    at ``max_allowed_packet``), the rows are fetched one by one instead.
    """
    pairs = ", ".join(f"'{name}', {expr}" for name, expr in columns.items())
    with driver_cursor(conn, source) as cursor:
        if conn.dialect.name == "postgresql":
            cursor.execute(f"SELECT COUNT(*), string_agg(json_build_object({pairs})::text, chr(10)) {source}")
        else:
            cursor.execute("SET SESSION group_concat_max_len = @@max_allowed_packet")
            cursor.execute(f"SELECT COUNT(*), GROUP_CONCAT(JSON_OBJECT({pairs}) SEPARATOR '\n') {source}")
        count, text = cursor.fetchone()
        if not count:
            return schema.empty_table()
        try:
            table = pa_json.read_json(pa.BufferReader(text.encode()),
                                      parse_options=pa_json.ParseOptions(explicit_schema=schema))
            if table.num_rows == count:
                return table
        except pa.ArrowInvalid:  # the text was cut in the middle of a row
            pass
        cursor.execute(f"SELECT {', '.join(columns.values())} {source}")
        return pa.Table.from_pylist([dict(zip(columns, row)) for row in cursor.fetchall()], schema=schema)


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


def _unique_index(inspector: sa.Inspector, table: str, column: str) -> str | None:
    """The name of the unique index (or primary key) on exactly ``column`` ("" if it has none); None: not unique."""
    pk = inspector.get_pk_constraint(table)
    if pk.get("constrained_columns") == [column]:
        return pk.get("name") or "PRIMARY"
    uniques = [*inspector.get_unique_constraints(table), *(i for i in inspector.get_indexes(table) if i.get("unique"))]
    return next((u["name"] or "" for u in uniques if u["column_names"] == [column]), None)


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
