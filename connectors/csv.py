"""CSV and other delimited text exports, streamed with the line number of every row.

Two readings, one result. Arrow's C++ CSV parser reads the file a block of whole lines at a
time; the csv module reads it line by line and is the reference. A block Arrow refuses (bytes
the encoding rejects, a line with the wrong number of fields) or whose rows do not account for
exactly its lines is halved until Arrow reads the halves, and the stretch of a few lines
around the bad one is read by the csv module, which rejects that line with its number. Files
whose line ends and quotes cannot be found in the raw bytes (UTF-16, Shift JIS...) are read
by the csv module throughout.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import IO, Annotated

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pydantic import Field

from connectors._chunks import Reject, Row, chunked
from connectors._file import FileSource, TextFileOptions
from connectors.prefetch import prefetched
from connectors._text import SNIFF_BYTES, Encoding, has_bad_bytes, shown, sniff_encoding
from connectors.base import SOURCE_REF, Chunk, empty_rejects
from connectors.registry import register_source
from migrate.errors import InputError

#: Bytes of text an Arrow block may hold, whatever the chunk size: bounds memory on wide rows.
_MAX_BLOCK = 32 << 20
#: Lines below which a block Arrow refuses is read by the csv module instead of halved again.
_SLOW_LINES = 64
_LINE_END = re.compile(rb"\r\n?|\n")

Char = Annotated[str, Field(min_length=1, max_length=1)]


class CsvOptions(TextFileOptions):
    """Options of ``connector: csv``."""

    encoding: Encoding = "auto"
    delimiter: Char | None = None
    quotechar: Char = '"'


@dataclass(frozen=True)
class Dialect:
    """How a file is written: its encoding, the length of its BOM, delimiter and quote character."""

    encoding: str
    bom: int
    delimiter: str
    quotechar: str

    def reader(self, lines: Iterator[str]) -> Iterator[list[str]]:
        """The csv module over text lines."""
        return csv.reader(lines, delimiter=self.delimiter, quotechar=self.quotechar)

    @property
    def byte_framed(self) -> bool:
        """True when line ends, delimiters and quotes are single ASCII bytes that no other
        character's bytes contain (UTF-8, single-byte code pages), so blocks can be cut in the
        raw bytes."""
        marks = ("\n", "\r", self.delimiter, self.quotechar)
        if not all(m.isascii() for m in marks):
            return False
        ascii_ = "".join(map(chr, range(128)))
        if bytes(range(128)).decode(self.encoding, "replace") != ascii_:
            return False
        return all((bytes([b]) + m.encode()).decode(self.encoding, "replace").endswith(m)
                   for b in range(128, 256) for m in marks)


@register_source
class CsvSource(FileSource):
    """A delimited text file with a header row.

    The encoding is detected unless given (a BOM wins; UTF-8 when the file's head reads as
    UTF-8; else charset-normalizer); the delimiter is sniffed among ``, ; TAB |``. A line that
    cannot be decoded or has the wrong number of columns becomes a reject with its line number.
    """

    kind = "csv"
    Options = CsvOptions
    options: CsvOptions

    def estimate_rows(self) -> int | None:
        try:
            size = self.path.stat().st_size
            with self.path.open("rb") as fh:
                sample = fh.read(SNIFF_BYTES)
        except OSError:
            return None
        lines = max(sample.count(b"\n"), 1)
        return int(size / len(sample) * lines) - 1 if sample else 0

    def dialect(self) -> Dialect:
        """The file's encoding (checked against its head), BOM and delimiter."""
        encoding, bom = sniff_encoding(self.path, self.options.encoding)
        delimiter = self.options.delimiter
        if delimiter is None:
            with self.path.open("rb") as fh:
                fh.seek(bom)
                head = fh.read(SNIFF_BYTES).decode(encoding, errors="replace")
            try:
                delimiter = csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
            except csv.Error:
                delimiter = ","
        return Dialect(encoding, bom, delimiter, self.options.quotechar)

    def chunks(self, chunk_size: int = 50_000) -> Iterator[Chunk]:
        return prefetched(self._chunks(chunk_size))

    def _chunks(self, chunk_size: int) -> Iterator[Chunk]:
        if chunk_size < 1:
            raise ValueError(f"chunk size must be at least 1, not {chunk_size}")
        dialect = self.dialect()
        with self.path.open("rb") as raw:
            raw.seek(dialect.bom)
            if dialect.byte_framed:
                yield from self._blocks(raw, dialect, chunk_size)
            else:
                header, records = self._text_records(raw, dialect)
                yield from chunked(records, chunk_size, header)

    def records(self) -> Iterator[Row | Reject]:
        """Every record, read line by line by the csv module: the reference reading."""
        dialect = self.dialect()
        with self.path.open("rb") as raw:
            raw.seek(dialect.bom)
            yield from self._text_records(raw, dialect)[1]

    def _text_records(self, raw: IO[bytes], dialect: Dialect) -> tuple[list[str], Iterator[Row | Reject]]:
        """The header and the records of a file opened at its first byte after the BOM."""
        lines = iter(io.TextIOWrapper(raw, encoding=dialect.encoding, errors="surrogateescape", newline=""))
        header, used = self._header(dialect, lines)
        return header, _records(lines, header, dialect, used + 1)

    def _header(self, dialect: Dialect, lines: Iterator[str]) -> tuple[list[str], int]:
        """The column names and the number of lines they take."""
        reader = dialect.reader(lines)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"{self.path}: the file is empty (no header row)") from None
        except csv.Error as exc:
            raise InputError(f"{self.path}: not a readable CSV header ({exc})") from None
        return _unique_header(header), reader.line_num

    def _blocks(self, raw: IO[bytes], dialect: Dialect, chunk_size: int) -> Iterator[Chunk]:
        buffer = _Buffer(raw, dialect.encoding)
        header, _ = self._header(dialect, buffer.lines())
        arrow = _ArrowReader(header, dialect)
        lines = chunk_size  # the block size Arrow last read, halved when it refuses one, doubled when it reads one
        while buffer.more():
            parts: list[Chunk] = []
            left = chunk_size
            while left and buffer.more():
                want = min(lines, left)
                block = buffer.block(want, dialect.quotechar)
                part = None if block is None else arrow.read(block)
                if part is not None:
                    assert block is not None
                    buffer.skip(block)
                    lines = min(lines * 2, chunk_size)
                    # A block's lines bound its records: counting lines spares a second, tiny
                    # block (and a concat) for every chunk whose values span lines.
                    left -= block.lines
                elif want > _SLOW_LINES:
                    lines = max(want // 2, _SLOW_LINES)
                    continue
                else:
                    records = islice(_records(buffer.lines(), header, dialect, buffer.line), want)
                    part = next(chunked(records, want, header), None)
                    left -= 0 if part is None else part.count
                if part is not None and part.count:
                    parts.append(part)
            if parts:
                yield _joined(parts)


class _Buffer:
    """A file's bytes read ahead from a record boundary, with the number of the line there."""

    def __init__(self, raw: IO[bytes], encoding: str):
        self.raw, self.encoding = raw, encoding
        self.data, self.pos, self.line, self.eof = b"", 0, 1, False
        self._line_bytes = 256  # running estimate, to read about one block at a time

    def more(self) -> bool:
        """True while unread bytes remain."""
        return self.pos < len(self.data) or self._fill(1)

    def _fill(self, size: int) -> bool:
        """Hold at least ``size`` unread bytes unless the file ends first; True if any are held."""
        if len(self.data) - self.pos < size and not self.eof:
            more = self.raw.read(max(size - (len(self.data) - self.pos), 1 << 20))
            self.eof = not more
            self.data = self.data[self.pos:] + more
            self.pos = 0
        return self.pos < len(self.data)

    def lines(self) -> Iterator[str]:
        """The next lines, decoded (bad bytes as surrogate escapes), consumed as they are yielded."""
        while True:
            found = _LINE_END.search(self.data, self.pos)
            if found is None or (found.group() == b"\r" and found.end() == len(self.data) and not self.eof):
                # The line goes on past the bytes held (or may end with CR LF split by the read).
                if self.eof:
                    if self.pos < len(self.data):
                        yield self._line(len(self.data))
                    return
                self._fill(len(self.data) - self.pos + (1 << 20))
                continue
            yield self._line(found.end())

    def _line(self, end: int) -> str:
        text = self.data[self.pos:end].decode(self.encoding, "surrogateescape")
        self.pos = end
        self.line += 1
        return text

    def block(self, lines: int, quote: str) -> _Block | None:
        """The next at most ``lines`` whole lines, ending after a line end with an even number of
        quotes before it (the parser double-checks); None when no such end is in reach."""
        while True:
            view = np.frombuffer(self.data, np.uint8)[self.pos:]
            ends = np.flatnonzero(view == ord("\n"))
            if len(ends) >= lines or self.eof or len(view) >= _MAX_BLOCK:
                break
            self._fill(max(2 * len(view), int(lines * self._line_bytes * 1.1)))
        if len(ends) >= lines:
            end = int(ends[lines - 1]) + 1
        elif self.eof:
            end = len(view)
        elif len(ends):
            end = int(ends[-1]) + 1
        else:
            return None
        mark = quote.encode()
        odd = self.data.count(mark, self.pos, self.pos + end) % 2
        while odd:
            before = self.data.rfind(b"\n", self.pos, self.pos + end - 1)
            if before < 0:
                return None
            odd ^= self.data.count(mark, before + 1, self.pos + end) % 2
            end = before + 1 - self.pos
        ends = ends[ends < end]
        self._line_bytes = end / max(len(ends), 1)
        return _Block(self.data[self.pos:self.pos + end], self.line, ends, self.eof and self.pos + end == len(self.data))

    def skip(self, block: _Block) -> None:
        """Consume a block read from the buffer's position (it has no lone CR)."""
        self.pos += len(block.data)
        self.line += len(block.ends)


@dataclass(frozen=True)
class _Block:
    """Whole lines of a file: their bytes, the number of the first, the offset of each LF, and
    whether the file ends with them."""

    data: bytes
    first: int
    ends: np.ndarray
    final: bool

    @property
    def lines(self) -> int:
        """How many lines the block holds (the file's last may lack a line end)."""
        return len(self.ends) + (not self.data.endswith(b"\n"))

    def blank_lines(self) -> np.ndarray:
        """0-based numbers of the block's empty lines (which carry no record)."""
        starts = np.concatenate([[0], self.ends[:-1] + 1])
        length = self.ends - starts
        blank = length == 0
        one = np.flatnonzero(length == 1)
        blank[one] = np.frombuffer(self.data, np.uint8)[starts[one]] == ord("\r")
        return np.flatnonzero(blank)


class _ArrowReader:
    """Arrow's reading of a block, kept only where it provably matches the csv module's."""

    def __init__(self, header: list[str], dialect: Dialect):
        self.header = header
        self.utf8 = codecs.lookup(dialect.encoding).name == "utf-8"
        self.encoding = dialect.encoding
        self.read_options = pacsv.ReadOptions(column_names=header)
        self.parse_options = pacsv.ParseOptions(delimiter=dialect.delimiter, quote_char=dialect.quotechar,
                                                double_quote=True, newlines_in_values=True)
        self.convert_options = pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()),
                                                    strings_can_be_null=False, quoted_strings_can_be_null=False)

    def read(self, block: _Block) -> Chunk | None:
        """The rows of a block, or None where Arrow refuses it or its reading could differ from the
        csv module's."""
        data = block.data
        if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
            return None  # a lone CR ends a line for the csv module
        try:
            text = data if self.utf8 else data.decode(self.encoding).encode("utf-8")
            table = pacsv.read_csv(pa.BufferReader(text), read_options=self.read_options,
                                   parse_options=self.parse_options, convert_options=self.convert_options)
        except (UnicodeDecodeError, pa.ArrowInvalid):
            return None
        starts = _row_lines(table, block)
        if starts is None:
            return None
        refs = pc.binary_join_element_wise("line ", pc.cast(pa.array(starts + block.first), pa.string()), "")
        return Chunk(table.append_column(SOURCE_REF, refs).to_pandas())


