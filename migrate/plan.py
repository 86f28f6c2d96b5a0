"""`crm-migrate plan`: what each phase would create, update, leave unchanged or skip, without writing."""

from __future__ import annotations

import pandas as pd

from connectors.targets import Target, open_target
from migrate.loader import PhaseResult, check_phase, golden_rows, phased_golden, related_rows
from migrate.project import Project
from migrate.workspace import Workspace, id_map, read_table


def plan_phases(project: Project, ws: Workspace, phases: list[str] | None = None) -> list[PhaseResult]:
    """Per phase and entity, the rows a load would create, update, leave unchanged or skip.

    Nothing is written: not the target (a missing reference schema is not created), not
    the workspace. A related record whose parent is not loaded yet is planned without its
    parent's target id, so it counts as created or updated.
    """
    names = phases or [p.name for p in project.config.phases]
    for name in names:
        check_phase(project, name)
    target = open_target(project.config.target, project.dir, create=False)
    frame = phased_golden(project, ws)
    sent = read_table(ws, id_map, ["entity", "key", "checksum"])
    out = []
    for name in names:
        result = PhaseResult(name)
        mine = frame[frame["phase"] == name]
        for entity, rows in golden_rows(mine).items():
            _plan_entity(target, sent, entity, rows, result)
        for entity, rows in related_rows(project, ws, mine["golden_id"]).items():
            _plan_entity(target, sent, entity, rows, result)
        out.append(result)
    return out


def _plan_entity(target: Target, sent: pd.DataFrame, entity: str, rows: pd.DataFrame, result: PhaseResult) -> None:
    if rows.empty:
        return
    if entity not in target.entities():
        result.add("skipped", entity, len(rows))
        return
    rows = rows.set_index(rows["external_id"].to_numpy())
    sums = target.checksums(entity, rows)
    known = sent[sent["entity"] == entity].set_index("key")["checksum"]
    same = sums == known.reindex(sums.index)
    todo = sums[~same]
    there = target.existing(entity, todo.index.tolist()).set_index("external_id")["checksum"]
    exists = todo.index.isin(there.index)
    identical = exists & (todo == there.reindex(todo.index)).to_numpy()
    result.add("unchanged", entity, same.sum() + identical.sum())
    result.add("updated", entity, (exists & ~identical).sum())
    result.add("created", entity, (~exists).sum())
