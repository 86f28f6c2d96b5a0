"""The contract every source connector keeps (DESIGN.md: connectors)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

#: Column every chunk carries: where the row came from (line number, byte offset or key).
SOURCE_REF = "_source_ref"

#: Columns of a chunk's rejects: rows the connector could not turn into a row at all.
REJECT_COLUMNS = ["source_ref", "reason", "value", "detail"]


def empty_rejects() -> pd.DataFrame:
    """An empty rejects frame with the right columns."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in REJECT_COLUMNS})


@dataclass
class Chunk:
    """A slice of a source: good rows plus the rows that could not be read.

    ``rows`` holds the source's own columns (values as read, strings where the format has
    no types) plus ``_source_ref``. ``rejects`` holds one row per unreadable input row with a
    stable reason code (``bad_encoding``, ``wrong_column_count``...), the raw value and detail.
    """

    rows: pd.DataFrame
    rejects: pd.DataFrame = field(default_factory=empty_rejects)

    @property
    def count(self) -> int:
        """Input rows this chunk accounts for (read plus rejected)."""
        return len(self.rows) + len(self.rejects)


class SourceOptions(BaseModel):
    """Options common to every source in migration.yaml; connectors extend this."""

    model_config = ConfigDict(extra="forbid")

    connector: str
    mapping: str | None = None
    id_column: str | None = None
    default_region: str | None = None
    related: dict[str, dict[str, Any]] = {}


class Source(ABC):
    """A legacy source read as a stream of chunks.

    Subclasses set ``kind`` (the ``connector:`` key) and ``Options`` (a pydantic model of
    their options) and implement :meth:`chunks`.
    """

    kind: ClassVar[str]
    Options: ClassVar[type[SourceOptions]] = SourceOptions
    #: Option names that hold file paths, resolved against the project folder and checked.
    path_options: ClassVar[tuple[str, ...]] = ()
    #: True when records carry different fields (JSON): a column absent from the first chunk
    #: may still come later, so the pre-flight check does not insist on it.
    columns_vary: ClassVar[bool] = False
    #: True when :meth:`changed_chunks` can ask the source for rows at or after a cursor value.
    reads_changes: ClassVar[bool] = False

    def __init__(self, name: str, options: SourceOptions, base_dir: Path):
        self.name = name
        self.options = options
        self.base_dir = base_dir

    def resolve(self, path: str | Path) -> Path:
        """A path from the config, relative to the project folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @abstractmethod
    def chunks(self, chunk_size: int = 50_000) -> Iterator[Chunk]:
        """Yield the source's rows in chunks of at most ``chunk_size`` rows."""

    def changed_chunks(self, chunk_size: int, since: Any) -> Iterator[Chunk]:
        """Yield only rows whose ``cursor`` column is at or after ``since`` (see ``reads_changes``)."""
        raise NotImplementedError(f"connector {self.kind!r} reads its source in full")

    def columns(self) -> list[str]:
        """The source's column names (reads at most one chunk)."""
        for chunk in self.chunks(chunk_size=100):
            return [c for c in chunk.rows.columns if c != SOURCE_REF]
        return []

    def estimate_rows(self) -> int | None:
        """A cheap estimate of the row count for progress bars, or None."""
        return None

    def related_names(self) -> list[str]:
        """Names of related record sets (orders, invoices...) this source provides."""
        return list(self.options.related)

    def related_chunks(self, name: str, chunk_size: int = 50_000) -> Iterator[Chunk]:
        """Yield chunks of a related record set; rows carry ``_parent_id``."""
        raise NotImplementedError(f"connector {self.kind!r} has no related record sets")

    def describe(self) -> str:
        """A short, secret-free description for logs and reports."""
        return self.kind
