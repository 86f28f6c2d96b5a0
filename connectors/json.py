"""JSON documents (``connector: json``) and JSON Lines files (``connector: jsonl``).

Nested fields are flattened to dotted paths a mapping can name: ``{"address": {"city":
"Leeds"}, "emails": ["a@x.org"]}`` gives columns ``address.city`` and ``emails.0``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ijson

from connectors._chunks import Reject, Row
from connectors._file import FileSource, TextFileOptions
from connectors._text import has_bad_bytes, open_text, open_utf8, shown
from connectors.registry import register_source
from migrate.errors import InputError


class JsonOptions(TextFileOptions):
    """Options of ``connector: json``.

    ``records`` is the dotted path of the list of records inside the document
    (``results`` for ``{"results": [...]}``); leave it out when the document is a list.
    """

    records: str | None = None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested objects and lists into one level of dotted paths.

    Empty objects and lists give no column: there is nothing in them to map.

    Example:
        >>> flatten({"name": "Ann", "address": {"city": "Leeds"}, "emails": ["a@x.org", "b@x.org"]})
        {'name': 'Ann', 'address.city': 'Leeds', 'emails.0': 'a@x.org', 'emails.1': 'b@x.org'}
    """
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, inner in items:
        out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _record(ref: str, item: Any) -> Row | Reject:
    if isinstance(item, dict):
        return Row(ref, flatten(item))
    return Reject(ref, "not_an_object", json.dumps(item, ensure_ascii=False),
                  f"expected an object, found {type(item).__name__}")


@register_source
class JsonSource(FileSource):
    """A JSON document holding a list of records, parsed as a stream (ijson)."""

    kind = "json"
    columns_vary = True
    Options = JsonOptions
    options: JsonOptions

    def records(self) -> Iterator[Row | Reject]:
        path, wanted = self.path, self.options.records
        prefix = f"{wanted}.item" if wanted else "item"
        seen: dict[str, Any] = {}
        n = 0
        with open_utf8(path, self.options.encoding) as fh:
            try:
                events = _watch(ijson.parse(fh, use_float=True), wanted or "", seen)
                for n, item in enumerate(ijson.items(events, prefix), 1):
                    yield _record(f"record {n}", item)
            except ijson.JSONError as exc:
                where = f"after record {n}" if n else "at the start"
                raise InputError(f"{path}: not valid JSON {where} ({str(exc).splitlines()[0]})") from None
        if not seen.get("list"):
            if wanted:
                raise InputError(f"{path}: no list of records at records: {wanted}")
            lists = seen.get("lists", [])
            hint = f" (lists here: {', '.join(lists)})" if lists else ""
            raise InputError(f"{path}: the document is not a list of records; "
                             f"set records: to the key of the list{hint}")


def _watch(events: Iterator[tuple[str, str, Any]], path: str, seen: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    # Notes whether the list of records exists, and which top-level keys hold lists (for the hint).
    for prefix, event, value in events:
        if event == "start_array":
            if prefix == path:
                seen["list"] = True
            elif prefix and "." not in prefix:
                seen.setdefault("lists", []).append(prefix)
        yield prefix, event, value


@register_source
class JsonLinesSource(FileSource):
    """A JSON Lines file: one object per line; a line that is not JSON is rejected."""

    kind = "jsonl"
    columns_vary = True
    Options = TextFileOptions
    options: TextFileOptions

    def records(self) -> Iterator[Row | Reject]:
        first = True
        with open_text(self.path, self.options.encoding) as fh:
            for n, line in enumerate(fh, 1):
                text = line.strip()
                if not text:
                    continue
                ref = f"line {n}"
                if has_bad_bytes(text):
                    yield Reject(ref, "bad_encoding", shown(text), f"bytes not valid in {fh.encoding}")
                    continue
                try:
                    item = json.loads(text)
                except json.JSONDecodeError as exc:
                    if first:
                        # A first line that is not JSON means the wrong file, not a bad row.
                        raise InputError(f"{self.path}: not JSON Lines (line {n}: {exc.msg})") from None
                    yield Reject(ref, "bad_json", text, f"{exc.msg} at column {exc.colno}")
                    continue
                first = False
                yield _record(ref, item)
