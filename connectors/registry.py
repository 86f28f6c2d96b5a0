"""One registry of connectors keyed by their ``connector:`` name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.base import Source

_SOURCES: dict[str, type[Source]] = {}


def register_source(cls: type[Source]) -> type[Source]:
    """Class decorator: make a Source available under its ``kind``."""
    _SOURCES[cls.kind] = cls
    return cls


def source_kinds() -> list[str]:
    """Every registered ``connector:`` name."""
    _load_builtin()
    return sorted(_SOURCES)


def source_class(kind: str) -> type[Source]:
    """The Source class for a ``connector:`` name; KeyError when unknown."""
    _load_builtin()
    return _SOURCES[kind]


def open_source(name: str, spec: dict[str, Any], base_dir: Path | str = ".") -> Source:
    """Open a source from its migration.yaml spec.

    Example:
        >>> src = open_source("contacts", {"connector": "csv", "path": "tests/data/contacts.csv"})
        >>> src.kind
        'csv'
    """
    cls = source_class(spec["connector"])
    return cls(name, cls.Options.model_validate(spec), Path(base_dir))


#: File extensions and the connector that reads them (for `map suggest FILE` and quick modes).
EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "excel", ".xls": "excel", ".json": "json",
              ".jsonl": "jsonl", ".ndjson": "jsonl", ".vcf": "vcard", ".vcard": "vcard", ".ldif": "ldif"}


def kind_for_path(path: Path) -> str:
    """The connector for a file, by its extension (csv when unknown)."""
    return EXTENSIONS.get(path.suffix.lower(), "csv")


def _load_builtin() -> None:
    # Importing the modules registers them; done lazily so optional parsers load on demand.
    import importlib

    for module in ("csv", "sql", "excel", "json", "vcard", "ldif", "fixed_width"):
        importlib.import_module(f"connectors.{module}")
