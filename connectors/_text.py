"""Opening legacy files: existence checks, BOMs, declared code pages, and a clear error when
the bytes do not match the declared encoding."""

from __future__ import annotations

import codecs
import io
import os
from pathlib import Path
from typing import IO, Annotated

import ebcdic  # noqa: F401  (registers the mainframe code pages Python lacks: cp1047, cp1141...)
from pydantic import AfterValidator

from migrate.errors import InputError

#: Bytes read from the head of a file to check its encoding.
SNIFF_BYTES = 64 * 1024

# UTF-32 first: its little-endian BOM starts with the UTF-16 one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _known_codec(name: str) -> str:
    if name != "auto":
        try:
            codecs.lookup(name)
        except LookupError:
            raise ValueError(f"unknown encoding {name!r} (e.g. utf-8, cp1252, latin-1, cp037)") from None
    return name


#: An ``encoding:`` option: a Python codec name, or ``auto`` to detect it from the file.
Encoding = Annotated[str, AfterValidator(_known_codec)]


def require_file(path: Path) -> Path:
    """Return ``path`` if it is a readable file, else raise InputError naming it."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: not readable (permission denied)")
    return path


def has_bad_bytes(text: str) -> bool:
    """True where text read with ``surrogateescape`` held bytes invalid in its encoding."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def shown(text: str) -> str:
    """Text read with ``surrogateescape`` made printable for a reject's ``value``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def sniff_encoding(path: Path, declared: str) -> tuple[str, int]:
    """The encoding to read ``path`` with and the length of its BOM.

    A BOM wins over the declared encoding (it is the writer's own word). ``auto`` takes UTF-8
    when the head reads as UTF-8, or holds characters only UTF-8 writes that way (a few bad
    lines in a UTF-8 file are rejected, not guessed at), and otherwise asks charset-normalizer
    (Windows-1252 when it has no answer).
    A head full of bytes the encoding rejects, with no character it accepts beyond ASCII, is
    the wrong code page for the whole file: InputError with a hint. A few bad bytes among good
    ones are left to the rows they sit in (``bad_encoding``).
    """
    require_file(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
            whole = not fh.read(1)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, len(bom)
    if b"\x00" in head:
        raise InputError(f"{path}: not a text file (NUL bytes: binary data, or UTF-16 without a BOM)")
    encoding = declared
    if declared == "auto":
        bad, good = _read_counts(head, "utf-8", whole)
        encoding = "utf-8" if good or not bad else (_guess(head) or "cp1252")
    bad, good = _read_counts(head, encoding, whole)
    if bad and not good:
        guess = _guess(head)
        same = guess in (None, codecs.lookup(encoding).name)
        hint = "" if same else f"; it looks like {guess}: set encoding: {guess}"
        raise InputError(f"{path}: not {encoding} text{hint}")
    return encoding, 0


def _read_counts(head: bytes, encoding: str, whole: bool) -> tuple[int, int]:
    """Characters of ``head`` the encoding rejects, and those beyond ASCII it accepts."""
    text = codecs.getincrementaldecoder(encoding)(errors="surrogateescape").decode(head, final=whole)
    bad = sum(1 for ch in text if "\udc80" <= ch <= "\udcff")
    return bad, sum(1 for ch in text if ch > "\x7f") - bad


def open_text(path: Path, encoding: str) -> IO[str]:
    """Open a text file for streaming line by line in its (checked) encoding.

    Undecodable bytes are kept as surrogate escapes so the row holding them can be
    rejected with :func:`has_bad_bytes` instead of failing the whole file.
    """
    encoding, bom = sniff_encoding(path, encoding)
    raw = path.open("rb")
    raw.seek(bom)
    return io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape")


def open_utf8(path: Path, encoding: str) -> IO[bytes]:
    """Open a text file as a stream of UTF-8 bytes, whatever its encoding.

    For byte-oriented parsers (ijson, the ldif package): the BOM is skipped and other
    encodings (UTF-16 from Windows tools, cp1252) are transcoded on the fly.
    """
    encoding, bom = sniff_encoding(path, encoding)
    raw = path.open("rb")
    raw.seek(bom)
    if codecs.lookup(encoding).name == "utf-8":
        return raw
    text = io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline="")
    return io.BufferedReader(_Utf8(text))


class _Utf8(io.RawIOBase):
    """The UTF-8 bytes of a text stream (codecs.EncodedFile leaks the raw bytes to readinto)."""

    def __init__(self, text: IO[str]):
        self._text = text
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while len(self._pending) < len(buffer):
            more = self._text.read(16 * 1024)
            if not more:
                break
            self._pending += more.encode("utf-8", "surrogateescape")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._text.close()
        super().close()


def _guess(head: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(head, cp_isolation=list(_LIKELY)).best()
    name = codecs.lookup(best.encoding).name if best else None
    if name in _LATIN and not _fails(head, "cp1252"):
        # Short samples leave the detector torn between Latin code pages; Windows-1252 is
        # what legacy exports from Western Europe and the Americas are written in.
        return "cp1252"
    return name


def _fails(head: bytes, encoding: str) -> bool:
    try:
        head.decode(encoding)
    except UnicodeDecodeError:
        return True
    return False


# Encodings legacy exports are written in; guessing among all of them on a small sample
# picks exotic ones (johab for a German Outlook card).
_LIKELY = ("utf_8", "cp1252", "latin_1", "iso8859_15", "cp1250", "cp1251", "cp850", "cp437", "mac_roman",
           "shift_jis", "euc_jp", "gb18030", "big5", "euc_kr", "koi8_r", "iso8859_2", "iso8859_5")
_LATIN = {codecs.lookup(name).name for name in ("cp1252", "latin_1", "iso8859_15", "cp1250", "cp850", "cp437",
                                                "mac_roman", "iso8859_2")}
