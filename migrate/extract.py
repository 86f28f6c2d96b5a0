"""The extract stage: read each source in chunks, map, standardise, validate, stage or quarantine."""

from __future__ import annotations

import logging
from collections.abc import Iterator
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
from migrate.changes import CursorMax, extract_recipe, read_cursor
from migrate.workspace import Workspace, encode_frame, quarantine, records, related, source_counts
from rules.standardise import standardise
from rules.validate import validate

log = logging.getLogger("crm_migrate")

#: Dataset name of a source's own rows in source_counts and quarantine.
RECORDS = "records"
_RECOMPUTED_STAGES = ("extract", "map", "standardise", "validate", "link")
#: Keys per IN list (SQLite allows 32,766 bound values per statement).
_SLICE = 10_000


def extract_source(project: Project, ws: Workspace, run_id: str, name: str, incremental: bool = False
                   ) -> dict[str, int]:
    """Stream one source into the workspace; returns counts per dataset.

    Every input row ends staged in ``records`` or in ``quarantine`` with a reason; the
    rows read are counted independently (``source_counts``) so reconciliation can prove it.
    A row staged earlier from the same raw values by the same recipe (mapping, options,
    standardisation rules) is not standardised again. With ``incremental`` a source with a
    ``cursor`` column reads only the rows changed since its last extract (see
    :mod:`migrate.changes`); rows it does not read stay as staged.
    """
    source = project.source(name)
    mapping = project.mappings[name]
    region = source.options.default_region
    since = read_cursor(ws, source) if incremental else None
    recipe = extract_recipe(project, name)
    reuse = ws.meta(f"recipe:{name}") == recipe
    recomputed = [quarantine.c.source == name, quarantine.c.status == "open", quarantine.c.stage.in_(_RECOMPUTED_STAGES)]
    if since is not None:  # related sets are read in full; the source's own rows only where they changed
        recomputed.append(quarantine.c.dataset != RECORDS)
    with ws.begin() as conn:
        conn.execute(sa.delete(quarantine).where(*recomputed))
        if not reuse:  # until this extract completes, no staged row counts as made by the new recipe
            ws.set_meta(conn, f"recipe:{name}", "")
    seen: set[str] = set()
    total = staged = held = fresh = unchanged = 0
    high = CursorMax(source)
    fixes = load_corrections(ws, name)
    chunks = source.chunks(project.config.chunk_size) if since is None else \
        source.changed_chunks(project.config.chunk_size, since.value)
    with progress(f"extract {name}", source.estimate_rows() if since is None else None) as advance:
        for chunk in chunks:
            total += chunk.count
            high.update(chunk.rows)
            chunk = apply_corrections(chunk, fixes)
            bad = [_rejects(chunk, name, run_id)]
            mapped = apply_mapping(chunk.rows, mapping, name)
            dup = mapped["record_key"].duplicated() | mapped["record_key"].isin(seen)
            seen.update(mapped["record_key"])
            if dup.any():
                bad.append(_quarantine_rows(mapped[dup], chunk.rows, name, run_id, "extract", "duplicate_source_id",
                                            "source_id", mapped.loc[dup, "source_id"], "source id seen earlier"))
            read = mapped.loc[~dup, "record_key"]
            known = staged_hashes(ws, read)
            same = ~dup & mapped["row_hash"].eq(mapped["record_key"].map(known)) & reuse
            if since is not None:
                new = read[~read.isin(known.index)]
                fresh += len(new) - _held_keys(ws, name, new)
            todo = mapped[~dup & ~same]
            std = standardise(todo, default_region=region, options=project.config.rules.standardise)
            checked = validate(std.records, std.flags)
            if len(checked.quarantine):
                q = checked.quarantine.set_index("record_key")
                failed = todo[todo["record_key"].isin(q.index)]
                bad.append(_quarantine_rows(
                    failed, chunk.rows, name, run_id, q.loc[failed["record_key"], "stage"].to_numpy(),
                    q.loc[failed["record_key"], "reason"].to_numpy(), q.loc[failed["record_key"], "column"].to_numpy(),
                    q.loc[failed["record_key"], "value"].to_numpy(), q.loc[failed["record_key"], "detail"].to_numpy()))
            good = checked.records.assign(first_seen_run=run_id, last_seen_run=run_id)
            kept = mapped.loc[same, "record_key"]
            rows = pd.concat([b for b in bad if len(b)], ignore_index=True) if any(len(b) for b in bad) else None
            with ws.begin() as conn:
                if since is not None:  # an incremental read replaces what these rows had in quarantine
                    for keys in _in_slices(read):
                        conn.execute(sa.delete(quarantine).where(_held(name, keys)))
                ws.upsert(conn, records, encode_frame(good, records), keep=("first_seen_run",))
                for keys in _in_slices(kept):
                    conn.execute(sa.update(records).where(records.c.record_key.in_(keys)).values(last_seen_run=run_id))
                if since is not None:  # a changed row that is quarantined now leaves the staged set
                    for keys in _in_slices(read):
                        conn.execute(sa.delete(records).where(records.c.record_key.in_(keys),
                                                              records.c.last_seen_run != run_id))
                if rows is not None:
                    conn.execute(sa.insert(quarantine), rows.to_dict("records"))
            held += 0 if rows is None else len(rows)
            staged += len(good) + len(kept)
            unchanged += len(kept)
            advance(chunk.count)
    with ws.begin() as conn:
        if since is None:  # records no longer in the source (or now quarantined) leave the staged set
            conn.execute(sa.delete(records).where(records.c.source == name, records.c.last_seen_run != run_id))
        rows_in = total if since is None else _previous_rows_in(conn, name) + fresh
        ws.upsert(conn, source_counts, [{"source": name, "dataset": RECORDS, "run_id": run_id, "rows_in": rows_in}])
        high.store(ws, conn, name, run_id, since)
        ws.set_meta(conn, f"recipe:{name}", recipe)
    counts = {RECORDS: total}
    log.info("%s: %s rows read, %s staged (%s unchanged), %s quarantined%s", name, f"{total:,}", f"{staged:,}",
             f"{unchanged:,}", f"{held:,}", "" if since is None else f" (changed since {since.value})")
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


