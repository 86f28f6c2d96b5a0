"""Change tracking: what a nightly sync needs to know to do only the work that changed.

Three kinds of memory, all kept in the workspace:

* **cursors** — per source with a ``cursor`` column, the highest value read so far, typed
  (``{"type": "datetime", "value": "2026-11-24T22:00:00"}``), so the next incremental read
  asks the database only for rows at or after it;
* **recipes** — per source, a fingerprint of what turns its raw rows into staged records
  (options, mapping, standardisation rules, crm-migrate's version): while it holds, a row
  whose raw values are unchanged is not standardised again;
* **golden inputs** — a digest of everything golden records are made from (staged records,
  related records, steward decisions, rules) taken when the golden stage last ran: when a
  sync finds the same digest, matching and survivorship are skipped, and the loader's
  ledger recognises the phases as already loaded.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from migrate.errors import ConfigError
from migrate.workspace import Workspace, cursors, decisions, read_table, records, related

GOLDEN_INPUTS = "golden_inputs"


@dataclass(frozen=True)
class Cursor:
    """The highest cursor value a source has delivered, with its Python type restored."""

    value: Any
    run_id: str | None = None


def encode_cursor(value: Any) -> str:
    """A cursor value as typed JSON text (datetimes stay datetimes when read back)."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dt.datetime):
        return json.dumps({"type": "datetime", "value": value.isoformat()})
    if isinstance(value, dt.date):
        return json.dumps({"type": "date", "value": value.isoformat()})
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        return json.dumps({"type": "str", "value": str(value)})
    kind = "int" if isinstance(value, int) else "decimal" if isinstance(value, decimal.Decimal) else "float"
    return json.dumps({"type": kind, "value": str(value)})


def decode_cursor(text: str) -> Any:
    """The value :func:`encode_cursor` wrote."""
    found = json.loads(text)
    parse = {"datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat, "int": int,
             "decimal": decimal.Decimal, "float": float, "str": str}
    return parse[found["type"]](found["value"])


def read_cursor(ws: Workspace, source: Any) -> Cursor | None:
    """Where an incremental read of ``source`` starts, or None (read it all).

    None when the source has no ``cursor`` column, its connector cannot filter on one, or
    no extract has recorded a value yet.
    """
    if not getattr(source.options, "cursor", None) or not source.reads_changes:
        return None
    row = ws.frame(sa.select(cursors.c.value, cursors.c.run_id).where(cursors.c.source == source.name))
    if row.empty or row["value"].iloc[0] is None:
        return None
    return Cursor(decode_cursor(row["value"].iloc[0]), row["run_id"].iloc[0])


class CursorMax:
    """The running maximum of a source's cursor column over the chunks of one extract."""

    def __init__(self, source: Any):
        self.source = source.name
        self.column: str | None = getattr(source.options, "cursor", None)
        self.value: Any = None

    def update(self, rows: pd.DataFrame) -> None:
        """Take a chunk's raw rows into account."""
        if self.column is None:
            return
        if self.column not in rows.columns:
            raise ConfigError(f"sources.{self.source}.cursor: {self.column!r} is not a column of the source "
                              f"(columns: {', '.join(c for c in rows.columns if not c.startswith('_'))})")
        values = rows[self.column].dropna()
        if len(values):
            top = values.max()
            self.value = top if self.value is None or top > self.value else self.value

    def store(self, ws: Workspace, conn: sa.Connection, source: str, run_id: str, since: Cursor | None) -> None:
        """Record the maximum (kept as it was when this extract read no rows)."""
        if self.value is None:
            return
        if since is not None and not self.value > since.value:
            return
        ws.upsert(conn, cursors, [{"source": source, "value": encode_cursor(self.value), "run_id": run_id}])


def extract_recipe(project: Any, name: str) -> str:
    """A fingerprint of everything that turns source ``name``'s raw rows into staged records."""
    parts = {
        "source": project.config.sources[name],
        "mapping": project.mappings[name].model_dump(mode="json"),
        "standardise": project.config.rules.standardise.model_dump(mode="json"),
        "version": importlib_metadata.version("crm-migrate"),
    }
    text = project.secrets.redact(json.dumps(parts, sort_keys=True, default=str))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def golden_inputs(project: Any, ws: Workspace) -> str:
    """A digest of what golden records are made of: staged and related rows, decisions, rules.

    Order-independent (a sum of row hashes), read from the workspace as it is now, so it
    is right after a crash as well as after a clean run.
    """
    parts = [_table_digest(read_table(ws, records, ["record_key", "row_hash"])),
             _table_digest(read_table(ws, related, ["related_key", "parent_record_key", "row_hash"])),
             _table_digest(read_table(ws, decisions, ["id", "revoked_at"]).astype(str)),
             project.config_hash()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def golden_current(project: Any, ws: Workspace) -> bool:
    """True when the golden records were made from exactly what the workspace holds now."""
    return ws.meta(GOLDEN_INPUTS) == golden_inputs(project, ws)


def mark_golden_inputs(project: Any, ws: Workspace) -> None:
    """Remember what the golden stage just consumed."""
    digest = golden_inputs(project, ws)
    with ws.begin() as conn:
        ws.set_meta(conn, GOLDEN_INPUTS, digest)


def _table_digest(frame: pd.DataFrame) -> str:
    hashes = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy(dtype=np.uint64)
    return f"{len(frame)}:{int(hashes.sum(dtype=np.uint64)):016x}"
