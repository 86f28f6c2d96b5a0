"""Propose a mapping from a source's headers by fuzzy-matching them to canonical fields."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from mappings.canonical import LIST_FIELDS

#: Header spellings seen in real exports (English, German, French, Spanish, abbreviations).
SYNONYMS: dict[str, list[str]] = {
    "title": ["title", "salutation", "prefix", "anrede", "civilite", "tratamiento"],
    "first_name": ["first name", "given name", "firstname", "fname", "first nm", "forename", "vorname", "prenom",
                   "nombre"],
    "middle_name": ["middle name", "additional name", "middle", "second name"],
    "last_name": ["last name", "family name", "surname", "lastname", "lname", "last nm", "nachname", "nom",
                  "apellido"],
    "suffix": ["suffix", "name suffix", "generation"],
    "full_name": ["name", "full name", "display name", "contact name", "customer name", "fn"],
    "organization_name": ["company", "organization", "organisation", "company name", "account name", "firma",
                          "societe", "empresa", "employer", "org"],
    "emails": ["email", "e mail", "e-mail address", "email address", "mail", "e mail 2 address", "email 2",
               "secondary email", "work email", "home email", "courriel"],
    "phones": ["phone", "telephone", "tel", "mobile", "mobile phone", "cell", "business phone", "home phone",
               "phone number", "work phone", "telefon", "handy", "portable", "telefono"],
    "street": ["street", "address", "address line 1", "street address", "business street", "home street", "strasse",
               "rue", "calle", "mailing street"],
    "city": ["city", "town", "locality", "business city", "home city", "ort", "stadt", "ville", "ciudad",
             "mailing city"],
    "region": ["state", "region", "county", "province", "business state", "home state", "bundesland",
               "mailing state"],
    "postcode": ["postcode", "postal code", "zip", "zip code", "business postal code", "home postal code", "plz",
                 "code postal", "mailing postal code"],
    "country": ["country", "country region", "business country region", "country code", "land", "pays", "pais",
                "mailing country"],
    "birth_date": ["birthday", "birth date", "date of birth", "dob", "birthdate", "geburtsdatum",
                   "date de naissance"],
    "email_opt_in": ["email opt in", "opt in", "marketing consent", "newsletter", "subscribed", "mkt opt in"],
    "do_not_contact": ["do not contact", "do not call", "dnc", "has opted out", "opted out", "email opt out"],
    "source_id": ["id", "customer id", "contact id", "record id", "customer number", "cust no", "kundennummer", "uid"],
    "source_updated_at": ["updated at", "last modified", "modified", "last modified date", "updated",
                          "change date"],
}

_WORDS = re.compile(r"[^0-9a-z]+")


def _norm(header: str) -> str:
    return _WORDS.sub(" ", header.lower().replace("é", "e").replace("ä", "a").replace("ß", "ss")).strip()


@dataclass
class Suggestion:
    """A proposed field: the source column(s) and the match confidence (0-100) of each."""

    field: str
    columns: list[str]
    confidence: list[float]


def suggest_mapping(headers: list[str], min_score: float = 80) -> list[Suggestion]:
    """Match headers to canonical fields; list fields (emails, phones) may take several columns.

    One ``process.cdist`` call scores every header against every synonym, so even a
    500-column warehouse extract is instant.

    Example:
        >>> [(s.field, s.columns) for s in suggest_mapping(["Vorname", "Nachname", "E-Mail", "Mobile Phone"])]
        [('first_name', ['Vorname']), ('last_name', ['Nachname']), ('emails', ['E-Mail']), ('phones', ['Mobile Phone'])]
    """
    labels = [(f, s) for f, spellings in SYNONYMS.items() for s in spellings]
    scores = process.cdist([_norm(h) for h in headers], [s for _, s in labels], scorer=fuzz.ratio, workers=-1)
    fields = np.array([f for f, _ in labels])
    taken: dict[str, Suggestion] = {}
    # Best-scoring header per field first, so "Name" cannot steal "First Name"'s field.
    candidates = []
    for i, header in enumerate(headers):
        for field in SYNONYMS:
            score = float(scores[i, fields == field].max())
            if score >= min_score:
                candidates.append((score, i, field))
    used: set[int] = set()
    for score, i, field in sorted(candidates, key=lambda c: -c[0]):
        if i in used:
            continue
        if field in taken and field not in LIST_FIELDS:
            continue
        used.add(i)
        s = taken.setdefault(field, Suggestion(field, [], []))
        s.columns.append(headers[i])
        s.confidence.append(round(score, 1))
    for s in taken.values():  # a list field's columns in header order: the first is the primary
        ranked = sorted(zip(s.columns, s.confidence), key=lambda pair: headers.index(pair[0]))
        s.columns, s.confidence = [c for c, _ in ranked], [c for _, c in ranked]
    order = list(SYNONYMS)
    return sorted(taken.values(), key=lambda s: order.index(s.field))


def suggestion_yaml(suggestions: list[Suggestion], headers: list[str]) -> str:
    """The suggestions as a commented mapping YAML for the user to edit."""
    lines = ["# Suggested by `crm-migrate map suggest`: check every line, then reference this file",
             "# from migration.yaml (mapping: path/to/this.yaml). Confidence is 0-100."]
    by_field = {s.field: s for s in suggestions}
    if "source_id" in by_field:
        s = by_field["source_id"]
        lines.append(f"id: {_q(s.columns[0])}            # confidence {s.confidence[0]:.0f}")
    if "source_updated_at" in by_field:
        s = by_field["source_updated_at"]
        lines.append(f"updated_at: {_q(s.columns[0])}    # confidence {s.confidence[0]:.0f}")
    lines.append("fields:")
    for s in suggestions:
        if s.field in ("source_id", "source_updated_at"):
            continue
        conf = ", ".join(f"{c:.0f}" for c in s.confidence)
        value = "[" + ", ".join(_q(c) for c in s.columns) + "]" if s.field in LIST_FIELDS else _q(s.columns[0])
        lines.append(f"  {s.field}: {value}    # confidence {conf}")
    mapped = {c for s in suggestions for c in s.columns}
    rest = [h for h in headers if h not in mapped]
    if rest:
        lines.append("# Not mapped (kept in `extra`): " + ", ".join(rest))
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    return text if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ ./-]*", text) and not text.endswith(" ") else repr(text)
