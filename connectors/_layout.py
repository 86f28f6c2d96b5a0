"""Record layouts of fixed-width files: where each field sits and how its bytes are stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic import Field as PydanticField

#: How a field's bytes hold its value: ``text`` in the code page, ``zoned`` decimal (one
#: digit per byte, sign overpunched on the last), ``packed`` decimal (COMP-3, two digits per
#: byte, sign in the last nibble), ``binary`` big-endian integer (COMP, COMP-4, COMP-5).
FieldType = Literal["text", "zoned", "packed", "binary"]


@dataclass(frozen=True)
class Field:
    """One field: its column name, 0-based byte offset, byte length and storage.

    ``scale`` is the number of implied decimal places (``V99`` gives 2); ``signed`` only
    matters for binary fields.
    """

    name: str
    offset: int
    length: int
    type: FieldType = "text"
    scale: int = 0
    signed: bool = True


@dataclass(frozen=True)
class Layout:
    """The fields of a record and the record's length in bytes."""

    fields: tuple[Field, ...]
    record_length: int


class _YamlField(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    start: int | None = PydanticField(default=None, ge=1, description="1-based byte position")
    length: int = PydanticField(gt=0)
    type: FieldType = "text"
    scale: int = PydanticField(default=0, ge=0)
    signed: bool = True


class _YamlLayout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record_length: int | None = PydanticField(default=None, gt=0)
    fields: list[_YamlField] = PydanticField(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> _YamlLayout:
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"field names repeat: {', '.join(dupes)}")
        return self


def layout_from_yaml(data: object) -> Layout:
    """A layout from its YAML form; ValueError with the key path on a mistake.

    Fields without ``start`` follow the previous one; ``record_length`` defaults to the end
    of the last field.

    Example:
        >>> layout_from_yaml({"fields": [{"name": "ID", "length": 6}, {"name": "AMOUNT", "length": 5,
        ...     "type": "packed", "scale": 2}]}).record_length
        11
    """
    try:
        spec = _YamlLayout.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "layout"
        raise ValueError(f"{where}: {first['msg']}") from None
    fields = []
    offset = 0
    for f in spec.fields:
        offset = f.start - 1 if f.start is not None else offset
        fields.append(Field(f.name, offset, f.length, f.type, f.scale, f.signed))
        offset += f.length
    end = max(f.offset + f.length for f in fields)
    length = spec.record_length or end
    if length < end:
        raise ValueError(f"record_length: {length} is shorter than the fields, which end at byte {end}")
    return Layout(tuple(fields), length)
