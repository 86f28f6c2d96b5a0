"""The pipeline: runs the stages in order, each reading and writing the workspace."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.errors import MigrateError
from migrate.extract import extract_source, quarantine_orphans
from migrate.golden import golden_stage
from migrate.loader import PhaseResult, check_phase, load_phase
from migrate.lock import project_lock
from migrate.logs import close_run_log, open_run_log
from migrate.match_stage import match_stage
from migrate.project import Project
from migrate.reconcile import reconcile
from migrate.report import write_reports
from migrate.rollback import RollbackResult, rollback_phase
from migrate.runs import finish_run, stage, start_run
from migrate.changes import golden_current, mark_golden_inputs
from migrate.workspace import Workspace

log = logging.getLogger("crm_migrate")


@dataclass
class RunResult:
    """What a run did: its id, per-phase load results, the reconciliation and where reports are."""

    run_id: str
    loads: list[PhaseResult] = field(default_factory=list)
    reconciliation: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, Path] = field(default_factory=dict)
    log_path: Path | None = None


def run(project: Project, *, load: bool = True, phases: list[str] | None = None, command: str = "run",
        retrain: bool = False) -> RunResult:
    """Run every stage: extract, link related records, match, golden records, load, reconcile.

    Args:
        project: the loaded project.
        load: load into the target (False stops after golden records, for staged waves).
        phases: phases to load (default: all, in order).
        command: what started the run, for the runs table.
    """
    project.preflight()
    return _with_run(project, command,
                     lambda run_id, result: _run_stages(project, run_id, result, load, phases, retrain))


def sync(project: Project, *, load: bool = True, phases: list[str] | None = None) -> RunResult:
    """Bring the workspace and the new CRM up to date with what changed in the sources.

    Like :func:`run`, at a cost that follows the changes: a source with a ``cursor`` column
    reads only rows changed since its last extract (deletions there are seen by the next
    full ``run``); unchanged rows of other sources are read and hashed but not standardised
    again; when nothing that golden records are made of changed, matching and survivorship
    are skipped and the loader finds its phases already loaded.
    """
    project.preflight()
    return _with_run(project, "sync", lambda run_id, result: _run_stages(
        project, run_id, result, load, phases, retrain=False, incremental=True))


def load_phases(project: Project, phases: list[str]) -> RunResult:
    """Load the named phases from the golden records already in the workspace, then reconcile."""
    def body(run_id: str, result: RunResult) -> None:
        ws = project.workspace()
        for name in phases:
            with stage(ws, run_id, f"load:{name}") as rec:
                result.loads.append(load_phase(project, ws, run_id, name))
                rec.rows_out = sum(result.loads[-1].created.values()) + sum(result.loads[-1].updated.values())
        _reconcile(project, run_id, result)

    for name in phases:  # every name checked before the first phase loads
        check_phase(project, name)
    return _with_run(project, f"load {' '.join(phases)}", body)


def rollback_phases(project: Project, phases: list[str]) -> list[RollbackResult]:
    """Roll the named phases back (in the order given), as one run holding the project's lock."""
    done: list[RollbackResult] = []

    def body(run_id: str, result: RunResult) -> None:
        ws = project.workspace()
        for name in phases:
            with stage(ws, run_id, f"rollback:{name}") as rec:
                done.append(rollback_phase(project, ws, run_id, name))
                rec.rows_out = sum(done[-1].deleted.values()) + sum(done[-1].restored.values())

    for name in phases:
        check_phase(project, name)
    _with_run(project, f"rollback {' '.join(phases)}", body)
    return done


def _with_run(project: Project, command: str, body: Any) -> RunResult:
    ws = project.workspace()
    with project_lock(project.state_dir, f"crm-migrate {command}"):
        run_id, log_path = start_run(ws, command, project.config_hash(), project.state_dir / "logs")
        handler = open_run_log(log_path, project.secrets)
        result = RunResult(run_id, log_path=log_path)
        log.debug("run %s: %s in %s", run_id, command, project.dir)
        try:
            body(run_id, result)
        except MigrateError as exc:
            finish_run(ws, run_id, "failed", project.secrets.redact(str(exc)))
            raise
        except BaseException as exc:
            log.debug("run %s failed", run_id, exc_info=True)
            finish_run(ws, run_id, "failed", project.secrets.redact(f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            close_run_log(handler)
        finish_run(ws, run_id, "ok")
        return result


def _run_stages(project: Project, run_id: str, result: RunResult, load: bool, phases: list[str] | None,
                retrain: bool, incremental: bool = False) -> None:
    ws = project.workspace()
    with stage(ws, run_id, "extract") as rec:
        for name in project.config.sources:
            counts = extract_source(project, ws, run_id, name, incremental=incremental)
            rec.rows_in += counts["records"]
            rec.detail[name] = counts
    with stage(ws, run_id, "link") as rec:
        rec.rows_out = quarantine_orphans(ws, run_id)
    if incremental and golden_current(project, ws):
        log.info("sync: nothing golden records are made of has changed; match and golden stages skipped")
    else:
        _golden_stages(project, ws, run_id, retrain)
    if load:
        for name in phases or [p.name for p in project.config.phases]:
            with stage(ws, run_id, f"load:{name}") as rec:
                result.loads.append(load_phase(project, ws, run_id, name))
                rec.rows_out = sum(result.loads[-1].created.values()) + sum(result.loads[-1].updated.values())
    _reconcile(project, run_id, result)


def _golden_stages(project: Project, ws: Workspace, run_id: str, retrain: bool) -> None:
    with stage(ws, run_id, "match") as rec:
        clustered = match_stage(project, ws, run_id, retrain=retrain)
        rec.rows_in = len(clustered)
        rec.rows_out = int(clustered["cluster_id"].nunique())
    with stage(ws, run_id, "golden") as rec:
        rec.detail = golden_stage(project, ws, run_id)
        rec.rows_out = rec.detail["golden"]
    mark_golden_inputs(project, ws)


def _reconcile(project: Project, run_id: str, result: RunResult) -> None:
    ws = project.workspace()
    with stage(ws, run_id, "reconcile"):
        result.reconciliation = reconcile(project, ws)
        result.reports = write_reports(result.reconciliation, project.state_dir / "reports")
