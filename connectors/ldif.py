"""LDIF exports of LDAP directories (RFC 2849), parsed entry by entry with the ``ldif`` package.

Columns: ``dn``, then one column per attribute. A multi-valued attribute gives ``mail``,
``mail.2``, ``mail.3``... in file order. The usual person attributes (inetOrgPerson) are
always present and spelled as in the schema whatever case the export used, so a mapping can
name them. A value that is not UTF-8 text (an Active Directory ``objectGUID``) is kept as
hex. Change records (``changetype:``) are rejected as ``ldif_change_record``: they describe
edits to a directory, not its people.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from ldif import LDIFParser

from connectors._chunks import Reject, Row, nth
from connectors._file import FileSource, TextFileOptions
from connectors._text import open_utf8
from connectors.registry import register_source
from migrate.errors import InputError

#: Person attributes (RFC 4519, RFC 2798) by lower-case name: always present as columns.
PERSON_ATTRIBUTES = {
    name.lower(): name
    for name in (
        "cn", "sn", "givenName", "initials", "displayName", "title", "o", "ou", "mail", "telephoneNumber",
        "mobile", "homePhone", "facsimileTelephoneNumber", "street", "postalAddress", "l", "st", "postalCode",
        "c", "co", "employeeNumber", "uid", "description", "modifyTimestamp",
    )
}
#: Columns every chunk has; mappings may list the second value of the common multi-valued ones.
FIXED_COLUMNS = ("dn", *PERSON_ATTRIBUTES.values(), "mail.2", "telephoneNumber.2")

#: Binary and secret attributes: photos, certificates and password hashes have no place in a CRM.
DEFAULT_SKIPPED = [
    "jpegPhoto", "photo", "thumbnailPhoto", "audio", "userCertificate", "cACertificate",
    "userSMIMECertificate", "userPKCS12", "userPassword", "unicodePwd",
]


class LdifOptions(TextFileOptions):
    """Options of ``connector: ldif``. ``skip_attributes`` are left out (any ``;option``)."""

    skip_attributes: list[str] = DEFAULT_SKIPPED


@register_source
class LdifSource(FileSource):
    """An LDIF file of entry records; each entry is one row."""

    kind = "ldif"
    Options = LdifOptions
    fixed_columns = FIXED_COLUMNS
    options: LdifOptions

    def records(self) -> Iterator[Row | Reject]:
        skipped = {name.lower() for name in self.options.skip_attributes}
        with open_utf8(self.path, self.options.encoding) as fh:
            for line_no, block in _blocks(fh, self.path):
                record = _entry(f"line {line_no}", block, skipped)
                if record is not None:
                    yield record


def _blocks(lines: Iterable[bytes], path: Path) -> Iterator[tuple[int, list[bytes]]]:
    """Records (runs of lines up to a blank line) with the number of their first line.

    Splitting here, not in the parser, gives every entry its line number and lets one bad
    entry be rejected without losing the rest of the file.
    """
    block: list[bytes] = []
    start = 0
    checked = False
    for n, raw in enumerate(lines, 1):
        line = raw.rstrip(b"\r\n")
        if not line:
            if block:
                yield start, block
                block, start = [], 0
            continue
        if not checked and not line.startswith(b"#"):
            # The first real line decides the format: refuse other files before reading them whole.
            if not line.lower().startswith((b"dn:", b"version:")):
                found = line[:20].decode("utf-8", "replace")
                raise InputError(f"{path}: not LDIF (line {n} starts with {found!r}, not dn:)")
            checked = True
        if not start and not line.startswith(b"#"):
            start = n
        block.append(raw)
    if block:
        yield start, block


def _entry(ref: str, block: list[bytes], skipped: set[str]) -> Row | Reject | None:
    text = b"".join(block)
    for line in block:
        if line.lower().startswith(b"changetype:"):
            kind = line.split(b":", 1)[1].strip().decode("ascii", "replace")
            return Reject(ref, "ldif_change_record", text.decode("utf-8", "replace"),
                          f"changetype: {kind} is a change to a directory, not an entry")
    try:
        records = list(LDIFParser(io.BytesIO(text), encoding="utf-8").parse())
    except ValueError as exc:  # includes bad base64 (binascii.Error)
        return Reject(ref, "ldif_syntax_error", text.decode("utf-8", "replace"), str(exc))
    values: dict[str, object] = {}
    for dn, attributes in records:
        if dn is None:
            continue  # the "version: 1" line before the first entry
        values["dn"] = dn
        for name, found in attributes.items():
            if name.split(";", 1)[0].lower() in skipped:
                continue
            column = PERSON_ATTRIBUTES.get(name.lower(), name)
            for i, value in enumerate(found, 1):
                values[nth(column, i)] = value.hex() if isinstance(value, bytes) else value
    return Row(ref, values) if values else None
