"""Fixed-width files: mainframe extracts (EBCDIC, COMP-3, zoned decimal) and flat text files.

The layout is a YAML file (``.yaml``/``.yml``, see :func:`connectors._layout.layout_from_yaml`)
or a COBOL copybook (any other name, see :mod:`connectors._copybook`). Columns are the
layout's field names. Text fields lose their trailing blanks and NUL padding; numbers are
``int``, or ``Decimal`` where the layout gives decimal places; a numeric field of only
spaces or LOW-VALUES (how COBOL programs leave a field unset) is empty.

Records either end with a line end (``CRLF``, ``LF``, or EBCDIC ``NL``: detected after the
first record unless ``line_ends`` says) and are referenced by line, or follow each other
with nothing between them and are referenced by byte offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO

import yaml
from pydantic import field_validator

from connectors._chunks import Reject, Row, chunked
from connectors._copybook import parse_copybook
from connectors._file import FileOptions, FileSource
from connectors._layout import Field, Layout, layout_from_yaml
from connectors._text import Encoding, require_file
from connectors.base import Chunk
from connectors.registry import register_source
from migrate.errors import InputError

# Zoned decimal signs overpunched on the last digit, as the code page decodes them: EBCDIC
# C0-C9/D0-D9 read as {A-I / }J-R in cp037 and friends, and ASCII systems write the same
# letters; Micro Focus writes p-y for negative digits.
_OVERPUNCH = {
    **{ch: (str(d), 1) for d, ch in enumerate("{ABCDEFGHI")},
    **{ch: (str(d), -1) for d, ch in enumerate("}JKLMNOPQR")},
    **{ch: (str(d), -1) for d, ch in enumerate("pqrstuvwxy")},
}
_REASONS = {"text": "bad_encoding", "zoned": "bad_zoned_decimal", "packed": "bad_packed_decimal"}


class FixedWidthOptions(FileOptions):
    """Options of ``connector: fixed_width``.

    ``encoding`` is the code page of text and zoned fields (``cp037``, ``cp500``,
    ``cp1140``, ``cp1141``..., or ``cp1252``/``latin-1`` for PC files); ``line_ends``
    forces records with (true) or without (false) line ends instead of detecting them.
    """

    layout: str
    encoding: Encoding = "utf-8"
    line_ends: bool | None = None

    @field_validator("encoding")
    @classmethod
    def _no_auto(cls, value: str) -> str:
        if value == "auto":
            raise ValueError("give the code page (e.g. cp037): it cannot be detected in binary records")
        return value


@register_source
class FixedWidthSource(FileSource):
    """A file of fixed-length records laid out by a YAML layout or a COBOL copybook."""

    kind = "fixed_width"
    Options = FixedWidthOptions
    path_options = ("path", "layout")
    options: FixedWidthOptions

    def describe(self) -> str:
        return f"fixed_width {self.options.path} ({self.options.encoding})"

    def layout(self) -> Layout:
        """The record layout, read from the layout file."""
        return load_layout(self.resolve(self.options.layout))

    def estimate_rows(self) -> int | None:
        try:
            return self.path.stat().st_size // self.layout().record_length
        except (OSError, InputError):
            return None

    def chunks(self, chunk_size: int = 50_000) -> Iterator[Chunk]:
        # The layout's fields are the columns, present even when every record is rejected.
        return chunked(self.records(), chunk_size, [f.name for f in self.layout().fields])

    def records(self) -> Iterator[Row | Reject]:
        layout = self.layout()
        path, encoding, length = require_file(self.path), self.options.encoding, layout.record_length
        blank = " ".encode(encoding)
        with path.open("rb") as fh:
            separator = _separator(fh.read(length + 2), length, encoding, self.options.line_ends)
            fh.seek(0)
            records = _lines(fh, separator, encoding) if separator else _blocks(fh, length)
            first = True
            for ref, record in records:
                if len(record) != length:
                    yield Reject(ref, "wrong_record_length", record.decode(encoding, "replace"),
                                 f"expected {length} bytes, found {len(record)}")
                    continue
                if first:
                    _check_code_page(path, record, layout, encoding)
                    first = False
                yield decode_record(ref, record, layout, encoding, blank)


def load_layout(path: Path) -> Layout:
    """A layout from a YAML file or a COBOL copybook; InputError naming the file on a mistake."""
    text = require_file(path).read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError(f"not YAML ({str(exc).splitlines()[0]})") from None
            return layout_from_yaml(data)
        return parse_copybook(text)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None


def decode_record(ref: str, record: bytes, layout: Layout, encoding: str, blank: bytes = b" ") -> Row | Reject:
    """One record's fields by name, or a reject naming the first field that cannot be read.

    Example:
        >>> layout = Layout((Field("NAME", 0, 4), Field("AMOUNT", 4, 3, "packed", 2)), 7)
        >>> decode_record("offset 0", "ANN ".encode("cp037") + bytes.fromhex("12345D"), layout, "cp037").values
        {'NAME': 'ANN', 'AMOUNT': Decimal('-123.45')}
    """
    values: dict[str, object] = {}
    for f in layout.fields:
        raw = record[f.offset : f.offset + f.length]
        try:
            values[f.name] = _value(f, raw, encoding, blank)
        except ValueError as exc:  # UnicodeDecodeError is one
            return Reject(ref, _REASONS[f.type], raw.hex(" "), f"field {f.name} (byte {f.offset + 1}): {exc}")
    return Row(ref, values)


def _value(f: Field, raw: bytes, encoding: str, blank: bytes) -> object:
    if f.type == "text":
        return raw.decode(encoding).rstrip(" \x00") or None
    if f.type != "binary" and not raw.replace(blank, b"").strip(b"\x00"):
        return None
    if f.type == "packed":
        return packed(raw, f.scale)
    if f.type == "zoned":
        return zoned(raw.decode(encoding), f.scale)
    return _scaled(int.from_bytes(raw, "big", signed=f.signed), f.scale)


def packed(raw: bytes, scale: int = 0) -> int | Decimal:
    """A packed decimal (COMP-3): two digits a byte, the sign in the last nibble.

    Example:
        >>> packed(bytes.fromhex("0012345C"), 2), packed(bytes.fromhex("042D"))
        (Decimal('123.45'), -42)
    """
    digits, sign = raw.hex()[:-1], raw.hex()[-1:]
    if not digits.isdigit() or sign not in "abcdef":
        raise ValueError(f"{raw.hex(' ')} is not packed decimal")
    return _scaled(-int(digits) if sign in "bd" else int(digits), scale)


def zoned(text: str, scale: int = 0) -> int | Decimal:
    """A zoned decimal, as its code page decodes it: digits with the sign overpunched on
    the last one, or a separate leading or trailing ``+``/``-``.

    Example:
        >>> zoned("1234E", 2), zoned("004J"), zoned("-0042")
        (Decimal('123.45'), -41, -42)
    """
    s, sign = text.strip(), 1
    if s[:1] in ("+", "-"):
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    elif s[-1:] in ("+", "-"):
        sign, s = (-1 if s[-1] == "-" else 1), s[:-1]
    elif s[-1:] in _OVERPUNCH:
        digit, sign = _OVERPUNCH[s[-1]]
        s = s[:-1] + digit
    if not (s.isascii() and s.isdigit()):
        raise ValueError(f"{text!r} is not zoned decimal")
    return _scaled(sign * int(s), scale)


def _scaled(value: int, scale: int) -> int | Decimal:
    return Decimal(value).scaleb(-scale) if scale else value


def _separator(head: bytes, length: int, encoding: str, line_ends: bool | None) -> bytes | None:
    """The bytes that end each record, or None for back-to-back fixed-length records."""
    lf, cr = "\n".encode(encoding), "\r".encode(encoding)
    # EBCDIC text transfers end lines with NL (0x15) as often as with LF.
    candidates = [cr + lf, lf] + ([b"\x15"] if lf != b"\n" else [])
    if line_ends is False:
        return None
    for sep in candidates:
        if head[length : length + len(sep)] == sep:
            return sep
    if line_ends:
        found = [(head.find(sep), sep) for sep in candidates if sep in head]
        return min(found)[1] if found else lf
    return None


def _lines(fh: IO[bytes], separator: bytes, encoding: str) -> Iterator[tuple[str, bytes]]:
    # A file with LF line ends may still have CRLF on some lines (edited on Windows).
    stray = "\r".encode(encoding) if separator == "\n".encode(encoding) else b""
    buffer, n = b"", 0
    while block := fh.read(1 << 16):
        buffer += block
        *complete, buffer = buffer.split(separator)
        for record in complete:
            n += 1
            if record:  # blank lines carry no record
                yield f"line {n}", record.removesuffix(stray) if stray else record
    if buffer and buffer != b"\x1a":  # DOS end-of-file mark
        yield f"line {n + 1}", buffer


def _blocks(fh: IO[bytes], length: int) -> Iterator[tuple[str, bytes]]:
    offset = 0
    while record := fh.read(length):
        if record != b"\x1a":  # DOS end-of-file mark
            yield f"offset {offset}", record
        offset += len(record)


def _check_code_page(path: Path, record: bytes, layout: Layout, encoding: str) -> None:
    """Refuse a file whose text fields are padded with the other family's space.

    Fixed-width text is space-padded: 0x40 padding in an ASCII-family reading (or 0x20 in
    an EBCDIC one) means the declared code page is wrong, and every row would be garbage.
    """
    text = b"".join(record[f.offset : f.offset + f.length] for f in layout.fields if f.type == "text")
    blank = " ".encode(encoding)
    other = b"\x40" if blank == b" " else b" "
    if text.count(other) >= 3 and text.count(other) > text.count(blank):
        family = "EBCDIC (e.g. encoding: cp037)" if other == b"\x40" else "ASCII-based (e.g. encoding: cp1252)"
        raise InputError(f"{path}: record 1 does not read as {encoding}: its text is padded with byte "
                         f"0x{other.hex()}, the space of {family}")
