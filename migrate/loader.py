"""The phased loader: golden records and their related records into the new CRM, exactly once.

Idempotency rests on two facts: every target row is upserted by its unique
``external_id`` (a golden id or a related key), and the workspace ledger records which
batch was sent with which checksum. A rerun skips rows whose checksum in ``id_map``
is unchanged; a crash between the target commit and the ledger commit is repaired by the
upsert itself (no duplicate), and ``new_keys`` in the ledger remembers which rows the
phase created, so rollback deletes exactly those.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from connectors.target_sql import SqlTarget
from migrate.errors import ConfigError
from migrate.progress import progress
from migrate.project import Project
from migrate.workspace import (Workspace, encode_frame, golden, id_map, load_ledger, load_results, now, read_table,
                               related, xref)

log = logging.getLogger("crm_migrate")

#: Related kinds with a table of their own in the reference schema; others load as activities.
RELATED_ENTITIES = ("orders", "invoices", "activities")
RELATED_COLUMNS = ("occurred_on", "amount", "currency", "status")


@dataclass
class PhaseResult:
    """What one phase load did, per entity."""

    phase: str
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)

    def add(self, bucket: str, entity: str, n: int) -> None:
        """Count n rows of an entity in a bucket."""
        counts = getattr(self, bucket)
        counts[entity] = counts.get(entity, 0) + n


def assign_phases(project: Project, frame: pd.DataFrame, loaded_phase: pd.Series) -> pd.Series:
    """The phase of each golden record: where it was loaded before, else the first phase whose predicate holds.

    A golden record belongs to exactly one phase; phases are tried in order and a phase
    without ``where`` takes the rest.
    """
    phase = loaded_phase.reindex(frame["golden_id"]).to_numpy()
    result = pd.Series(phase, index=frame.index, dtype=object)
    todo = result.isna()
    for p in project.config.phases:
        if not todo.any():
            break
        if p.where is None:
            hit = todo
        else:
            try:
                hit = todo & frame.eval(p.where, engine="python").astype(bool)
            except Exception as exc:  # a predicate is user text: any failure is a config problem
                raise ConfigError(f"phase {p.name!r}: predicate {p.where!r} failed: {exc}") from None
        result[hit] = p.name
        todo &= ~hit
    return result


def golden_frame(ws: Workspace) -> pd.DataFrame:
    """Active golden records with the phase each was loaded in (if any)."""
    return read_table(ws, golden, where=golden.c.status == "active")


def contact_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Golden people as rows of the reference ``contacts`` table (account_id set later)."""
    out = pd.DataFrame({
        "external_id": frame["golden_id"],
        "title": frame["title"], "first_name": frame["first_name"], "middle_name": frame["middle_name"],
        "last_name": frame["last_name"], "suffix": frame["suffix"], "company": frame["organization_name"],
        **_party(frame), **_place(frame),
        "birth_date": frame["birth_date"],
        "email_opt_in": frame["email_opt_in"], "do_not_contact": frame["do_not_contact"],
    })
    return out


def account_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Golden organisations as rows of the reference ``accounts`` table."""
    return pd.DataFrame({"external_id": frame["golden_id"], "name": frame["organization_name"],
                         **_party(frame), **_place(frame)})


def _party(frame: pd.DataFrame) -> dict[str, pd.Series]:
    emails, phones = frame["emails"], frame["phones"]
    return {
        "email": emails.map(lambda v: v[0] if v else None), "phone": phones.map(lambda v: v[0] if v else None),
        "other_emails": emails.map(lambda v: json.dumps(v[1:]) if len(v) > 1 else None),
        "other_phones": phones.map(lambda v: json.dumps(v[1:]) if len(v) > 1 else None),
    }


def _place(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {c: frame[c] for c in ("street", "city", "region", "postcode", "country")}


def row_checksums(rows: pd.DataFrame) -> pd.Series:
    """A checksum per row of what is sent (external ids and payload), for change detection."""
    return pd.util.hash_pandas_object(rows.astype(str), index=False).map("{:016x}".format)


def load_phase(project: Project, ws: Workspace, run_id: str, phase: str) -> PhaseResult:
    """Load one phase's golden records, then their related records, into the target."""
    names = [p.name for p in project.config.phases]
    if phase not in names:
        raise ConfigError(f"no phase {phase!r} in migration.yaml (phases: {', '.join(names)})")
    target = SqlTarget(project.config.target.url, project.dir)
    result = PhaseResult(phase)
    frame = golden_frame(ws)
    loaded = read_table(ws, id_map, where=id_map.c.entity.in_(["contacts", "accounts"]))
    frame["phase"] = assign_phases(project, frame, loaded.set_index("key")["phase"] if len(loaded) else pd.Series())
    mine = frame[frame["phase"] == phase].sort_values("golden_id")
    is_org = (mine["entity"] == "organization") | (mine["first_name"].isna() & mine["last_name"].isna())
    _load_entity(project, ws, target, run_id, phase, "accounts", account_rows(mine[is_org]), result)
    _load_entity(project, ws, target, run_id, phase, "contacts", contact_rows(mine[~is_org]), result)
    _load_related(project, ws, target, run_id, phase, mine["golden_id"], result)
    return result


