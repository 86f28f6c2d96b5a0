"""What every file connector shares: the ``path`` option, its description and chunking."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from connectors._chunks import Reject, Row, chunked
from connectors._text import Encoding
from connectors.base import Chunk, Source, SourceOptions


class FileOptions(SourceOptions):
    """Options of a source read from one file."""

    path: str


class TextFileOptions(FileOptions):
    """Options of a source read from one text file: ``encoding`` is a codec name or ``auto``."""

    encoding: Encoding = "utf-8"


class FileSource(Source):
    """A source read from the file its ``path`` option names.

    Subclasses yield :class:`Row` and :class:`Reject` records from :meth:`records`;
    ``fixed_columns`` are in every chunk, so a mapping can name them even when no record of
    a chunk has a value there.
    """

    Options: ClassVar[type[SourceOptions]] = FileOptions
    path_options: ClassVar[tuple[str, ...]] = ("path",)
    fixed_columns: ClassVar[tuple[str, ...]] = ()
    options: FileOptions

    @property
    def path(self) -> Path:
        """The file, resolved against the project folder."""
        return self.resolve(self.options.path)

    def describe(self) -> str:
        return f"{self.kind} {self.options.path}"

    def chunks(self, chunk_size: int = 50_000) -> Iterator[Chunk]:
        return chunked(self.records(), chunk_size, self.fixed_columns)

    @abstractmethod
    def records(self) -> Iterator[Row | Reject]:
        """The file's records in order, read or rejected."""
