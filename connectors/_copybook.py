"""A small COBOL copybook reader: enough of the data division to lay out a flat record.

No maintained package reads copybooks correctly (``copybook`` on PyPI drops the sign and
COMP-3 flags and sizes packed fields by digits, not bytes), so this one covers what record
layouts use: levels and groups, ``PIC`` with ``X A 9 S V`` and repeats (``9(7)V99``),
numeric-edited pictures (read as text), ``USAGE`` DISPLAY / COMP-3 / COMP / COMP-4 / COMP-5 /
BINARY (also inherited from a group), ``SIGN LEADING|TRAILING SEPARATE``, fixed ``OCCURS``
and ``REDEFINES``. Fixed-format columns (sequence area 1-6, indicator 7, text 8-72) and
free format are both read. Variable records (``OCCURS DEPENDING ON``), floating point
(COMP-1, COMP-2) and ``P`` scaling are refused with the line that uses them.

Columns: elementary items by name (FILLER left out); repeats of an ``OCCURS`` get ``.1``,
``.2``... (nested: ``.1.2``); a name used in two groups is qualified by its group
(``HOME-ADDR.CITY``). A ``REDEFINES`` is another view of bytes already read, and is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from connectors._layout import Field, FieldType, Layout

_TOKEN = re.compile(r"'(?:[^']|'')*'\.?|\"(?:[^\"]|\"\")*\"\.?|\S+")
_REPEAT = re.compile(r"(.)\((\d+)\)")
_NUMERIC = re.compile(r"^S?9*(V9*)?$")
_BINARY = {"COMP", "COMP-4", "COMP-5", "BINARY", "COMPUTATIONAL", "COMPUTATIONAL-4", "COMPUTATIONAL-5"}
_PACKED = {"COMP-3", "COMPUTATIONAL-3", "PACKED-DECIMAL"}
_FLOAT = {"COMP-1", "COMP-2", "COMPUTATIONAL-1", "COMPUTATIONAL-2"}
_USAGES = _BINARY | _PACKED | _FLOAT | {"DISPLAY"}
# Clauses that change nothing about where bytes sit or how they are read.
_IGNORED = {"JUST", "JUSTIFIED", "RIGHT", "LEFT", "BLANK", "WHEN", "ZERO", "ZEROS", "ZEROES", "SYNC",
            "SYNCHRONIZED", "EXTERNAL", "GLOBAL", "IS", "CHARACTER"}


@dataclass
class _Item:
    level: int
    name: str
    line: int
    pic: str | None = None
    usage: str | None = None
    occurs: int = 1
    redefines: str | None = None
    sign_separate: bool = False
    children: list[_Item] = field(default_factory=list)


def parse_copybook(text: str) -> Layout:
    """The layout of the (single) 01 record a copybook describes.

    Raises ValueError naming the line on anything it cannot lay out.

    Example:
        >>> book = '''
        ...        01  CUSTOMER.
        ...            05  CUST-ID      PIC 9(6).
        ...            05  BALANCE      PIC S9(7)V99 COMP-3.
        ... '''
        >>> [(f.name, f.offset, f.length, f.type, f.scale) for f in parse_copybook(book).fields]
        [('CUST-ID', 0, 6, 'zoned', 0), ('BALANCE', 6, 5, 'packed', 2)]
    """
    roots = _tree([_item(s, line) for s, line in _sentences(text)])
    if not roots:
        raise ValueError("no 01 record found")
    if len(roots) > 1:
        raise ValueError(f"line {roots[1].line}: a second 01 record; give one layout per record type")
    fields: list[tuple[Field, str]] = []
    length = _place(roots[0], 0, None, "", fields)
    return Layout(tuple(_named(fields)), length)


def _sentences(text: str) -> list[tuple[list[str], int]]:
    """Period-terminated sentences as tokens, with the line each starts on."""
    out: list[tuple[list[str], int]] = []
    tokens: list[str] = []
    start = 0
    lines = text.splitlines()
    fixed = all(_fixed_format(raw) for raw in lines if raw.strip())
    for n, raw in enumerate(lines, 1):
        if fixed:
            if len(raw) < 7 or raw[6] in "*/":
                continue
            line = raw[7:72]
        elif raw.lstrip().startswith("*"):
            continue
        else:
            line = raw
        line = line.split("*>", 1)[0]
        for token in _TOKEN.findall(line):
            if not tokens:
                start = n
            if token.endswith(".") and token != ".":
                tokens.append(token[:-1])
                token = "."
            if token == ".":
                out.append((tokens, start))
                tokens = []
            else:
                tokens.append(token)
    if tokens:
        raise ValueError(f"line {start}: the last entry has no closing period")
    return out


def _fixed_format(raw: str) -> bool:
    # Columns 1-6 are a sequence number (or blank), column 7 an indicator.
    return len(raw) > 6 and not raw[:6].strip(" 0123456789") and raw[6] in " *-/D"


def _item(tokens: list[str], line: int) -> _Item | None:
    if not tokens[0].isdigit():
        raise ValueError(f"line {line}: expected a level number, found {tokens[0]!r}")
    level = int(tokens[0])
    if level in (66, 88):
        return None  # RENAMES and condition names describe no bytes of their own
    words = [t.upper() for t in tokens[1:]]
    keywords = {"PIC", "PICTURE", "USAGE", "OCCURS", "REDEFINES", "VALUE", "VALUES", "SIGN", "LEADING", "TRAILING",
                "SEPARATE"} | _USAGES | _IGNORED
    if words and words[0] not in keywords:
        name, i = tokens[1], 1
    else:
        name, i = "FILLER", 0
    item = _Item(level=1 if level == 77 else level, name=name, line=line)
    while i < len(words):
        word = words[i]
        i += 1
        if word in ("PIC", "PICTURE"):
            i += i < len(words) and words[i] == "IS"
            if i >= len(words):
                raise ValueError(f"line {line}: {name}: PIC without a picture")
            item.pic = words[i]
            i += 1
        elif word == "USAGE":
            continue
        elif word in _USAGES:
            item.usage = word
        elif word == "OCCURS":
            if i >= len(words) or not words[i].isdigit():
                raise ValueError(f"line {line}: {name}: OCCURS needs a number of times")
            item.occurs = int(words[i])
            if "DEPENDING" in words:
                raise ValueError(f"line {line}: {name}: OCCURS DEPENDING ON (variable-length records) is not supported")
            i += 1 + (i + 1 < len(words) and words[i + 1] == "TIMES")
        elif word == "REDEFINES" and i < len(words):
            item.redefines = words[i]
            i += 1
        elif word in ("VALUE", "VALUES"):
            break  # initial values do not change the layout
        elif word == "SEPARATE":
            item.sign_separate = True  # SIGN [IS] LEADING|TRAILING SEPARATE: the sign takes a byte
        elif word in ("SIGN", "LEADING", "TRAILING") or word in _IGNORED:
            continue
        else:
            raise ValueError(f"line {line}: {name}: cannot read {tokens[i]!r}")
    return item


def _tree(items: list[_Item | None]) -> list[_Item]:
    roots: list[_Item] = []
    stack: list[_Item] = []
    for item in items:
        if item is None:
            continue
        while stack and stack[-1].level >= item.level:
            stack.pop()
        if stack:
            if stack[-1].pic is not None:
                raise ValueError(f"line {item.line}: {stack[-1].name} has a PIC, so it cannot hold {item.name}")
            stack[-1].children.append(item)
        elif item.level == 1:
            roots.append(item)
        else:
            raise ValueError(f"line {item.line}: {item.name} comes before any 01 record")
        stack.append(item)
    return roots


def _place(item: _Item, offset: int, usage: str | None, suffix: str, out: list[tuple[Field, str]]) -> int:
    """Append the item's fields (with their group's name) and return the bytes it spans."""
    usage = item.usage or usage
    size = 0
    for n in range(1, item.occurs + 1):
        tag = f"{suffix}.{n}" if item.occurs > 1 else suffix
        if item.pic is not None:
            one = _elementary(item, offset + size, usage, tag)
            if item.name.upper() != "FILLER":
                out.append((one, ""))
            size += one.length
            continue
        at = offset + size
        for child in item.children:
            placed: list[tuple[Field, str]] = []
            width = _place(child, at, usage, tag, placed)
            if child.redefines is None:
                out.extend((f, group or item.name) for f, group in placed)
                at += width
        size = at - offset
    return size


def _elementary(item: _Item, offset: int, usage: str | None, suffix: str) -> Field:
    pic = _REPEAT.sub(lambda m: m.group(1) * int(m.group(2)), item.pic or "")
    name = item.name + suffix
    if usage in _FLOAT:
        raise ValueError(f"line {item.line}: {item.name}: {usage} (floating point) is not supported")
    if "P" in pic:
        raise ValueError(f"line {item.line}: {item.name}: PIC {item.pic} uses P scaling, which is not supported")
    if not _NUMERIC.match(pic) or "9" not in pic:
        if usage not in (None, "DISPLAY"):
            raise ValueError(f"line {item.line}: {item.name}: PIC {item.pic} cannot be {usage}")
        return Field(name, offset, len(pic))  # X, A and numeric-edited pictures are display text
    digits = pic.count("9")
    scale = len(pic.split("V")[1]) if "V" in pic else 0
    signed = pic.startswith("S")
    kind: FieldType
    if usage in _PACKED:
        kind, length = "packed", digits // 2 + 1
    elif usage in _BINARY:
        kind, length = "binary", 2 if digits <= 4 else 4 if digits <= 9 else 8
    else:
        kind, length = "zoned", digits + (signed and item.sign_separate)
    return Field(name, offset, length, kind, scale, signed)


def _named(fields: list[tuple[Field, str]]) -> list[Field]:
    """Fields with unique column names: a repeated name is qualified by its group."""
    bare = [f.name for f, _ in fields]
    named = [
        Field(f"{group}.{f.name}", f.offset, f.length, f.type, f.scale, f.signed) if bare.count(f.name) > 1 else f
        for f, group in fields
    ]
    names = [f.name for f in named]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"field names repeat even within their groups: {', '.join(dupes)}")
    return named
