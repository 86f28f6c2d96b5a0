"""Mapping specs: which source column feeds which canonical field, through which transforms."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mappings.canonical import LIST_FIELDS, MAPPABLE_FIELDS


class FieldSpec(BaseModel):
    """How one canonical field is fed. A bare column name in YAML is ``{column: NAME}``.

    Transforms run in this order: take ``column`` (or ``columns`` joined by ``join``), apply
    ``regex`` (first group, or the whole match), ``split``/``index``, ``map`` (value map),
    ``format`` (a strptime date format), then ``default`` where still empty.
    """

    model_config = ConfigDict(extra="forbid")

    column: str | None = None
    columns: list[str] | None = None
    join: str = " "
    value: Any = None
    regex: str | None = None
    split: str | None = None
    index: int = 0
    map: dict[str, Any] | None = None
    format: str | None = None
    default: Any = None

    @model_validator(mode="after")
    def _one_input(self) -> FieldSpec:
        given = [k for k in ("column", "columns", "value") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'column', 'columns' or 'value'")
        if self.regex is not None:
            import re

            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from None
        return self

    def source_columns(self) -> list[str]:
        """The source columns this field reads."""
        if self.column is not None:
            return [self.column]
        return list(self.columns or [])


class MappingSpec(BaseModel):
    """A mapping: the source's id column(s), its change timestamp and the field map.

    Example:
        >>> spec = MappingSpec.model_validate({"id": "cust_no", "fields": {"last_name": "SURNAME"}})
        >>> spec.fields["last_name"].column
        'SURNAME'
    """

    model_config = ConfigDict(extra="forbid")

    id: str | list[str] | None = None
    updated_at: str | None = None
    fields: dict[str, FieldSpec | list[FieldSpec]] = Field(default_factory=dict)

    @field_validator("fields", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for name, spec in value.items():
            if name not in MAPPABLE_FIELDS:
                hint = difflib.get_close_matches(str(name), MAPPABLE_FIELDS, n=1)
                raise ValueError(
                    f"unknown canonical field {name!r}"
                    + (f"; did you mean {hint[0]!r}?" if hint else f"; expected one of {', '.join(MAPPABLE_FIELDS)}")
                )
            if isinstance(spec, list):
                if name not in LIST_FIELDS:
                    raise ValueError(
                        f"field {name!r} takes one column; use {{columns: [...], join: ' '}} to combine several")
                out[name] = [{"column": s} if isinstance(s, str) else s for s in spec]
            else:
                out[name] = {"column": spec} if isinstance(spec, str) else spec
        return out

    def id_columns(self) -> list[str]:
        """The source columns that make up the source id (empty: the row reference is used)."""
        if self.id is None:
            return []
        return [self.id] if isinstance(self.id, str) else list(self.id)

    def field_specs(self) -> list[tuple[str, FieldSpec]]:
        """Every (canonical field, spec) pair, list fields flattened in order."""
        pairs: list[tuple[str, FieldSpec]] = []
        for name, spec in self.fields.items():
            for s in spec if isinstance(spec, list) else [spec]:
                pairs.append((name, s))
        return pairs

    def source_columns(self) -> list[str]:
        """Every source column the mapping reads."""
        cols = self.id_columns() + ([self.updated_at] if self.updated_at else [])
        for _, spec in self.field_specs():
            cols.extend(spec.source_columns())
        return list(dict.fromkeys(cols))
