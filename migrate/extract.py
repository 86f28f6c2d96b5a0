"""The extract stage: read each source in chunks, map, standardise, validate, stage or quarantine."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import sqlalchemy as sa

from connectors.base import SOURCE_REF, Chunk
from connectors.sql import PARENT_ID
from mappings import apply_mapping
from mappings.apply import id_text, json_rows
from migrate.progress import progress
from migrate.quarantine import apply_corrections, load_corrections, raw_json
from migrate.project import Project
from migrate.workspace import Workspace, encode_frame, quarantine, records, related, source_counts
from rules.standardise import standardise
from rules.validate import validate

log = logging.getLogger("crm_migrate")

#: Dataset name of a source's own rows in source_counts and quarantine.
RECORDS = "records"
_RECOMPUTED_STAGES = ("extract", "map", "standardise", "validate", "link")


def extract_source(project: Project, ws: Workspace, run_id: str, name: str) -> dict[str, int]:
    """Stream one source into the workspace; returns counts per dataset.

    Every input row ends staged in ``records`` or in ``quarantine`` with a reason; the
    rows read are counted independently (``source_counts``) so reconciliation can prove it.
    """
    source = project.source(name)
    mapping = project.mappings[name]
    region = source.options.default_region
    with ws.begin() as conn:
        conn.execute(sa.delete(quarantine).where(
            quarantine.c.source == name, quarantine.c.status == "open", quarantine.c.stage.in_(_RECOMPUTED_STAGES)))
    seen: set[str] = set()
    total = staged = held = 0
    fixes = load_corrections(ws, name)
    with progress(f"extract {name}", source.estimate_rows()) as advance:
        for chunk in source.chunks(project.config.chunk_size):
            total += chunk.count
            chunk = apply_corrections(chunk, fixes)
            bad = [_rejects(chunk, name, run_id)]
            mapped = apply_mapping(chunk.rows, mapping, name)
            dup = mapped["record_key"].duplicated() | mapped["record_key"].isin(seen)
            seen.update(mapped["record_key"])
            if dup.any():
                bad.append(_quarantine_rows(mapped[dup], chunk.rows, name, run_id, "extract", "duplicate_source_id",
                                            "source_id", mapped.loc[dup, "source_id"], "source id seen earlier"))
            std = standardise(mapped[~dup], default_region=region, options=project.config.rules.standardise)
            checked = validate(std.records, std.flags)
            if len(checked.quarantine):
                q = checked.quarantine.set_index("record_key")
                failed = mapped[mapped["record_key"].isin(q.index) & ~dup]
                bad.append(_quarantine_rows(
                    failed, chunk.rows, name, run_id, q.loc[failed["record_key"], "stage"].to_numpy(),
                    q.loc[failed["record_key"], "reason"].to_numpy(), q.loc[failed["record_key"], "column"].to_numpy(),
                    q.loc[failed["record_key"], "value"].to_numpy(), q.loc[failed["record_key"], "detail"].to_numpy()))
            good = checked.records.assign(first_seen_run=run_id, last_seen_run=run_id)
            with ws.begin() as conn:
                ws.upsert(conn, records, encode_frame(good, records), keep=("first_seen_run",))
                rows = pd.concat([b for b in bad if len(b)], ignore_index=True) if any(len(b) for b in bad) else None
                if rows is not None:
                    conn.execute(sa.insert(quarantine), rows.to_dict("records"))
                    held += len(rows)
            staged += len(good)
            advance(chunk.count)
    with ws.begin() as conn:
        # Records no longer in the source (or now quarantined) leave the staged set.
        conn.execute(sa.delete(records).where(records.c.source == name, records.c.last_seen_run != run_id))
        ws.upsert(conn, source_counts, [{"source": name, "dataset": RECORDS, "run_id": run_id, "rows_in": total}])
    counts = {RECORDS: total}
    log.info("%s: %s rows read, %s staged, %s quarantined", name, f"{total:,}", f"{staged:,}", f"{held:,}")
    for rel in source.related_names():
        counts[rel] = _extract_related(project, ws, run_id, source, rel)
    return counts


def _extract_related(project: Project, ws: Workspace, run_id: str, source: Any, rel: str) -> int:
    name = source.name
    total = 0
    seen: set[str] = set()
    with progress(f"extract {name}.{rel}") as advance:
        for chunk in source.related_chunks(rel, project.config.chunk_size):
            total += chunk.count
            rows = chunk.rows
            spec = source.options.related[rel]
            rid = id_text(rows[spec.id_column]) if spec.id_column else rows[SOURCE_REF].str.replace(" ", "")
            frame = pd.DataFrame({
                "related_key": f"{name}:{rel}:" + rid,
                "kind": spec.kind or rel, "source": name, "source_id": rid, "source_ref": rows[SOURCE_REF],
                "parent_record_key": f"{name}:" + id_text(rows[PARENT_ID]),
            })
            data_cols = [c for c in rows.columns if c not in (SOURCE_REF, PARENT_ID)]
            frame["data"] = json_rows(rows[data_cols])
            frame["row_hash"] = pd.util.hash_pandas_object(rows[data_cols].astype(str), index=False).map(
                "{:016x}".format).to_numpy()
            frame["last_seen_run"] = run_id
            dup = frame["related_key"].duplicated() | frame["related_key"].isin(seen)
            seen.update(frame["related_key"])
            with ws.begin() as conn:
                ws.upsert(conn, related, encode_frame(frame[~dup], related))
                bad = [_rejects(chunk, name, run_id, dataset=rel)]
                if dup.any():
                    bad.append(pd.DataFrame({
                        "run_id": run_id, "source": name, "dataset": rel, "source_ref": frame.loc[dup, "source_ref"],
                        "record_key": frame.loc[dup, "related_key"], "stage": "extract",
                        "reason": "duplicate_source_id", "column": spec.id_column, "value": rid[dup],
                        "detail": "related id seen earlier", "raw": None, "status": "open"}))
                rows_q = pd.concat([b for b in bad if len(b)], ignore_index=True) if any(len(b) for b in bad) else None
                if rows_q is not None:
                    conn.execute(sa.insert(quarantine), rows_q.to_dict("records"))
            advance(chunk.count)
    with ws.begin() as conn:
        conn.execute(sa.delete(related).where(related.c.source == name, related.c.kind == (
            source.options.related[rel].kind or rel), related.c.last_seen_run != run_id))
        ws.upsert(conn, source_counts, [{"source": name, "dataset": rel, "run_id": run_id, "rows_in": total}])
    return total


def quarantine_orphans(ws: Workspace, run_id: str) -> int:
    """Related records whose parent is not staged are quarantined, never loaded dangling.

    The reason says why: ``parent_quarantined`` when the parent row is in quarantine,
    ``orphan_related`` when no such parent exists at all.
    """
    parent_held = sa.select(quarantine.c.record_key).where(quarantine.c.status == "open")
    orphan = sa.and_(related.c.parent_record_key.not_in(sa.select(records.c.record_key)))
    with ws.begin() as conn:
        found = conn.execute(sa.select(
            related.c.related_key, related.c.source, related.c.kind, related.c.source_ref,
            related.c.parent_record_key, related.c.parent_record_key.in_(parent_held).label("held"),
            related.c.data).where(orphan)).fetchall()
        if not found:
            return 0
        conn.execute(sa.insert(quarantine), [{
            "run_id": run_id, "source": r.source, "dataset": r.kind, "source_ref": r.source_ref,
            "record_key": r.related_key, "stage": "link",
            "reason": "parent_quarantined" if r.held else "orphan_related", "column": "parent",
            "value": r.parent_record_key, "detail": "the parent record is quarantined" if r.held
            else "no such parent record in the source", "raw": r.data, "status": "open"} for r in found])
        conn.execute(sa.delete(related).where(orphan))
    log.info("%s related records quarantined: parent missing or quarantined", f"{len(found):,}")
    return len(found)


def _rejects(chunk: Chunk, source: str, run_id: str, dataset: str = RECORDS) -> pd.DataFrame:
    if chunk.rejects.empty:
        return chunk.rejects
    r = chunk.rejects
    return pd.DataFrame({
        "run_id": run_id, "source": source, "dataset": dataset, "source_ref": r["source_ref"], "record_key": None,
        "stage": "extract", "reason": r["reason"], "column": None, "value": r["value"], "detail": r["detail"],
        "raw": None, "status": "open"})


def _quarantine_rows(mapped: pd.DataFrame, raw: pd.DataFrame, source: str, run_id: str, stage: Any, reason: Any,
                     column: Any, value: Any, detail: Any) -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": run_id, "source": source, "dataset": RECORDS, "source_ref": mapped["source_ref"].to_numpy(),
        "record_key": mapped["record_key"].to_numpy(), "stage": stage, "reason": reason, "column": column,
        "value": pd.Series(value, dtype=object).astype(str).to_numpy() if value is not None else None,
        "detail": detail, "raw": raw_json(raw.loc[mapped.index]), "status": "open"})
