"""The quarantine: list, export for a steward to fix in a spreadsheet, and requeue the fixes.

A requeued row is stored as a *correction* of its source row, keyed by the source and the
row reference and guarded by a fingerprint of the original row: every later run applies
it again while the source still holds that same bad row, so a fix is never lost to the
next extract, and never applied to a row that has since changed.
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from connectors.base import SOURCE_REF, Chunk
from migrate.errors import InputError, MigrateError
from migrate.workspace import Workspace, corrections, now, quarantine, read_table

#: Columns a quarantine export starts with; the source row's own columns follow.
EXPORT_COLUMNS = ["quarantine_id", "source", "source_ref", "reason", "column", "value", "detail"]


class UnknownQuarantineRow(MigrateError):
    """No quarantine row with that id."""

    exit_code = 2


def fingerprint(text: str | None) -> str:
    """A short hash identifying an original bad row (its raw JSON, or the raw line)."""
    return hashlib.sha1((text or "").encode("utf-8")).hexdigest()


def raw_json(frame: pd.DataFrame) -> list[str]:
    """Each raw source row as JSON text, the form the quarantine stores and corrections compare."""
    data = frame.drop(columns=[SOURCE_REF], errors="ignore")
    data = data.astype("object").where(data.notna(), None)
    return [json.dumps(r, ensure_ascii=False, default=str) for r in data.to_dict("records")]


def list_rows(ws: Workspace, source: str | None = None, reason: str | None = None,
              status: str = "open") -> pd.DataFrame:
    """Quarantine rows, newest first, filtered by source, reason and status."""
    where = [quarantine.c.status == status]
    if source:
        where.append(quarantine.c.source == source)
    if reason:
        where.append(quarantine.c.reason == reason)
    rows = read_table(ws, quarantine, where=sa.and_(*where))
    return rows.sort_values("id", ascending=False).reset_index(drop=True)


def get_row(ws: Workspace, quarantine_id: int) -> dict:
    """One quarantine row with its raw source row decoded."""
    rows = read_table(ws, quarantine, where=quarantine.c.id == quarantine_id)
    if rows.empty:
        raise UnknownQuarantineRow(f"no quarantine row {quarantine_id} (see `crm-migrate quarantine list`)")
    row = rows.iloc[0].to_dict()
    row["raw"] = json.loads(row["raw"]) if row.get("raw") else None
    return row


def export_csv(ws: Workspace, path: Path, source: str | None = None, reason: str | None = None) -> int:
    """Write open quarantine rows to a CSV a steward can fix in a spreadsheet; returns the row count.

    The source row's own columns follow the quarantine columns; a steward edits those and
    hands the file to :func:`requeue`.
    """
    rows = list_rows(ws, source, reason)
    raw = [json.loads(r) if r else {} for r in rows["raw"]]
    raw_cols = list(dict.fromkeys(c for r in raw for c in r))
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(EXPORT_COLUMNS + raw_cols)
        for rec, values in zip(rows.to_dict("records"), raw):
            writer.writerow([rec["id"] if c == "quarantine_id" else rec.get(c) for c in EXPORT_COLUMNS]
                            + [values.get(c) for c in raw_cols])
    return len(rows)


@dataclass
class RequeueResult:
    """What a requeue stored, and each row it could not use with the reason."""

    stored: int = 0
    problems: list[str] = field(default_factory=list)


def requeue(ws: Workspace, path: Path, who: str | None = None) -> RequeueResult:
    """Store corrected rows from an exported CSV as corrections; bad rows are reported, the rest applied.

    The next run (``crm-migrate quarantine requeue`` starts one) puts them back through the pipeline.
    """
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV export ({exc})") from None
    missing = [c for c in ("quarantine_id", "source") if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; export it with `quarantine export`")
    raw_cols = [c for c in frame.columns if c not in EXPORT_COLUMNS]
    result = RequeueResult()
    open_rows = read_table(ws, quarantine, where=quarantine.c.status == "open").set_index("id")
    stored = []
    for line, rec in enumerate(frame.to_dict("records"), start=2):
        try:
            qid = int(rec["quarantine_id"])
        except ValueError:
            result.problems.append(f"{path}:{line}: quarantine_id {rec['quarantine_id']!r} is not a number")
            continue
        if qid not in open_rows.index:
            result.problems.append(f"{path}:{line}: quarantine row {qid} is not open (already fixed or unknown)")
            continue
        q = open_rows.loc[qid]
        if q["dataset"] != "records":
            result.problems.append(f"{path}:{line}: row {qid} is a related record ({q['dataset']}); fix its parent")
            continue
        original = q["raw"] if q["raw"] else q["value"]
        fixed = {c: (rec[c] if rec[c] != "" else None) for c in raw_cols}
        if q["raw"]:
            fixed = {c: fixed.get(c) for c in json.loads(q["raw"])}  # keep the source's own columns only
        if not any(v is not None for v in fixed.values()):
            result.problems.append(f"{path}:{line}: row {qid} has no source column values to requeue")
            continue
        stored.append({"source": q["source"], "source_ref": q["source_ref"], "original": fingerprint(original),
                       "raw": json.dumps(fixed, ensure_ascii=False), "quarantine_id": qid,
                       "who": who or getpass.getuser(), "at": now()})
    with ws.begin() as conn:
        ws.upsert(conn, corrections, stored)
        # Kept as history; the next run stages the corrected row or quarantines it afresh.
        conn.execute(sa.update(quarantine).where(quarantine.c.id.in_([r["quarantine_id"] for r in stored]))
                     .values(status="requeued"))
    result.stored = len(stored)
    return result


def load_corrections(ws: Workspace, source: str) -> dict[str, tuple[str, dict]]:
    """source_ref -> (fingerprint of the original row, corrected raw values) for one source."""
    rows = read_table(ws, corrections, where=corrections.c.source == source)
    return {r.source_ref: (r.original, json.loads(r.raw)) for r in rows.itertuples(index=False)}


def apply_corrections(chunk: Chunk, fixes: dict[str, tuple[str, dict]]) -> Chunk:
    """Replace bad rows of a chunk by their stewards' corrections, while the original is unchanged."""
    if not fixes:
        return chunk
    rows, rejects = chunk.rows, chunk.rejects
    hit = rows[SOURCE_REF].isin(fixes)
    if hit.any():
        current = dict(zip(rows.loc[hit, SOURCE_REF], raw_json(rows[hit])))
        for idx, ref in rows.loc[hit, SOURCE_REF].items():
            original, fixed = fixes[ref]
            if fingerprint(current[ref]) == original:
                for col, value in fixed.items():
                    if col in rows.columns:
                        rows.at[idx, col] = value
    if len(rejects):
        usable = pd.Series([r in fixes and fingerprint(v) == fixes[r][0]
                            for r, v in zip(rejects["source_ref"], rejects["value"])], index=rejects.index)
        if usable.any():
            added = pd.DataFrame([{**fixes[r][1], SOURCE_REF: r} for r in rejects.loc[usable, "source_ref"]])
            added = added.reindex(columns=rows.columns)
            rows = pd.concat([rows, added], ignore_index=True)
            rejects = rejects[~usable]
    return Chunk(rows, rejects)
