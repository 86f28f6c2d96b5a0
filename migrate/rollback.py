"""`crm-migrate rollback --phase`: delete exactly what a phase created and restore what it updated."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import sqlalchemy as sa

from connectors.targets import open_target
from migrate.ledger import CREATED, PhaseLedger
from migrate.loader import check_phase
from migrate.project import Project
from migrate.workspace import Workspace, id_map, load_before, load_ledger, now

log = logging.getLogger("crm_migrate")


@dataclass
class RollbackResult:
    """What a rollback did, per entity."""

    phase: str
    deleted: dict[str, int] = field(default_factory=dict)
    restored: dict[str, int] = field(default_factory=dict)


def rollback_phase(project: Project, ws: Workspace, run_id: str, phase: str) -> RollbackResult:
    """Undo one phase in the target, from the ledger, and forget it in the workspace.

    Deleted: rows the phase created (``id_map`` action ``created``, plus the ``new_keys`` of
    batches whose commit a crash cut off). Restored: every row the phase changed, from its
    before-image in ``load_before``. Restores run parents first and deletes children first,
    so foreign keys hold at every step. Safe to rerun after a crash: deleting and restoring
    twice gives the same target.
    """
    check_phase(project, phase)
    target = open_target(project.config.target, project.dir)
    target.preflight()
    ledger = PhaseLedger(ws, run_id, phase)
    # First: a rollback cut short must never leave the phase looking fully loaded.
    ledger.mark_loaded(None)
    mapped = ws.frame(sa.select(id_map.c.entity, id_map.c.key, id_map.c.phase, id_map.c.action))
    images = ws.frame(sa.select(load_before.c.entity, load_before.c.key, load_before.c.image)
                      .where(load_before.c.phase == phase))
    result = RollbackResult(phase)
    entities = target.entities()
    for entity in entities:
        mine = images[images["entity"] == entity]
        restored = target.restore(entity, {k: json.loads(v) for k, v in zip(mine["key"], mine["image"])})
        result.restored[entity] = restored
    for entity in reversed(entities):
        rows = mapped[mapped["entity"] == entity]
        created = set(rows.loc[(rows["phase"] == phase) & (rows["action"] == CREATED), "key"])
        # Keys a crashed batch meant to create, unless another phase has since loaded them.
        created |= ledger.crashed_new_keys(entity) - set(rows.loc[rows["phase"] != phase, "key"])
        result.deleted[entity] = target.delete(entity, sorted(created))
    with ws.begin() as conn:
        conn.execute(sa.delete(id_map).where(id_map.c.phase == phase))
        conn.execute(sa.delete(load_before).where(load_before.c.phase == phase))
        conn.execute(sa.update(load_ledger).where(load_ledger.c.phase == phase,
                                                  load_ledger.c.status != "rolled_back")
                     .values(status="rolled_back", finished_at=now()))
    log.info("rollback %s: %s rows deleted, %s restored", phase, f"{sum(result.deleted.values()):,}",
             f"{sum(result.restored.values()):,}")
    return result
