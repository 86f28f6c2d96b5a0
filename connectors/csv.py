"""CSV and other delimited text exports, streamed with the line number of every row."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from connectors.base import SOURCE_REF, Chunk, Source, SourceOptions, empty_rejects
from connectors.registry import register_source
from migrate.errors import InputError

_SAMPLE_BYTES = 256 * 1024
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


class CsvOptions(SourceOptions):
    """Options of ``connector: csv``."""

    path: str
    encoding: str | None = None
    delimiter: str | None = None
    quotechar: str = '"'


@register_source
class CsvSource(Source):
    """A delimited text file with a header row.

    The encoding is detected when not given (a BOM wins, then charset-normalizer on a
    sample); the delimiter is sniffed among ``, ; TAB |``. A line that cannot be decoded
    or has the wrong number of columns becomes a reject with its line number.
    """

    kind = "csv"
    Options = CsvOptions
    path_options = ("path",)
    options: CsvOptions

    @property
    def path(self) -> Path:
        """The file, resolved against the project folder."""
        return self.resolve(self.options.path)

    def describe(self) -> str:
        return f"csv {self.options.path}"

    def estimate_rows(self) -> int | None:
        try:
            size = self.path.stat().st_size
            with self.path.open("rb") as fh:
                sample = fh.read(_SAMPLE_BYTES)
        except OSError:
            return None
        lines = max(sample.count(b"\n"), 1)
        return int(size / len(sample) * lines) - 1 if sample else 0

    def _sniff(self) -> tuple[str, str]:
        path = self.path
        if not path.is_file():
            raise InputError(f"{path}: file not found")
        try:
            with path.open("rb") as fh:
                sample = fh.read(_SAMPLE_BYTES)
        except OSError as exc:
            raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
        if b"\x00" in sample[:4096] and not sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise InputError(f"{path}: not a text file (binary content); is this really a CSV export?")
        encoding = self.options.encoding or _detect_encoding(sample)
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InputError(f"{path}: unknown encoding {encoding!r}") from None
        text = sample.decode(encoding, errors="replace")
        delimiter = self.options.delimiter
        if delimiter is None:
            try:
                delimiter = csv.Sniffer().sniff(text[:64 * 1024], delimiters=",;\t|").delimiter
            except csv.Error:
                delimiter = ","
        return encoding, delimiter

    def chunks(self, chunk_size: int = 50_000) -> Iterator[Chunk]:
        encoding, delimiter = self._sniff()
        with self.path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline="")
            reader = csv.reader(text, delimiter=delimiter, quotechar=self.options.quotechar)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError(f"{self.path}: the file is empty (no header row)") from None
            except csv.Error as exc:
                raise InputError(f"{self.path}: not a readable CSV header ({exc})") from None
            header = _unique_header(header)
            width = len(header)
            rows: list[list[str]] = []
            refs: list[str] = []
            rejects: list[dict] = []
            line = reader.line_num
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    rejects.append({"source_ref": f"line {reader.line_num}", "reason": "malformed_csv",
                                    "value": None, "detail": str(exc)})
                    line = reader.line_num
                    continue
                start = line + 1
                line = reader.line_num
                if not row:
                    continue  # blank lines carry no record
                ref = f"line {start}"
                raw_text = delimiter.join(row)
                if _has_surrogates(raw_text):
                    rejects.append({"source_ref": ref, "reason": "bad_encoding",
                                    "value": raw_text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
                                    "detail": f"bytes not valid in {encoding}"})
                elif len(row) != width:
                    rejects.append({"source_ref": ref, "reason": "wrong_column_count", "value": raw_text,
                                    "detail": f"expected {width} columns, found {len(row)}"})
                else:
                    rows.append(row)
                    refs.append(ref)
                if len(rows) + len(rejects) >= chunk_size:
                    yield _chunk(rows, refs, rejects, header)
                    rows, refs, rejects = [], [], []
            if rows or rejects:
                yield _chunk(rows, refs, rejects, header)


def _chunk(rows: list[list[str]], refs: list[str], rejects: list[dict], header: list[str]) -> Chunk:
    frame = pd.DataFrame(rows, columns=header, dtype="object")
    frame[SOURCE_REF] = refs
    return Chunk(frame, pd.DataFrame(rejects) if rejects else empty_rejects())


def _detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    valid = len(_UTF8_MULTIBYTE.findall(sample))
    invalid = sample.decode("utf-8", errors="replace").count("\ufffd")
    if invalid == 0 or valid > 0:
        # Mostly UTF-8: the few bad lines are quarantined as bad_encoding, not guessed at.
        return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    return best.encoding if best else "cp1252"


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


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
