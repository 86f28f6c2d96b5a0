"""Sources (legacy systems) and targets (the new CRM).

Public entry points: :func:`open_source` and the :class:`Source` contract.
"""

from __future__ import annotations

from connectors.base import SOURCE_REF, Chunk, Source, SourceOptions, empty_rejects
from connectors.registry import open_source, register_source, source_class, source_kinds

__all__ = [
    "SOURCE_REF",
    "Chunk",
    "Source",
    "SourceOptions",
    "empty_rejects",
    "open_source",
    "register_source",
    "source_class",
    "source_kinds",
]