def _row_lines(table: pa.Table, block: _Block) -> np.ndarray | None:
    """The line (0-based, in the block) each row starts on, or None when the rows do not
    account for the block's lines as the csv module would read them."""
    n_lines = block.lines
    blank = block.blank_lines()
    if table.num_rows == n_lines - len(blank):
        # One row per line; a line end inside the last value means the block was cut inside quotes.
        if table.num_rows and not block.final and "\n" in table.column(-1)[-1].as_py():
            return None
        return np.delete(np.arange(n_lines), blank)
    if len(blank):
        return None  # values spanning lines and blank lines: left to the csv module
    spans = np.ones(table.num_rows, dtype=np.int64)
    for column in table.columns:
        if _may_hold(column, ord("\n")):  # most columns hold no line break: skip counting them
            spans += pc.count_substring(column, "\n").to_numpy()
    if spans.sum() != n_lines:
        return None
    return np.concatenate([[0], np.cumsum(spans)[:-1]])


def _may_hold(values: pa.ChunkedArray, byte: int) -> bool:
    """Whether any value may hold ``byte``: one scan of the value buffers (bytes a slice leaves
    out may answer yes)."""
    return any(chunk.buffers()[2] is not None and bool((np.frombuffer(chunk.buffers()[2], np.uint8) == byte).any())
               for chunk in values.chunks)


