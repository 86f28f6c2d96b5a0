"""Back-office databases over SQLAlchemy: a table or a query, streamed with server-side cursors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, model_validator

from connectors.prefetch import prefetched
from connectors.base import SOURCE_REF, Chunk, Source, SourceOptions
from connectors.registry import register_source
from connectors.urls import make_engine, safe_url
from migrate.errors import ConfigError, InputError, SourceReadError

#: Column of a related chunk holding the parent's id.
PARENT_ID = "_parent_id"


class RelatedOptions(BaseModel):
    """A related record set (orders, invoices, activities) read from its own table."""

    model_config = ConfigDict(extra="forbid")

    table: str
    parent_key: str
    id_column: str | None = None
    kind: str | None = None
    #: Target column (occurred_on, amount, currency, status) -> source column; same names by default.
    fields: dict[str, str] = {}


class SqlOptions(SourceOptions):
    """Options of ``connector: sql``."""

    url: str
    table: str | None = None
    query: str | None = None
    #: Column that grows whenever a row changes: `crm-migrate sync` reads from its last value.
    cursor: str | None = None
    related: dict[str, RelatedOptions] = {}  # type: ignore[assignment]

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlOptions:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


@register_source
class SqlSource(Source):
    """A table or query in any database SQLAlchemy reaches (SQLite, PostgreSQL, MariaDB...).

    Rows stream through a server-side cursor, so a 10M-row table never sits in memory.
    """

    kind = "sql"
    Options = SqlOptions
    reads_changes = True
    options: SqlOptions

    def __init__(self, name: str, options: SourceOptions, base_dir: Any):
        super().__init__(name, options, base_dir)
        self._engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine:
        """The source database engine (created on first use, checked to exist)."""
        if self._engine is None:
            self._engine = make_engine(self.options.url, self.base_dir, must_exist=True)
        return self._engine

    def describe(self) -> str:
        what = self.options.table or "query"
        return f"sql {safe_url(self.options.url)} {what}"

    def _selectable(self, table: str | None, query: str | None) -> sa.Executable:
        if query is not None:
            return sa.text(query)
        assert table is not None
        try:
            reflected = sa.Table(table, sa.MetaData(), autoload_with=self.engine)
        except sa.exc.NoSuchTableError:
            raise ConfigError(f"source {self.name!r}: table {table!r} not found in {safe_url(self.options.url)}") from None
        except sa.exc.OperationalError as exc:
            raise InputError(f"source {self.name!r}: cannot reach {safe_url(self.options.url)}: "
                             f"{_first_line(exc)}") from None
        return sa.select(reflected)

    def columns(self) -> list[str]:
        if self.options.table is None:
            return super().columns()
        selectable = self._selectable(self.options.table, None)
        return [c.name for c in selectable.selected_columns]

    def estimate_rows(self) -> int | None:
        if self.options.table is None:
            return None
        try:
            with self.engine.connect() as conn:
                return conn.execute(sa.text(f"SELECT COUNT(*) FROM {self._quote(self.options.table)}")).scalar()
        except sa.exc.SQLAlchemyError:
            return None

    def _quote(self, name: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(name)

    def chunks(self, chunk_size: int = 50_000) -> Iterator[Chunk]:
        yield from self._stream(self._selectable(self.options.table, self.options.query),
                                self.options.id_column, chunk_size)

    def changed_chunks(self, chunk_size: int, since: Any) -> Iterator[Chunk]:
        cursor = self.options.cursor
        assert cursor is not None
        if self.options.table is not None:
            table = self._selectable(self.options.table, None)
            if cursor not in table.selected_columns:
                raise ConfigError(f"sources.{self.name}.cursor: {cursor!r} is not a column of table "
                                  f"{self.options.table!r}")
            selectable: sa.Executable = table.where(table.selected_columns[cursor] >= since)
        else:
            selectable = sa.text(f"SELECT * FROM ({self.options.query}) AS changed "
                                 f"WHERE {self._quote(cursor)} >= :since").bindparams(since=since)
        yield from self._stream(selectable, self.options.id_column, chunk_size)

    def related_chunks(self, name: str, chunk_size: int = 50_000) -> Iterator[Chunk]:
        spec = self.options.related[name]
        for chunk in self._stream(self._selectable(spec.table, None), spec.id_column, chunk_size):
            rows = chunk.rows
            if spec.parent_key not in rows.columns:
                raise ConfigError(f"source {self.name!r}: related {name!r}: column {spec.parent_key!r} "
                                  f"not in table {spec.table!r}")
            rows[PARENT_ID] = rows[spec.parent_key]
            yield chunk

    def _stream(self, selectable: sa.Executable, id_column: str | None, chunk_size: int) -> Iterator[Chunk]:
        chunks = self._fetch(selectable, id_column, chunk_size)
        # A database server fetches the next rows while this process maps the last ones; SQLite
        # reads in this process (and its in-memory databases exist in one thread only).
        return chunks if self.engine.dialect.name == "sqlite" else prefetched(chunks)

    def _fetch(self, selectable: sa.Executable, id_column: str | None, chunk_size: int) -> Iterator[Chunk]:
        offset = 0
        try:
            with self.engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=chunk_size).execute(selectable)
                columns = list(result.keys())
                if id_column is not None and id_column not in columns:
                    raise ConfigError(f"source {self.name!r}: id_column {id_column!r} is not a column "
                                      f"(columns: {', '.join(columns)})")
                for part in result.partitions(chunk_size):
                    frame = pd.DataFrame.from_records(part, columns=columns)
                    if id_column is not None:
                        frame[SOURCE_REF] = id_column + "=" + frame[id_column].astype(str)
                    else:
                        frame[SOURCE_REF] = [f"row {offset + i + 1}" for i in range(len(frame))]
                    offset += len(frame)
                    yield Chunk(frame)
        except sa.exc.OperationalError as exc:
            raise SourceReadError(f"source {self.name!r}: {safe_url(self.options.url)}: {_first_line(exc)}") from None
        except sa.exc.ProgrammingError as exc:
            raise ConfigError(f"source {self.name!r}: the query failed: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
