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
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from migrate.config import TargetConfig

#: Entities in load order: parents before the records that point at them.
ENTITIES = ("accounts", "contacts", "addresses", "orders", "invoices", "activities")

#: Columns of a per-row result frame (Bulk API 2.0 style).
RESULT_COLUMNS = ("external_id", "status", "target_id", "created", "reason")

#: Canonical text of a missing value in checksums, and the separator of a row's values
#: (real values holding either are escaped).
_NULL, _SEP = "\x00", "\x1f"


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


def canonical(values: pd.Series, kind: str, scale: int | None = None) -> pa.Array | pa.ChunkedArray:
    """Values as the text a checksum is computed over, the same whether sent or read back (null stays null).

    ``kind`` is the target column's kind (``bool``, ``int``, ``decimal``, ``date``,
    ``text``), so ``True``/``1`` or ``120.5``/``Decimal('120.50')`` give one text.

    Example:
        >>> canonical(pd.Series([120.5, 7]), "decimal", 2).to_pylist()
        ['120.50', '7.00']
    """
    if kind == "text" and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return pa.array(values, type=pa.string(), from_pandas=True)  # already text: one C pass, or none
    if kind == "bool":
        try:
            return pc.if_else(pa.array(values, type=pa.bool_(), from_pandas=True), "1", "0")
        except (pa.ArrowTypeError, pa.ArrowInvalid):  # not booleans (e.g. 0/1 read back): one by one
            pass
    s = values.astype(object)
    if kind == "bool":
        out = s.map(lambda v: "1" if v else "0", na_action="ignore")
    elif kind == "int":
        out = s.map(lambda v: str(int(v)), na_action="ignore")
    elif kind == "decimal":
        step = Decimal(1).scaleb(-(scale or 0))
        out = s.map(lambda v: str(Decimal(str(v)).quantize(step, ROUND_HALF_UP)), na_action="ignore")
    elif kind == "date":
        out = s.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v), na_action="ignore")
    else:
        out = s.map(str, na_action="ignore")
    return pa.array(out, type=pa.string(), from_pandas=True)


def row_checksums(columns: dict[str, pa.Array | pa.ChunkedArray], index: pd.Index) -> pd.Series:
    """One 16-hex-digit checksum per row of canonical text columns (column order matters).

    The columns are joined into one text per row (Arrow, in C++) and hashed once. A row
    whose values hold the separator or the null marker is joined again with those escaped
    and a leading double separator, so distinct rows never give the same text.
    """
    parts = [pc.fill_null(values, _NULL) for values in columns.values()]
    joined = pc.binary_join_element_wise(*parts, _SEP)
    text = joined.to_numpy(zero_copy_only=False)
    odd = np.zeros(len(text), dtype=bool)
    if any(_holds_marker(values) for values in columns.values()):  # rare: then find the rows
        nulls = sum(pc.is_null(values).to_numpy(zero_copy_only=False).astype(np.int64) for values in columns.values())
        odd = ((pc.count_substring(joined, _SEP).to_numpy(zero_copy_only=False) != len(parts) - 1)
               | (pc.count_substring(joined, _NULL).to_numpy(zero_copy_only=False) != nulls))
    if odd.any():
        mask = pa.array(odd)
        escaped = [pc.replace_substring(pc.replace_substring(pc.replace_substring(
            values.filter(mask), "\\", "\\\\"), _SEP, "\\s"), _NULL, "\\0") for values in columns.values()]
        text[odd] = pc.binary_join_element_wise(_SEP, *(pc.fill_null(v, _NULL) for v in escaped), _SEP).to_numpy(
            zero_copy_only=False)
    hashed = pd.util.hash_array(text, categorize=False)
    hexed = np.frombuffer(hashed.astype(">u8").tobytes().hex().encode(), dtype="S16")
    return pd.Series(hexed.astype("U16").astype(object), index=index)


def _holds_marker(values: pa.Array | pa.ChunkedArray) -> bool:
    """Whether any text holds the separator or the null marker (one byte scan of Arrow's value buffers)."""
    for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        data = chunk.buffers()[2]
        if data is not None:
            raw = np.frombuffer(data, dtype=np.uint8)
            if ((raw == ord(_SEP)) | (raw == ord(_NULL))).any():
                return True
    return False


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
