"""The canonical customer record every source is mapped onto (DESIGN.md, data contracts)."""

from __future__ import annotations

from typing import Final

# Field name -> kind. Kinds drive standardisation, validation and workspace types.
CANONICAL_FIELDS: Final[dict[str, str]] = {
    "record_key": "key",
    "source": "key",
    "source_id": "key",
    "entity": "entity",
    "title": "text",
    "first_name": "name",
    "middle_name": "name",
    "last_name": "name",
    "suffix": "text",
    "organization_name": "org",
    "emails": "email_list",
    "phones": "phone_list",
    "street": "text",
    "city": "text",
    "region": "text",
    "postcode": "postcode",
    "country": "country",
    "birth_date": "date",
    "identifiers": "json",
    "email_opt_in": "bool",
    "do_not_contact": "bool",
    "source_updated_at": "datetime",
    "extra": "json",
    "row_hash": "key",
    "source_ref": "key",
}

#: Input-only fields a mapping may feed; standardisation consumes them (a full name is
#: parsed into its parts, an address line into street/city/postcode where possible).
INPUT_ONLY_FIELDS: Final[tuple[str, ...]] = ("full_name",)

#: Fields a mapping may feed (the rest are computed by the pipeline).
MAPPABLE_FIELDS: Final[tuple[str, ...]] = tuple(
    f for f in CANONICAL_FIELDS if f not in {"record_key", "source", "extra", "row_hash", "source_ref"}
) + INPUT_ONLY_FIELDS

#: Attributes a golden record carries (survivorship decides each one).
GOLDEN_ATTRIBUTES: Final[tuple[str, ...]] = (
    "entity", "title", "first_name", "middle_name", "last_name", "suffix", "organization_name",
    "emails", "phones", "street", "city", "region", "postcode", "country", "birth_date",
    "identifiers", "email_opt_in", "do_not_contact",
)

#: Canonical fields that hold lists (first element is the primary one).
LIST_FIELDS: Final[tuple[str, ...]] = ("emails", "phones")

#: Canonical fields that hold dicts.
DICT_FIELDS: Final[tuple[str, ...]] = ("identifiers", "extra")

#: Columns of a related record (orders, invoices, activities...).
RELATED_FIELDS: Final[tuple[str, ...]] = (
    "related_key", "kind", "source", "source_id", "parent_record_key", "data", "row_hash", "source_ref",
)
