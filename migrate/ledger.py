"""The load ledger: what each batch of a phase sent, what it created, and what it overwrote.

The exactly-once argument rests on the order of three commits per batch:

1. **record** (workspace) — a ``started`` ledger row with the keys the batch creates
   (``new_keys``) and, in ``load_before``, the values of every existing row it is about to
   change (the first image of a key wins, so a retry never overwrites the original);
2. **target** — the batch's inserts and updates, one transaction;
3. **commit** (workspace) — ``id_map`` (key → target id, checksum, action), per-row
   ``load_results``, and the ledger row ``committed``.

A kill before 2 leaves the target untouched; a kill between 2 and 3 leaves rows the
workspace does not map yet, and the rerun finds them in the target (identical rows are not
written again, keys are unique) while ``new_keys`` of the ``started`` row still says this
phase created them. So no duplicate, no gap, and rollback knows what to delete and restore.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from connectors.targets import BatchPlan
from migrate.killpoints import kill_point
from migrate.workspace import Workspace, id_map, load_before, load_ledger, load_phases, load_results, now

#: id_map actions: the phase created the row, changed an existing one (before-image kept), or
#: found it already identical in the target.
CREATED, UPDATED, ADOPTED = "created", "updated", "adopted"


class PhaseLedger:
    """The ledger of one phase in one run, for one entity at a time."""

    def __init__(self, ws: Workspace, run_id: str, phase: str):
        self.ws = ws
        self.run_id = run_id
        self.phase = phase

    def known(self, entity: str) -> pd.DataFrame:
        """id_map rows of an entity (any phase), indexed by key: target_id, checksum, action, phase."""
        frame = self.ws.frame(sa.select(id_map.c.key, id_map.c.target_id, id_map.c.checksum, id_map.c.action,
                                        id_map.c.phase).where(id_map.c.entity == entity))
        return frame.set_index("key")

    def crashed_new_keys(self, entity: str) -> set[str]:
        """Keys that ``started`` batches of this phase meant to create (their commit never came)."""
        rows = self.ws.frame(sa.select(load_ledger.c.new_keys).where(
            load_ledger.c.phase == self.phase, load_ledger.c.entity == entity, load_ledger.c.status == "started"))
        return {k for v in rows["new_keys"] for k in json.loads(v or "[]")} if len(rows) else set()

    def record(self, entity: str, batch_no: int, sums: pd.Series, plan: BatchPlan, owned: set[str]) -> int:
        """Step 1: make the batch's intent durable before the target commits; returns the ledger id.

        ``owned`` are keys this phase already created (their before-state is "absent").
        """
        kill_point("before-record")
        with self.ws.begin() as conn:
            ledger_id = conn.execute(sa.insert(load_ledger).values(
                run_id=self.run_id, phase=self.phase, entity=entity, batch_no=batch_no, status="started",
                row_count=len(sums), checksum=batch_checksum(sums), started_at=now(),
                new_keys=json.dumps(plan.new))).inserted_primary_key[0]
            images = [{"entity": entity, "key": k, "phase": self.phase, "ledger_id": ledger_id,
                       "image": json.dumps(image, ensure_ascii=False)}
                      for k, image in plan.images.items() if k not in owned]
            _insert_missing(conn, load_before, images)
        kill_point("recorded")
        return ledger_id

    def commit(self, entity: str, ledger_id: int, results: pd.DataFrame, sums: pd.Series,
               actions: pd.Series) -> None:
        """Step 3: the batch's id_map, per-row results and ledger status, in one workspace transaction.

        ``sums`` and ``actions`` are indexed by key.
        """
        kill_point("target-committed")
        ok = results[results["status"] == "success"]
        mapped = pd.DataFrame({
            "entity": entity, "key": ok["external_id"], "target_id": ok["target_id"], "phase": self.phase,
            "run_id": self.run_id, "action": ok["external_id"].map(actions),
            "checksum": ok["external_id"].map(sums)})
        # Successes live in id_map (key, target id, action, run); only the rest is kept per row here.
        outcome = results[results["status"] != "success"].assign(
            run_id=self.run_id, entity=entity, phase=self.phase, ledger_id=ledger_id)
        outcome = outcome.rename(columns={"external_id": "key"})
        with self.ws.begin() as conn:
            _upsert(conn, id_map, mapped)
            _upsert(conn, load_results, outcome)
            conn.execute(sa.update(load_ledger).where(load_ledger.c.id == ledger_id).values(
                status="committed", finished_at=now(), sent=len(ok), failed=len(results) - len(ok)))
        kill_point("ledger-committed")

    def unprocessed(self, entity: str, keys: list[str], reasons: list[str]) -> None:
        """Rows that were not sent (their parent is not in the target), as per-row results."""
        if not keys:
            return
        rows = [{"run_id": self.run_id, "entity": entity, "key": k, "phase": self.phase, "status": "unprocessed",
                 "target_id": None, "created": False, "reason": r, "ledger_id": None} for k, r in zip(keys, reasons)]
        with self.ws.begin() as conn:
            self.ws.upsert(conn, load_results, rows)

    def finish(self, entity: str) -> None:
        """Every batch of the entity is committed: crashed attempts are now superseded."""
        with self.ws.begin() as conn:
            conn.execute(sa.update(load_ledger).where(
                load_ledger.c.phase == self.phase, load_ledger.c.entity == entity,
                load_ledger.c.status == "started").values(status="superseded", finished_at=now()))

    def fingerprint_matches(self, fingerprint: str) -> bool:
        """Whether the phase was fully loaded from exactly this staged state and configuration."""
        found = self.ws.scalar(sa.select(load_phases.c.fingerprint).where(
            load_phases.c.phase == self.phase, load_phases.c.status == "loaded"))
        return found == fingerprint

    def mark_loaded(self, fingerprint: str | None) -> None:
        """Remember that the phase is complete (``None``: it is not, e.g. some rows failed)."""
        with self.ws.begin() as conn:
            conn.execute(sa.delete(load_phases).where(load_phases.c.phase == self.phase))
            if fingerprint is not None:
                conn.execute(sa.insert(load_phases).values(phase=self.phase, status="loaded", fingerprint=fingerprint,
                                                           run_id=self.run_id, at=now()))


def batch_checksum(sums: pd.Series) -> str:
    """The ledger checksum of a batch: SHA-256 over its row checksums in order."""
    return hashlib.sha256("".join(sums).encode()).hexdigest()


def _upsert(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    """Insert or replace rows by primary key with one driver-level executemany (the per-batch hot path)."""
    if frame.empty:
        return
    cols = [c.name for c in table.columns if c.name in frame.columns]
    pk = [c.name for c in table.primary_key.columns]
    q = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (f"INSERT INTO {q(table.name)} ({', '.join(q(c) for c in cols)}) VALUES ({', '.join([mark] * len(cols))}) "
           f"ON CONFLICT ({', '.join(q(c) for c in pk)}) DO UPDATE SET "
           + ", ".join(f"{q(c)} = excluded.{q(c)}" for c in cols if c not in pk))
    columns = []
    for col in cols:  # column by column: a frame-wide astype/where copies every cell twice
        values = frame[col].to_numpy(dtype=object)
        missing = pd.isna(values)
        if missing.any():
            values = np.where(missing, None, values)
        columns.append(values)
    conn.exec_driver_sql(sql, list(zip(*columns)))


def _insert_missing(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows whose primary key is not there yet; existing rows are left as they are."""
    if not rows:
        return
    module = sa.dialects.postgresql if conn.dialect.name == "postgresql" else sa.dialects.sqlite
    conn.execute(module.insert(table).on_conflict_do_nothing(), rows)


