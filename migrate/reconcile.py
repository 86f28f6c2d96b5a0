"""Reconciliation: proof that every source row is loaded, merged into a golden record, or quarantined."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa

from connectors.targets import open_target
from migrate.golden import golden_report
from migrate.loader import phased_golden
from migrate.project import Project
from migrate.report import chart_data
from migrate.workspace import Workspace, id_map, quarantine, records, related, source_counts, xref

BUCKETS = ("in", "loaded", "merged", "quarantined", "pending")


def reconcile(project: Project, ws: Workspace, read_back: bool = True) -> dict[str, Any]:
    """Account for every source row; returns the report as a JSON-ready dict.

    Per source and in total: ``in`` (rows read), ``loaded`` (the record leading a golden
    record that is in the CRM), ``merged`` (records folded into such a golden record),
    ``quarantined`` (with a reason), ``pending`` (staged but not loaded yet: a later phase)
    and ``holds`` (``in == loaded + merged + quarantined``). Related record sets are
    reconciled the same way. With ``read_back``, the target's row counts are compared
    with what the ledger says was loaded.
    """
    counts = ws.frame(sa.select(source_counts))
    held = ws.frame(sa.select(quarantine.c.source, quarantine.c.dataset, sa.func.count().label("n"))
                    .where(quarantine.c.status == "open").group_by(quarantine.c.source, quarantine.c.dataset))
    loaded_golden = sa.select(id_map.c.key).where(id_map.c.entity.in_(["contacts", "accounts"]))
    roles = ws.frame(
        sa.select(records.c.source, xref.c.role, xref.c.golden_id.in_(loaded_golden).label("loaded"),
                  sa.func.count().label("n"))
        .select_from(records.outerjoin(xref, xref.c.record_key == records.c.record_key))
        .group_by(records.c.source, xref.c.role, sa.literal_column("loaded")))
    rel_loaded = ws.frame(
        sa.select(related.c.source, related.c.kind, related.c.related_key.in_(
            sa.select(id_map.c.key)).label("loaded"), sa.func.count().label("n"))
        .group_by(related.c.source, related.c.kind, sa.literal_column("loaded")))

    sources: dict[str, Any] = {}
    for name in project.config.sources:
        row = _bucket(counts, held, name, "records")
        r = roles[roles["source"] == name]
        row["loaded"] = int(r.loc[(r["role"] == "anchor") & r["loaded"].astype(bool), "n"].sum())
        row["merged"] = int(r.loc[(r["role"] == "merged") & r["loaded"].astype(bool), "n"].sum())
        row["pending"] = int(r["n"].sum()) - row["loaded"] - row["merged"]
        sources[name] = _close(row)
        for rel in sorted(set(counts.loc[(counts["source"] == name) & (counts["dataset"] != "records"), "dataset"])):
            rrow = _bucket(counts, held, name, rel)
            rl = rel_loaded[(rel_loaded["source"] == name) & (rel_loaded["kind"] == rel)]
            rrow["loaded"] = int(rl.loc[rl["loaded"].astype(bool), "n"].sum())
            rrow["pending"] = int(rl["n"].sum()) - rrow["loaded"]
            sources[f"{name}.{rel}"] = _close(rrow)
    total = {b: sum(s[b] for k, s in sources.items() if "." not in k) for b in BUCKETS}
    report: dict[str, Any] = {"sources": sources, "total": _close(total), "phases": _phases(project, ws)}
    reasons = ws.frame(sa.select(quarantine.c.source, quarantine.c.reason, sa.func.count().label("n"))
                       .where(quarantine.c.status == "open").group_by(quarantine.c.source, quarantine.c.reason))
    report["quarantine_reasons"] = {
        s: dict(zip(g["reason"], g["n"].astype(int))) for s, g in reasons.groupby("source")}
    requeued = ws.frame(sa.select(quarantine.c.source, sa.func.count().label("n"))
                        .where(quarantine.c.status == "requeued").group_by(quarantine.c.source))
    # Rows a steward fixed and put back: now counted in loaded/merged (or quarantined again).
    report["requeued"] = dict(zip(requeued["source"], requeued["n"].astype(int)))
    report["charts"] = chart_data(project, ws)
    report["golden"] = golden_report(ws)
    if read_back:
        report["read_back"] = _read_back(project, ws)
    report["holds"] = report["total"]["holds"] and all(s["holds"] for s in sources.values()) and all(
        c["holds"] for c in report.get("read_back", {}).values())
    return report


def _bucket(counts: pd.DataFrame, held: pd.DataFrame, source: str, dataset: str) -> dict[str, int]:
    c = counts[(counts["source"] == source) & (counts["dataset"] == dataset)]
    q = held[(held["source"] == source) & (held["dataset"] == dataset)]
    return {"in": int(c["rows_in"].sum()), "loaded": 0, "merged": 0, "quarantined": int(q["n"].sum()), "pending": 0}


def _close(row: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = dict(row)
    out["holds"] = row["in"] == row["loaded"] + row["merged"] + row["quarantined"] and row["pending"] == 0
    return out


def _phases(project: Project, ws: Workspace) -> dict[str, Any]:
    frame = phased_golden(project, ws)
    if frame.empty:
        return {p.name: {"golden": 0, "loaded": 0, "pending": 0, "records": 0, "holds": True}
                for p in project.config.phases}
    loaded = ws.frame(sa.select(id_map.c.key).where(id_map.c.entity.in_(["contacts", "accounts"])))
    frame["loaded"] = frame["golden_id"].isin(set(loaded["key"]))
    # Source records per phase: each is loaded (leads a loaded golden record), merged into one, or pending.
    members = ws.frame(sa.select(xref.c.golden_id, xref.c.role, records.c.source, sa.func.count().label("n"))
                       .select_from(xref.join(records, records.c.record_key == xref.c.record_key))
                       .group_by(xref.c.golden_id, xref.c.role, records.c.source))
    members = members.merge(frame[["golden_id", "phase", "loaded"]], on="golden_id")
    out = {}
    for p in project.config.phases:
        mine = frame[frame["phase"] == p.name]
        n, done = len(mine), int(mine["loaded"].sum())
        sources = {}
        for source, m in members[members["phase"] == p.name].groupby("source"):
            row = {"loaded": int(m.loc[m["loaded"] & (m["role"] == "anchor"), "n"].sum()),
                   "merged": int(m.loc[m["loaded"] & (m["role"] == "merged"), "n"].sum()),
                   "pending": int(m.loc[~m["loaded"], "n"].sum())}
            sources[str(source)] = {**row, "holds": row["pending"] == 0}
        out[p.name] = {"golden": n, "loaded": done, "pending": n - done, "records": int(mine["member_count"].sum()),
                       "sources": sources, "holds": n == done}
    return out


def _read_back(project: Project, ws: Workspace) -> dict[str, Any]:
    """Read the target back and compare it with what the ledger says was sent, per entity.

    ``expected`` rows are in ``id_map``; ``found`` of them are in the target; ``mismatched``
    hold values whose checksum differs from the one sent (changed or truncated in the
    target since), listed by key under ``examples``. Phases are counted separately.
    """
    target = open_target(project.config.target, project.dir, create=False)
    sent = ws.frame(sa.select(id_map.c.entity, id_map.c.key, id_map.c.phase, id_map.c.checksum))
    out = {}
    for entity in target.entities():
        mine = sent[sent["entity"] == entity]
        if mine.empty and entity not in ("accounts", "contacts"):
            continue
        back = target.read_back(entity).set_index("external_id")["checksum"]
        found = mine["key"].isin(back.index)
        differs = found & (mine["key"].map(back) != mine["checksum"])
        phases = {str(ph): {"expected": int(len(g)), "found": int(found[g.index].sum()),
                            "mismatched": int(differs[g.index].sum())} for ph, g in mine.groupby("phase")}
        out[entity] = {"expected": int(len(mine)), "found": int(found.sum()), "mismatched": int(differs.sum()),
                       "examples": sorted(mine.loc[differs | ~found, "key"])[:10], "phases": phases,
                       "holds": bool(found.all() and not differs.any())}
    return out
