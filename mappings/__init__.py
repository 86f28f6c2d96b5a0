"""Mapping specs (YAML) and the bundled templates for common exports.

Public entry points: :func:`load_mapping`, :func:`apply_mapping`, :func:`template_names`.
"""

from __future__ import annotations

from pathlib import Path

from mappings.apply import apply_mapping
from mappings.canonical import CANONICAL_FIELDS, GOLDEN_ATTRIBUTES, MAPPABLE_FIELDS
from mappings.spec import FieldSpec, MappingSpec

TEMPLATES_DIR = Path(__file__).parent / "templates"


def template_names() -> list[str]:
    """Names of the bundled mapping templates (``outlook_csv``, ``vcard``...)."""
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.yaml"))


def mapping_path(ref: str, base_dir: Path) -> Path | None:
    """Resolve a ``mapping:`` reference: a bundled template name or a YAML file path."""
    if ref in template_names():
        return TEMPLATES_DIR / f"{ref}.yaml"
    path = Path(ref).expanduser()
    path = path if path.is_absolute() else base_dir / path
    return path if path.is_file() else None


__all__ = [
    "CANONICAL_FIELDS",
    "GOLDEN_ATTRIBUTES",
    "MAPPABLE_FIELDS",
    "FieldSpec",
    "MappingSpec",
    "TEMPLATES_DIR",
    "apply_mapping",
    "mapping_path",
    "template_names",
]
