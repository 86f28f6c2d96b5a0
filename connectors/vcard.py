"""vCard files (2.1, 3.0, 4.0), read card by card with vobject.

Column scheme (every chunk has the first group, empty where a card lacks it):

- ``FN``, ``N.family``, ``N.given``, ``N.additional``, ``N.prefix``, ``N.suffix``
- ``ORG`` (organisation name), ``ORG.unit`` (units, ``; ``-joined), ``TITLE``, ``NOTE``,
  ``UID``, ``REV``, ``VERSION``
- ``BDAY`` as ISO ``YYYY-MM-DD``, or ``--MM-DD`` without a year (4.0 ``--0415``, Apple's
  ``X-APPLE-OMIT-YEAR``); a text birthday (4.0 ``VALUE=text``) is kept as written
- numbered properties, preferred first (2.1 ``PREF``, 3.0 ``TYPE=pref``, 4.0 ``PREF=1``),
  then in file order: ``TEL.1``, ``TEL.1.type`` (lower-case types without ``pref``,
  comma-joined: ``cell``, ``work,voice``), ``EMAIL.n`` / ``EMAIL.n.type``, ``URL.n``,
  ``IMPP.n``, ``ADR.n.box|extended|street|city|region|code|country`` and ``ADR.n.type``.
  4.0 ``tel:`` URIs lose their scheme.
- any other property under its name (``NICKNAME``, ``X-SKYPE``...); repeats as ``NAME.2``.

Photos, logos, sounds and keys are left out: binaries have no place in a CRM row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import vobject
from vobject.base import ContentLine, VObjectError

from connectors._chunks import Reject, Row, nth
from connectors._file import FileSource, TextFileOptions
from connectors._text import has_bad_bytes, open_text, shown
from connectors.registry import register_source
from migrate.errors import InputError

N_PARTS = ("family", "given", "additional", "prefix", "suffix")
ADR_PARTS = ("box", "extended", "street", "city", "region", "code", "country")
NUMBERED = ("TEL", "EMAIL", "ADR", "URL", "IMPP")
SKIPPED = frozenset({"PHOTO", "LOGO", "SOUND", "KEY"})

#: Columns every chunk has, so mappings and templates can name them.
FIXED_COLUMNS = (
    "FN", *(f"N.{p}" for p in N_PARTS), "ORG", "ORG.unit", "TITLE", "BDAY", "UID", "REV", "NOTE",
    *(f"{prop}.{i}{part}" for prop in ("EMAIL", "TEL") for i in (1, 2, 3) for part in ("", ".type")),
    *(f"ADR.1.{p}" for p in (*ADR_PARTS, "type")),
)

_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})(?:T.*)?$")
_NO_YEAR = re.compile(r"^--(\d{2})-?(\d{2})$")


@register_source
class VcardSource(FileSource):
    """A file of vCards; each card is one row, referenced by the line of its ``BEGIN:VCARD``."""

    kind = "vcard"
    Options = TextFileOptions
    fixed_columns = FIXED_COLUMNS
    options: TextFileOptions

    def records(self) -> Iterator[Row | Reject]:
        with open_text(self.path, self.options.encoding) as fh:
            for item in _cards(fh, self.path):
                if isinstance(item, Reject):
                    yield item
                    continue
                ref, text = item
                if has_bad_bytes(text):
                    yield Reject(ref, "bad_encoding", shown(text), f"bytes not valid in {fh.encoding}")
                    continue
                yield card_row(ref, text)


def _cards(lines: Iterable[str], path: Path) -> Iterator[tuple[str, str] | Reject]:
    """The text of each card with its reference; broken framing becomes a reject.

    Splitting here (vobject reads a whole stream at once unless asked for QP) keeps memory
    bounded and lets one broken card be rejected while the rest are read.
    """
    card: list[str] = []
    start = 0
    seen_card = False
    for n, line in enumerate(lines, 1):
        tag = line.strip().upper()
        if tag == "BEGIN:VCARD":
            if card:
                yield Reject(f"line {start}", "vcard_unterminated", shown("".join(card)),
                             "no END:VCARD before the next card")
            card, start, seen_card = [line], n, True
        elif card:
            card.append(line)
            if tag == "END:VCARD":
                yield f"line {start}", "".join(card)
                card = []
        elif tag:
            if not seen_card:
                raise InputError(f"{path}: not a vCard file (line {n} is not BEGIN:VCARD)")
            yield Reject(f"line {n}", "vcard_text_outside_card", shown(line.rstrip("\r\n")),
                         "text between END:VCARD and the next BEGIN:VCARD")
    if card:
        yield Reject(f"line {start}", "vcard_unterminated", shown("".join(card)), "the file ends inside this card")
    elif not seen_card:
        raise InputError(f"{path}: not a vCard file (no BEGIN:VCARD)")


def card_row(ref: str, text: str) -> Row | Reject:
    """One card's text as a row in the column scheme of this module, or a reject.

    Example:
        >>> text = "BEGIN:VCARD\\nVERSION:3.0\\nFN:Ann Lee\\nTEL;TYPE=CELL:+44 7700 900123\\nEND:VCARD\\n"
        >>> card_row("line 1", text).values
        {'VERSION': '3.0', 'FN': 'Ann Lee', 'TEL.1': '+44 7700 900123', 'TEL.1.type': 'cell'}
    """
    try:
        card = vobject.readOne(text, allowQP=True)
    except (VObjectError, ValueError, LookupError) as exc:  # LookupError: an unknown CHARSET
        return Reject(ref, "vcard_syntax_error", text, str(exc).strip())
    values: dict[str, Any] = {}
    counts: dict[str, int] = {}
    numbered: dict[str, list[ContentLine]] = {name: [] for name in NUMBERED}
    for line in card.getChildren():
        name = line.name.upper()
        if name in SKIPPED:
            continue
        if name in numbered:
            numbered[name].append(line)
            continue
        counts[name] = counts.get(name, 0) + 1
        column = nth(name, counts[name])
        if name == "N":
            values.update({nth(f"N.{p}", counts[name]): _text(getattr(line.value, p)) for p in N_PARTS})
        elif name == "ORG":
            parts = [_text(p) for p in line.value] if isinstance(line.value, list) else [_text(line.value)]
            values[column] = parts[0]
            values[nth("ORG.unit", counts[name])] = "; ".join(p for p in parts[1:] if p) or None
        elif name == "BDAY":
            values[column] = birthday(_text(line.value), line.params.get("X-APPLE-OMIT-YEAR", [None])[0])
        else:
            values[column] = _text(line.value)
    for name, found in numbered.items():
        for i, line in enumerate(sorted(found, key=_preference), 1):
            if name == "ADR":
                values.update({f"ADR.{i}.{p}": _text(getattr(line.value, p)) for p in ADR_PARTS})
            else:
                value = _text(line.value)
                values[f"{name}.{i}"] = value[4:] if name == "TEL" and value.lower().startswith("tel:") else value
            values[f"{name}.{i}.type"] = ",".join(t for t in _types(line) if t != "pref") or None
    return Row(ref, values)


def birthday(value: str, omitted_year: str | None = None) -> str:
    """A vCard BDAY in ISO form: ``YYYY-MM-DD``, ``--MM-DD`` without a year, else as given.

    Example:
        >>> [birthday(v) for v in ("19800229", "1980-02-29T00:00:00Z", "--0415", "circa 1800")]
        ['1980-02-29', '1980-02-29', '--04-15', 'circa 1800']
    """
    if m := _DATE.match(value):
        year, month, day = m.groups()
        return f"--{month}-{day}" if year == omitted_year else f"{year}-{month}-{day}"
    if m := _NO_YEAR.match(value):
        return f"--{m.group(1)}-{m.group(2)}"
    return value


def _types(line: ContentLine) -> list[str]:
    # 2.1 writes bare parameters (TEL;CELL;PREF), 3.0/4.0 TYPE=a,b or TYPE=a;TYPE=b.
    raw = [*line.params.get("TYPE", []), *line.singletonparams]
    return [t.strip().lower() for value in raw for t in value.split(",") if t.strip()]


def _preference(line: ContentLine) -> int:
    # 4.0 ranks with PREF=1..100; earlier versions only flag a preferred value.
    if "PREF" in line.params:
        try:
            return int(line.params["PREF"][0])
        except ValueError:
            return 1
    return 1 if "pref" in _types(line) else 101


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value if v)
    text = str(value).strip() if value is not None else ""
    return text or None
