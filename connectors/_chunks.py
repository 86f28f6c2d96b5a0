"""Turning a connector's stream of read and rejected records into bounded chunks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from connectors.base import REJECT_COLUMNS, SOURCE_REF, Chunk


@dataclass(frozen=True)
class Row:
    """One record read: where it came from and its values by column name."""

    ref: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Reject:
    """One record that could not be read, with a stable snake_case reason code."""

    ref: str
    reason: str
    value: Any
    detail: str = ""


def chunked(records: Iterable[Row | Reject], size: int, columns: Iterable[str] = ()) -> Iterator[Chunk]:
    """Batch records into chunks that each account for at most ``size`` input records.

    ``columns`` are always present, in that order, even when no record in a chunk has
    them (so a mapping can name them); other columns follow in first-seen order.

    Example:
        >>> [c.count for c in chunked([Row("line 1", {"a": 1})] * 5, 2)]
        [2, 2, 1]
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    fixed = list(columns)
    rows: list[Row] = []
    rejects: list[Reject] = []
    for record in records:
        (rows if isinstance(record, Row) else rejects).append(record)  # type: ignore[arg-type]
        if len(rows) + len(rejects) >= size:
            yield _chunk(rows, rejects, fixed)
            rows, rejects = [], []
    if rows or rejects:
        yield _chunk(rows, rejects, fixed)


def _chunk(rows: list[Row], rejects: list[Reject], fixed: list[str]) -> Chunk:
    names = dict.fromkeys(fixed)
    for row in rows:
        names.update(dict.fromkeys(row.values))
    # object dtype keeps values as read: ids stay ints (no float rounding), None stays None.
    frame = pd.DataFrame([row.values for row in rows], columns=list(names), dtype="object")
    frame = frame.astype("object").where(frame.notna(), None)
    frame[SOURCE_REF] = pd.Series([row.ref for row in rows], index=frame.index, dtype="object")
    if not rejects:
        return Chunk(frame)
    bad = pd.DataFrame([[r.ref, r.reason, r.value, r.detail] for r in rejects], columns=REJECT_COLUMNS, dtype="object")
    return Chunk(frame, bad)


def nth(name: str, n: int) -> str:
    """Column name of the ``n``-th (1-based) value of a repeated field: ``mail``, ``mail.2``...

    Example:
        >>> [nth("mail", n) for n in (1, 2)]
        ['mail', 'mail.2']
    """
    return name if n == 1 else f"{name}.{n}"