def _load_entity(project: Project, ws: Workspace, target: SqlTarget, run_id: str, phase: str, entity: str,
                 rows: pd.DataFrame, result: PhaseResult) -> None:
    if rows.empty:
        return
    rows = rows.astype(object).where(rows.notna(), None)
    rows["checksum"] = row_checksums(rows).to_numpy()
    known = read_table(ws, id_map, ["key", "checksum"], where=id_map.c.entity == entity).set_index("key")["checksum"]
    same = rows["external_id"].map(known) == rows["checksum"]
    result.add("unchanged", entity, int(same.sum()))
    todo = rows[~same]
    if todo.empty:
        log.info("load %s %s: nothing changed since the last load", phase, entity)
        return
    batch_size = project.config.target.batch_size
    with progress(f"load {phase} {entity}", len(todo)) as advance:
        for batch_no, start in enumerate(range(0, len(todo), batch_size)):
            batch = todo.iloc[start:start + batch_size]
            _load_batch(ws, target, run_id, phase, entity, batch_no, batch, result)
            advance(len(batch))


def _load_batch(ws: Workspace, target: SqlTarget, run_id: str, phase: str, entity: str, batch_no: int,
                batch: pd.DataFrame, result: PhaseResult) -> None:
    keys = batch["external_id"].tolist()
    checksum = hashlib.sha256("".join(batch["checksum"]).encode()).hexdigest()
    pre_existing = target.existing(entity, keys)
    # Keys this phase creates, written before the target is touched, so a crash right after
    # the target commit still knows which rows rollback must delete.
    pending = read_table(ws, load_ledger, ["new_keys"], where=sa.and_(
        load_ledger.c.phase == phase, load_ledger.c.entity == entity, load_ledger.c.status == "started"))
    earlier_new = {k for v in pending["new_keys"] for k in json.loads(v or "[]")} if len(pending) else set()
    new_keys = [k for k in keys if k not in pre_existing or k in earlier_new]
    with ws.begin() as conn:
        ledger_id = conn.execute(sa.insert(load_ledger).values(
            run_id=run_id, phase=phase, entity=entity, batch_no=batch_no, status="started", row_count=len(batch),
            checksum=checksum, started_at=now(), new_keys=json.dumps(new_keys))).inserted_primary_key[0]
    payload = batch.drop(columns=["checksum"]).to_dict("records")
    outcomes = target.upsert(entity, payload)
    ok = [o for o in outcomes if o.status == "success"]
    failed = [o for o in outcomes if o.status != "success"]
    sums = dict(zip(batch["external_id"], batch["checksum"]))
    created = set(new_keys)
    with ws.begin() as conn:
        ws.upsert(conn, id_map, [{"entity": entity, "key": o.external_id, "target_id": o.target_id, "phase": phase,
                                  "run_id": run_id, "action": "created" if o.external_id in created else "updated",
                                  "checksum": sums[o.external_id]} for o in ok], keep=("action",))
        ws.upsert(conn, load_results, [{"run_id": run_id, "entity": entity, "key": o.external_id, "phase": phase,
                                        "status": o.status, "target_id": o.target_id,
                                        "created": o.external_id in created, "reason": o.reason} for o in outcomes])
        conn.execute(sa.update(load_ledger).where(load_ledger.c.id == ledger_id).values(
            status="committed", finished_at=now()))
        # Earlier started batches of this phase and entity are now superseded.
        conn.execute(sa.update(load_ledger).where(
            load_ledger.c.phase == phase, load_ledger.c.entity == entity, load_ledger.c.status == "started",
            load_ledger.c.id != ledger_id).values(status="superseded", finished_at=now()))
    n_created = sum(1 for o in ok if o.external_id in created)
    result.add("created", entity, n_created)
    result.add("updated", entity, len(ok) - n_created)
    result.add("failed", entity, len(failed))
    for o in failed[:5]:
        log.warning("load %s %s: %s rejected by the target: %s", phase, entity, o.external_id, o.reason)


def _load_related(project: Project, ws: Workspace, target: SqlTarget, run_id: str, phase: str,
                  golden_ids: pd.Series, result: PhaseResult) -> None:
    rel = read_table(ws, related)
    if rel.empty:
        return
    parents = read_table(ws, xref, ["record_key", "golden_id"]).set_index("record_key")["golden_id"]
    rel["golden_id"] = rel["parent_record_key"].map(parents)
    rel = rel[rel["golden_id"].isin(set(golden_ids))]
    ids = read_table(ws, id_map, ["entity", "key", "target_id"], where=id_map.c.entity.in_(["contacts", "accounts"]))
    contact_ids = ids[ids["entity"] == "contacts"].set_index("key")["target_id"]
    account_ids = ids[ids["entity"] == "accounts"].set_index("key")["target_id"]
    for kind, group in rel.groupby("kind"):
        entity = kind if kind in RELATED_ENTITIES else "activities"
        fields = _related_fields(project, group["source"].iloc[0], str(kind))
        data = pd.DataFrame(list(group["data"]), index=group.index)
        rows = pd.DataFrame({"external_id": group["related_key"],
                             "contact_id": group["golden_id"].map(contact_ids),
                             "account_id": group["golden_id"].map(account_ids)})
        for col in RELATED_COLUMNS:
            src = fields.get(col, col)
            rows[col] = data[src] if src in data else None
        rows["amount"] = pd.to_numeric(rows["amount"], errors="coerce")
        rows["data"] = [json.dumps(d, ensure_ascii=False, default=str) for d in group["data"]]
        for col in ("contact_id", "account_id"):
            rows[col] = pd.to_numeric(rows[col], errors="coerce").astype("Int64")
        rows = rows[rows["contact_id"].notna() | rows["account_id"].notna()]
        _load_entity(project, ws, target, run_id, phase, entity, rows, result)


def _related_fields(project: Project, source: str, kind: str) -> dict[str, str]:
    spec = project.source(source).options.related
    for name, rel in spec.items():
        if (getattr(rel, "kind", None) or name) == kind:
            return dict(getattr(rel, "fields", {}) or {})
    return {}