def _records(lines: Iterator[str], header: list[str], dialect: Dialect, first: int) -> Iterator[Row | Reject]:
    """The csv module's reading of ``lines`` (the first is line ``first`` of the file)."""
    reader = dialect.reader(lines)
    width = len(header)
    end = first - 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = first - 1 + reader.line_num
            yield Reject(f"line {end}", "malformed_csv", None, str(exc))
            continue
        start, end = end + 1, first - 1 + reader.line_num
        if not row:
            continue  # blank lines carry no record
        ref = f"line {start}"
        raw_text = dialect.delimiter.join(row)
        if has_bad_bytes(raw_text):
            yield Reject(ref, "bad_encoding", shown(raw_text), f"bytes not valid in {dialect.encoding}")
        elif len(row) != width:
            yield Reject(ref, "wrong_column_count", raw_text, f"expected {width} columns, found {len(row)}")
        else:
            yield Row(ref, dict(zip(header, row)))


def _joined(parts: list[Chunk]) -> Chunk:
    if len(parts) == 1:
        return parts[0]
    rejects = [p.rejects for p in parts if len(p.rejects)]
    return Chunk(pd.concat([p.rows for p in parts], ignore_index=True),
                 pd.concat(rejects, ignore_index=True) if rejects else empty_rejects())


def _unique_header(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(header):
        name = name.strip() or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out
