"""The target contract (the new CRM), shared by SQL databases and file exports.

A target writes one batch of rows per call, keyed by ``external_id`` (a golden id or a
related record's key), and answers per row like Bulk API 2.0: ``success`` with the target
id and whether the row was created, ``failed`` with the reason, or ``unprocessed``.

Before a batch changes anything, the target tells the loader what it is about to do
(:class:`BatchPlan`: which keys it creates, which rows it updates and their values before
the update). The loader makes that durable in the workspace ledger first, so a crash at
any later moment still knows what rollback must delete and restore.

Example:
    >>> from pathlib import Path
    >>> from migrate.config import TargetConfig
    >>> open_target(TargetConfig(url="sqlite://"), Path(".")).describe()
    'sqlite://'
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from migrate.config import TargetConfig

#: Entities in load order: parents before the records that point at them.
ENTITIES = ("accounts", "contacts", "addresses", "orders", "invoices", "activities")

#: Columns of a per-row result frame (Bulk API 2.0 style).
RESULT_COLUMNS = ("external_id", "status", "target_id", "created", "reason")

#: Canonical text of a missing value in checksums (never a real value).
_NULL = "\x00"


@dataclass
class BatchPlan:
    """What a batch is about to do, known before the target is changed.

    ``images`` holds, for every existing row the batch changes, its values before the
    change (target column -> value), so rollback can restore it.
    """

    new: list[str]
    changed: list[str]
    unchanged: list[str]
    images: dict[str, dict[str, Any]] = field(default_factory=dict)


RecordPlan = Callable[[BatchPlan], None]


def results_frame(rows: list[tuple[Any, ...]] | None = None) -> pd.DataFrame:
    """A per-row result frame from (external_id, status, target_id, created, reason) tuples."""
    return pd.DataFrame(rows or [], columns=list(RESULT_COLUMNS)).astype({"created": bool})


def canonical(values: pd.Series, kind: str, scale: int | None = None) -> np.ndarray:
    """Values as the text a checksum is computed over, the same whether sent or read back.

    ``kind`` is the target column's kind (``bool``, ``int``, ``decimal``, ``date``,
    ``text``), so ``True``/``1`` or ``120.5``/``Decimal('120.50')`` give one text.

    Example:
        >>> canonical(pd.Series([120.5, 7]), "decimal", 2).tolist()
        ['120.50', '7.00']
    """
    s = values if values.dtype == object else values.astype(object)
    na = pd.isna(s).to_numpy()
    if kind == "bool":
        out = s.map(lambda v: "1" if v else "0", na_action="ignore")
    elif kind == "int":
        out = s.map(lambda v: str(int(v)), na_action="ignore")
    elif kind == "decimal":
        step = Decimal(1).scaleb(-(scale or 0))
        out = s.map(lambda v: str(Decimal(str(v)).quantize(step, ROUND_HALF_UP)), na_action="ignore")
    elif kind == "date":
        out = s.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v), na_action="ignore")
    elif pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        out = s  # already text: skip a million str() calls
    else:
        out = s.astype(str)
    return np.where(na, _NULL, out.to_numpy(dtype=object))


def row_checksums(columns: dict[str, np.ndarray], index: pd.Index) -> pd.Series:
    """One 16-hex-digit checksum per row of canonical text columns (column order matters)."""
    frame = pd.DataFrame(columns, copy=False)
    hashed = pd.util.hash_pandas_object(frame, index=False, categorize=False).to_numpy(dtype=np.uint64)
    text = hashed.astype(">u8").tobytes().hex()  # one C call instead of one format() per row
    return pd.Series([text[i:i + 16] for i in range(0, len(text), 16)], index=index, dtype=object)


class Target(abc.ABC):
    """Where golden and related records go: a database or an export folder."""

    #: Whether the target assigns ids the loader can point related records at.
    assigns_ids = True

    @abc.abstractmethod
    def describe(self) -> str:
        """The target for messages (no secrets)."""

    @abc.abstractmethod
    def entities(self) -> tuple[str, ...]:
        """Entities this target takes, in load order."""

    @abc.abstractmethod
    def preflight(self) -> None:
        """Fail with one clear line when the target cannot take a load, before anything is written."""

    @abc.abstractmethod
    def checksums(self, entity: str, rows: pd.DataFrame) -> pd.Series:
        """Checksum per row of the values this target stores for ``rows`` (index kept)."""

    @abc.abstractmethod
    def write(self, entity: str, rows: pd.DataFrame, sums: pd.Series, record: RecordPlan,
              known: set[str]) -> pd.DataFrame:
        """Create or update ``rows`` (reference column names, ``external_id`` first) in one transaction.

        Calls ``record`` with the :class:`BatchPlan` before the batch becomes visible, and
        returns one result per row (:data:`RESULT_COLUMNS`). ``known`` are keys the ledger
        says were loaded before (used by targets that cannot look).
        """

    @abc.abstractmethod
    def existing(self, entity: str, keys: list[str]) -> pd.DataFrame:
        """``external_id, target_id, checksum`` of the rows among ``keys`` the target holds."""

    @abc.abstractmethod
    def read_back(self, entity: str) -> pd.DataFrame:
        """``external_id, target_id, checksum`` of every row of an entity, for reconciliation."""

    @abc.abstractmethod
    def delete(self, entity: str, keys: list[str]) -> int:
        """Delete rows by key; returns how many went."""

    @abc.abstractmethod
    def restore(self, entity: str, images: dict[str, dict[str, Any]]) -> int:
        """Put rows back to their before-images; returns how many were restored."""


def open_target(config: TargetConfig, base_dir: Path, create: bool = True) -> Target:
    """The target a project's ``target:`` section describes (``create=False``: leave a missing schema alone)."""
    if config.kind == "sql":
        from connectors.target_sql import SqlTarget

        return SqlTarget(config.url, base_dir, mapping=config.mapping, create=create)
    from connectors.target_files import FileTarget

    return FileTarget(config.kind, base_dir / str(config.path), config.external_id_field)
