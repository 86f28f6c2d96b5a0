"""What the workspace holds and how recent runs went (`crm-migrate status`)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from migrate.project import Project
from migrate.workspace import golden, id_map, quarantine, records, related, runs, stages


def workspace_status(project: Project, last: int = 10) -> dict[str, Any]:
    """Recent runs with their stages, and row counts per workspace table."""
    ws = project.workspace()
    recent = ws.frame(sa.select(runs).order_by(runs.c.run_id.desc()).limit(last))
    stage_rows = ws.frame(sa.select(stages).where(stages.c.run_id.in_(recent["run_id"].tolist())))
    out_runs = []
    for r in recent.to_dict("records"):
        mine = stage_rows[stage_rows["run_id"] == r["run_id"]].sort_values("position")
        r["stages"] = [{**s, "detail": json.loads(s["detail"]) if s["detail"] else {}}
                       for s in mine.drop(columns=["run_id"]).to_dict("records")]
        out_runs.append(r)

    def count(table: sa.Table, where: Any = None) -> int:
        q = sa.select(sa.func.count()).select_from(table)
        return int(ws.scalar(q.where(where) if where is not None else q))

    return {
        "project": str(project.dir),
        "runs": out_runs,
        "counts": {
            "staged records": count(records),
            "related records": count(related),
            "quarantined rows": count(quarantine, quarantine.c.status == "open"),
            "golden records": count(golden, golden.c.status == "active"),
            "retired golden records": count(golden, golden.c.status == "retired"),
            "loaded into the CRM": count(id_map),
        },
    }