def _in_slices(keys: pd.Series) -> Iterator[list[str]]:
    """Keys in lists short enough for one IN clause."""
    values = keys.tolist()
    for start in range(0, len(values), _SLICE):
        yield values[start:start + _SLICE]


def staged_hashes(ws: Workspace, keys: pd.Series) -> pd.Series:
    """record_key -> row_hash of the staged records among ``keys``."""
    parts = [ws.frame(sa.select(records.c.record_key, records.c.row_hash).where(records.c.record_key.in_(part)))
             for part in _in_slices(keys)]
    found = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["record_key", "row_hash"])
    return found.set_index("record_key")["row_hash"]


def _held(source: str, keys: list[str]) -> sa.ColumnElement[bool]:
    return sa.and_(quarantine.c.source == source, quarantine.c.status == "open",
                   quarantine.c.stage.in_(_RECOMPUTED_STAGES), quarantine.c.record_key.in_(keys))


def _held_keys(ws: Workspace, source: str, keys: pd.Series) -> int:
    """How many of ``keys`` are already in quarantine (so an incremental read does not count them twice)."""
    return sum(int(ws.scalar(sa.select(sa.func.count(sa.distinct(quarantine.c.record_key))).where(_held(source, part))))
               for part in _in_slices(keys))


def _previous_rows_in(conn: sa.Connection, source: str) -> int:
    return int(conn.execute(sa.select(source_counts.c.rows_in).where(
        source_counts.c.source == source, source_counts.c.dataset == RECORDS)).scalar() or 0)


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
