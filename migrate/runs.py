"""Runs and stage artefacts: every stage records its status, so a crashed run is visible and resumable."""

from __future__ import annotations

import json
import logging
import secrets as _random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from migrate.workspace import Workspace, now, runs, stages

log = logging.getLogger("crm_migrate")


def new_run_id() -> str:
    """A sortable run id: UTC time to the millisecond plus a random suffix (``20261125T101500123Z-3fa2``).

    Runs of one project never overlap (they hold its lock), so ids sort in the order the runs started.
    """
    at = datetime.now(timezone.utc)
    return at.strftime("%Y%m%dT%H%M%S") + f"{at.microsecond // 1000:03d}Z-" + _random.token_hex(2)


def start_run(ws: Workspace, command: str, config_hash: str, log_dir: Path) -> tuple[str, Path]:
    """Record a new run as running; returns its id and its log file (``log_dir/<run_id>.log``)."""
    run_id = new_run_id()
    log_path = log_dir / f"{run_id}.log"
    with ws.begin() as conn:
        conn.execute(sa.insert(runs).values(run_id=run_id, command=command, status="running", started_at=now(),
                                            config_hash=config_hash, log_path=str(log_path)))
    return run_id, log_path


def finish_run(ws: Workspace, run_id: str, status: str, error: str | None = None) -> None:
    """Mark a run as finished (``ok`` or ``failed``)."""
    with ws.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(
            status=status, finished_at=now(), error=error))


class StageRecord:
    """Counts a stage reports about itself (rows in and out, free-form detail)."""

    def __init__(self) -> None:
        self.rows_in = 0
        self.rows_out = 0
        self.detail: dict[str, Any] = {}


@contextmanager
def stage(ws: Workspace, run_id: str, name: str) -> Iterator[StageRecord]:
    """Record a stage as running, then done or failed, with its counts."""
    record = StageRecord()
    with ws.begin() as conn:
        conn.execute(sa.delete(stages).where(stages.c.run_id == run_id, stages.c.stage == name))
        position = conn.execute(sa.select(sa.func.count()).where(stages.c.run_id == run_id)).scalar_one()
        conn.execute(sa.insert(stages).values(run_id=run_id, stage=name, position=position + 1, status="running",
                                              started_at=now()))
    log.debug("stage %s started", name)
    status = "failed"
    try:
        yield record
        status = "done"
    finally:
        with ws.begin() as conn:
            conn.execute(sa.update(stages).where(stages.c.run_id == run_id, stages.c.stage == name).values(
                status=status, finished_at=now(), rows_in=record.rows_in, rows_out=record.rows_out,
                detail=json.dumps(record.detail, default=str)))
        log.debug("stage %s %s", name, status)