def export_results(ws: Workspace, path: Path, run_id: str | None = None, phase: str | None = None,
                   status: str | None = None) -> int:
    """Write per-row load results to a CSV like Bulk API 2.0's result files; returns the row count.

    Columns: ``external_id``, ``entity``, ``phase``, ``status`` (success, failed,
    unprocessed), ``target_id``, ``created``, ``reason``, ``run_id``. Successes come from
    ``id_map`` (the run that last sent each row), failures from ``load_results``. Without
    ``run_id``: the latest run that sent rows.
    """
    if run_id is None:
        run_id = ws.scalar(sa.select(sa.func.max(sa.union_all(
            sa.select(load_results.c.run_id), sa.select(id_map.c.run_id)).subquery().c.run_id)))
    done = sa.select(id_map.c.key.label("external_id"), id_map.c.entity, id_map.c.phase,
                     sa.literal("success").label("status"), id_map.c.target_id,
                     (id_map.c.action == CREATED).label("created"), sa.null().label("reason"), id_map.c.run_id)
    rest = sa.select(load_results.c.key.label("external_id"), load_results.c.entity, load_results.c.phase,
                     load_results.c.status, load_results.c.target_id, load_results.c.created,
                     load_results.c.reason, load_results.c.run_id)
    rows = sa.union_all(done.where(id_map.c.run_id == run_id), rest.where(load_results.c.run_id == run_id)).subquery()
    query = sa.select(rows)
    if phase is not None:
        query = query.where(rows.c.phase == phase)
    if status is not None:
        query = query.where(rows.c.status == status)
    frame = ws.frame(query.order_by(rows.c.entity, rows.c.external_id))
    frame.to_csv(path, index=False)
    return len(frame)
