"""Orchestration: project config, workspace, pipeline stages, golden records, loader, reports.

Public entry points: :class:`Project` (``Project.load(path)``), :func:`run` and :func:`sync`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Project", "run", "sync", "load_phases", "reconcile"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import migrate.errors` from connectors does not pull in the whole pipeline.
    if name == "Project":
        from migrate.project import Project

        return Project
    if name in ("run", "sync", "load_phases"):
        from migrate import pipeline

        return getattr(pipeline, name)
    if name == "reconcile":
        from migrate.reconcile import reconcile

        return reconcile
    raise AttributeError(name)
