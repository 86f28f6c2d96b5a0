"""Excel workbooks: ``.xlsx``/``.xlsm`` streamed with openpyxl (read-only), ``.xls`` with xlrd.

Columns are the header cells (trimmed; a blank header is ``column_F`` after its letter, a
repeated one ``Email.2``); rows are referenced as Excel numbers them (``row 17``). The
header row is the first of the top rows whose cells are all text and fill at least half
the table's width, so title rows and export notes above it are skipped; ``header_row`` sets
it instead. Fully empty rows are skipped.

Values keep their Excel type (text, int, float, bool), with two exceptions:

- Dates (date-formatted cells, and numbers in date columns: Excel serial dates such as
  29281 where the column lost its date format) become ISO text ``1980-02-29``, or
  ``1980-02-29T13:45:00`` with a time.
- Numbers in code columns (phones, postcodes) become their digits as text, zero-padded
  where the cell's number format pads (``00000``). A number shorter than the text values
  above it in its column lost its leading zero when Excel read it: the row is rejected
  as ``lost_leading_zero``, since no one can tell which digits are missing.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any

from pydantic import Field as PydanticField

from connectors._chunks import Reject, Row, nth
from connectors._file import FileOptions, FileSource
from connectors._text import require_file
from connectors.registry import register_source
from migrate.errors import InputError

#: Top rows searched for the header row.
HEADER_SCAN_ROWS = 30
#: Largest Excel serial date (9999-12-31).
MAX_SERIAL = 2_958_465

# Header words in the languages of the exports seen so far (English, German, French, Spanish).
_DATE_HEADER = re.compile(r"date|dob|birth|born|since|created|modified|updated|datum|fecha", re.IGNORECASE)
_CODE_HEADER = re.compile(r"phone|mobil|fax|\btel\b|telef|t[eé]l[eé]ph|zip|post\s*code|postal|\bplz\b", re.IGNORECASE)
_ZERO_PAD = re.compile(r"^0+$")

#: A cell as both backends give it: its value and its number format.
Cell = tuple[Any, str]


class ExcelOptions(FileOptions):
    """Options of ``connector: excel``.

    ``sheet`` is a sheet name or 0-based position (default: the first sheet).
    ``header_row`` is the header's row number as Excel shows it (default: detected).
    ``date_columns`` and ``text_columns`` name the date and code columns (default: the
    headers that name a date, or a phone, fax or postcode).
    """

    sheet: str | int | None = None
    header_row: int | None = PydanticField(default=None, ge=1)
    date_columns: list[str] | None = None
    text_columns: list[str] | None = None


@register_source
class ExcelSource(FileSource):
    """One sheet of an Excel workbook, read as a table under its header row."""

    kind = "excel"
    Options = ExcelOptions
    options: ExcelOptions

    def describe(self) -> str:
        sheet = f" sheet {self.options.sheet!r}" if self.options.sheet is not None else ""
        return f"excel {self.options.path}{sheet}"

    def records(self) -> Iterator[Row | Reject]:
        sheet = _open_sheet(require_file(self.path), self.options.sheet)
        rows = sheet.rows
        scanned = list(islice(rows, max(HEADER_SCAN_ROWS, self.options.header_row or 0)))
        header_at = self.options.header_row or _find_header(scanned)
        if header_at is None:
            raise InputError(f"{self.path}: no header row in the first {HEADER_SCAN_ROWS} rows of sheet "
                             f"{sheet.name!r}; set header_row, or sheet (sheets: {', '.join(sheet.names)})")
        header = _names([value for value, _ in dict(scanned).get(header_at, [])])
        table = _Table(
            header,
            dates=_chosen(header, self.options.date_columns, _DATE_HEADER),
            codes=_CodeColumns(_chosen(header, self.options.text_columns, _CODE_HEADER)),
            epoch=sheet.epoch,
        )
        for number, cells in chain(scanned, rows):
            if number > header_at and not all(_blank(v) for v, _ in cells):
                yield table.record(f"row {number}", cells)


class _Table:
    """Turns the cells of a data row into a row under the header, or a reject."""

    def __init__(self, header: list[str], dates: set[str], codes: _CodeColumns, epoch: dt.datetime):
        self.header, self.dates, self.codes, self.epoch = header, dates, codes, epoch

    def record(self, ref: str, cells: list[Cell]) -> Row | Reject:
        values: dict[str, Any] = {}
        for i, (value, fmt) in enumerate(cells):
            name = self.header[i] if i < len(self.header) else f"column_{_letter(i)}"
            if i >= len(self.header) and _blank(value):
                continue  # stray formatting right of the table
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # Excel stores every number as a float: 1001.0 is 1001
            if name in self.dates:
                value = _date(value, self.epoch)
            elif name in self.codes.names:
                value = self.codes.read(name, value, fmt)
                if isinstance(value, _LostZero):
                    return Reject(ref, "lost_leading_zero", value.digits, value.detail)
            values[name] = _iso(value) if isinstance(value, (dt.date, dt.time)) else value
        return Row(ref, values)


@dataclass(frozen=True)
class _Sheet:
    name: str
    names: list[str]
    rows: Iterator[tuple[int, list[Cell]]]  # (Excel row number, cells)
    epoch: dt.datetime


@dataclass(frozen=True)
class _LostZero:
    digits: str
    detail: str


class _CodeColumns:
    """Turns numbers in code columns back into digits and spots lost leading zeros.

    Judging a number against the text values above it keeps memory bounded: one counter of
    digit lengths per code column.
    """

    def __init__(self, names: set[str]):
        self.names = names
        self.lengths: dict[str, Counter[int]] = {name: Counter() for name in names}

    def read(self, name: str, value: Any, fmt: str) -> Any:
        if isinstance(value, str):
            digits = sum(ch.isdigit() for ch in value)
            if digits:
                self.lengths[name][digits] += 1
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            return value
        text = str(int(value))
        if _ZERO_PAD.match(fmt or ""):
            return text.zfill(len(fmt))  # the cell's format shows the zeros: nothing was lost
        usual = self.lengths[name].most_common(1)
        if usual and len(text) < usual[0][0]:
            return _LostZero(text, f"column {name!r}: the number {text} is shorter than the column's other values "
                                   f"({usual[0][0]} digits): Excel dropped its leading zero; store the column as text")
        return text


def _open_sheet(path: Path, sheet: str | int | None) -> _Sheet:
    """The chosen sheet's rows, name and date epoch, whatever the workbook's format."""
    with path.open("rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"PK\x03\x04"):
        return _xlsx(path, sheet)
    if magic == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return _xls(path, sheet)
    hint = "; it is text: use connector: csv" if magic and all(32 <= b < 127 or b in (9, 10, 13) for b in magic) else ""
    raise InputError(f"{path}: not an Excel workbook (neither .xlsx nor .xls){hint}")


def _xlsx(path: Path, sheet: str | int | None) -> _Sheet:
    import zipfile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise InputError(f"{path}: not a readable .xlsx workbook ({exc})") from None
    name = _sheet_name(path, book.sheetnames, sheet)
    ws = book[name]
    # Some exporters write a wrong <dimension>; without a reset read-only mode trusts it.
    ws.reset_dimensions()

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        try:
            for number, row in enumerate(ws.iter_rows(), 1):
                yield number, [(c.value, c.number_format or "General") for c in row]
        finally:
            book.close()

    return _Sheet(name, book.sheetnames, rows(), book.epoch)


def _xls(path: Path, sheet: str | int | None) -> _Sheet:
    import xlrd

    try:
        # .xls sheets are at most 65,536 rows, and xlrd can only read a sheet whole.
        book = xlrd.open_workbook(str(path), on_demand=True, formatting_info=True)
    except xlrd.XLRDError as exc:
        raise InputError(f"{path}: not a readable .xls workbook ({exc})") from None
    name = _sheet_name(path, book.sheet_names(), sheet)
    ws = book.sheet_by_name(name)
    epoch = dt.datetime(1904, 1, 1) if book.datemode else dt.datetime(1899, 12, 30)

    def cell(c: Any) -> Cell:
        fmt = book.format_map[book.xf_list[c.xf_index].format_key].format_str
        if c.ctype == xlrd.XL_CELL_DATE:
            return xlrd.xldate.xldate_as_datetime(c.value, book.datemode), fmt
        if c.ctype == xlrd.XL_CELL_BOOLEAN:
            return bool(c.value), fmt
        return (None if c.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK) else c.value), fmt

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        try:
            for i in range(ws.nrows):
                yield i + 1, [cell(c) for c in ws.row(i)]
        finally:
            book.release_resources()

    return _Sheet(name, book.sheet_names(), rows(), epoch)


def _sheet_name(path: Path, names: list[str], sheet: str | int | None) -> str:
    if sheet is None:
        return names[0]
    if isinstance(sheet, int):
        if 0 <= sheet < len(names):
            return names[sheet]
        raise InputError(f"{path}: no sheet {sheet} (0-based; the workbook has {len(names)})")
    if sheet in names:
        return sheet
    raise InputError(f"{path}: no sheet {sheet!r} (sheets: {', '.join(names)})")


def _find_header(rows: list[tuple[int, list[Cell]]]) -> int | None:
    """The first row of text cells at least half as wide as the widest row."""
    filled = [(number, [v for v, _ in cells if not _blank(v)]) for number, cells in rows]
    width = max((len(values) for _, values in filled), default=0)
    for number, values in filled:
        if len(values) >= max(2, width / 2) and all(isinstance(v, str) for v in values):
            return number
    return None


def _names(cells: list[Any]) -> list[str]:
    names: list[str] = []
    seen: Counter[str] = Counter()
    for i, value in enumerate(cells):
        name = str(value).strip() if not _blank(value) else f"column_{_letter(i)}"
        seen[name] += 1
        names.append(nth(name, seen[name]))
    return names


def _chosen(header: list[str], given: list[str] | None, pattern: re.Pattern[str]) -> set[str]:
    return set(given) if given is not None else {name for name in header if pattern.search(name)}


def _date(value: Any, epoch: dt.datetime) -> Any:
    """An Excel serial date (a number in a date column) as a datetime; others unchanged."""
    from openpyxl.utils.datetime import from_excel

    if isinstance(value, (int, float)) and not isinstance(value, bool) and 1 <= value <= MAX_SERIAL:
        return from_excel(value, epoch)
    return value


def _iso(value: dt.date | dt.time) -> str:
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    return value.isoformat()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _letter(index: int) -> str:
    """Excel's column letter for a 0-based index: 0 → A, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = string.ascii_uppercase[rest] + letters
    return letters
