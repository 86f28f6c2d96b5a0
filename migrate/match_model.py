"""The trained match model, kept in the workspace as JSON and reused until retrained on request."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from migrate.workspace import Workspace, models, now

MODEL_NAME = "match"


def load_model(ws: Workspace) -> dict[str, Any] | None:
    """The saved model, or None when none was trained yet."""
    text = ws.scalar(sa.select(models.c.model).where(models.c.name == MODEL_NAME))
    return json.loads(text) if text else None


def save_model(ws: Workspace, model: dict[str, Any]) -> None:
    """Save (replace) the model."""
    with ws.begin() as conn:
        ws.upsert(conn, models, [{"name": MODEL_NAME, "model": json.dumps(model, default=float), "trained_at": now()}])


def forget_model(ws: Workspace) -> None:
    """Drop the saved model so the next run trains a new one."""
    with ws.begin() as conn:
        conn.execute(sa.delete(models).where(models.c.name == MODEL_NAME))
