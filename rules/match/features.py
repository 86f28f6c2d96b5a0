"""Matching keys derived from canonical records: primary e-mail and phone, transliteration,
phonetic and nickname keys, hashes.

A field is factorised once (:class:`Distinct`: a code per record and the distinct values), and
every normalisation runs once per distinct value: a million records hold far fewer distinct
names. Equality keys are 64-bit hashes of the normalised value, so they mean the same in every
partition and every run: a distributed engine needs no shared vocabulary, and
:func:`rules.match.explain` can prepare two records alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import jellyfish
import numpy as np
import pandas as pd
import yaml
from anyascii import anyascii

#: Hash of a missing value; every key treats it as "nothing to compare".
NULL = np.uint64(0)

_NOT_NAME = re.compile(r"[^a-z ]+")
_NOT_STREET = re.compile(r"[^0-9a-z ]+")
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_NOT_DIGIT = re.compile(r"\D+")
_STREET_WORDS = {
    "st": "street", "rd": "road", "ave": "avenue", "av": "avenue", "ln": "lane", "dr": "drive",
    "cl": "close", "ct": "court", "gdns": "gardens", "pl": "place", "sq": "square", "cres": "crescent",
    "blvd": "boulevard", "hwy": "highway", "mt": "mount", "n": "north", "s": "south", "e": "east", "w": "west",
}


@dataclass
class Distinct:
    """A column as a code per record (-1 missing) and a value per code (None also missing).

    :meth:`map` transforms the values without merging those that become equal (hashes do not
    need it), so a chain of normalisations costs one Python call per distinct input value each.
    """

    codes: np.ndarray
    values: np.ndarray
    #: :meth:`hashes`, computed once: a field's hashes serve its comparison and blocking alike.
    _hashes: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, values: np.ndarray) -> Distinct:
        """Factorise values; None, NaN and blank strings are missing.

        Standardised records hold trimmed strings, so only other values go through ``str()``.
        """
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        uniques = np.asarray(uniques, dtype=object)
        if pd.api.types.infer_dtype(uniques, skipna=False) != "string":
            uniques = _objects(str(v).strip() for v in uniques)
        uniques[uniques == ""] = None
        return cls(codes.astype(np.int32), uniques)

    def map(self, func: Callable[[str], object]) -> Distinct:
        """Apply ``func`` once per distinct value; None or "" results become missing."""
        return Distinct(self.codes, _objects(None if v is None else (func(v) or None) for v in self.values))

    def hashes(self) -> np.ndarray:
        """A uint64 hash per record, :data:`NULL` where missing."""
        if self._hashes is None:
            missing = np.equal(self.values, None)
            hashed = np.maximum(pd.util.hash_array(np.where(missing, "", self.values), categorize=False),
                                np.uint64(1))
            hashed[missing] = NULL
            self._hashes = take_codes(hashed, self.codes, NULL)
        return self._hashes

    def text(self) -> np.ndarray:
        """The value per record (None where missing)."""
        return take_codes(self.values, self.codes, None)

    def ints(self, func: Callable[[str], int], missing: int = 0) -> np.ndarray:
        """``func`` of each distinct value, per record, as int64 (``missing`` where missing)."""
        table = np.array([missing if v is None else func(v) for v in self.values], dtype=np.int64)
        return take_codes(table, self.codes, missing)

    def merged(self) -> Distinct:
        """The same column with equal values sharing one code (for counting)."""
        codes, uniques = pd.factorize(self.values, use_na_sentinel=True)
        return Distinct(take_codes(codes.astype(np.int32), self.codes, -1), np.asarray(uniques, dtype=object))

    def frequencies(self) -> np.ndarray:
        """Share of the present records holding each record's value (NaN where missing)."""
        merged = self.merged()
        present = merged.codes[merged.codes >= 0]
        share = (np.bincount(present, minlength=len(merged.values)) / max(len(present), 1)).astype(np.float32)
        return take_codes(share, merged.codes, np.nan)


def take_codes(table: np.ndarray, codes: np.ndarray, missing: object) -> np.ndarray:
    """``table[codes]`` with ``missing`` where the code is -1."""
    out = table[np.maximum(codes, 0)] if len(table) else np.full(len(codes), missing, dtype=table.dtype)
    out[codes < 0] = missing
    return out


class Columns:
    """Canonical fields of a set of records, factorised on first use.

    ``emails``/``phones`` (or ``email``/``phone``) give the primary element; ``identifiers.X``
    reads key X of the identifiers dict; ``name_key`` is built from first and last name when
    the records lack it; a field the records lack is all missing.
    """

    def __init__(self, records: pd.DataFrame):
        self.records = records
        self._cache: dict[str, Distinct] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, field: str) -> Distinct:
        field = {"email": "emails", "phone": "phones"}.get(field, field)
        if field not in self._cache:
            self._cache[field] = Distinct.of(self._raw(field))
        return self._cache[field]

    def _raw(self, field: str) -> np.ndarray:
        records = self.records
        if field.startswith("identifiers."):
            key = field.split(".", 1)[1]
            source = records["identifiers"] if "identifiers" in records else [None] * len(records)
            return _objects(d.get(key) if isinstance(d, dict) else None for d in source)
        if field == "name_key" and field not in records:
            first, last = (self[f].map(translit).text() for f in ("first_name", "last_name"))
            return _objects(f"{a or ''} {b or ''}".strip() for a, b in zip(first, last))
        if field not in records:
            return np.full(len(records), None, dtype=object)
        if field in ("emails", "phones"):
            values = records[field].to_numpy(object)
            try:  # standardised records hold lists: the fast path
                return _objects(v[0] if v else None for v in values)
            except (TypeError, ValueError, IndexError):
                return _objects(v[0] if isinstance(v, (list, tuple, np.ndarray)) and len(v) else None for v in values)
        return records[field].to_numpy(object)


def _objects(values: Iterable[object]) -> np.ndarray:
    return np.fromiter(values, dtype=object)


def translit(value: str) -> str:
    """Lower-case ASCII letters and single spaces: "Øster" -> "oster", "Дмитрий" -> "dmitriy"."""
    return " ".join(_NOT_NAME.sub(" ", (value if value.isascii() else anyascii(value)).lower()).split())


def phonetic(value: str) -> str:
    """Metaphone of the transliterated value ("Smith" and "Smyth" share SM0)."""
    return jellyfish.metaphone(translit(value))


def street_key(value: str) -> str:
    """Street normalised for comparison: transliterated, lower case, abbreviations spelled out."""
    words = _NOT_STREET.sub(" ", (value if value.isascii() else anyascii(value)).lower()).split()
    return " ".join(_STREET_WORDS.get(w, w) for w in words)


def identifier_key(value: str) -> str:
    """Identifiers without punctuation or spaces, upper case: "GB 123-45" -> "GB12345"."""
    return (value if value.isalnum() else _NOT_ALNUM.sub("", value)).upper()


def postcode_key(value: str) -> str:
    """Postcodes without spaces, upper case."""
    return value.replace(" ", "").upper()


def postcode_district(value: str) -> str:
    """The district of a postcode: the outward code ("SW1A 1AA" -> "SW1A"), else all but the last character."""
    outward, space, _ = value.upper().partition(" ")
    return outward if space else outward[:-1]


def digits(value: str) -> str:
    """Only the digits (phones); E.164 numbers take the short way."""
    return value[1:] if value[:1] == "+" and value[1:].isdigit() else _NOT_DIGIT.sub("", value)


def iso_date_int(value: str) -> int:
    """``YYYY-MM-DD`` as the int YYYYMMDD, 0 when it is no such date."""
    compact = value[:10].replace("-", "")
    return int(compact) if len(compact) == 8 and compact.isdigit() else 0


def nickname_groups(column: Distinct) -> tuple[np.ndarray, np.ndarray]:
    """Up to two nickname-group ids per first name (-1 for none): "Bob" and "Robert" share one."""
    groups = _nickname_table()
    # Both ids packed in one int so the lookup runs once per distinct name.
    packed = column.ints(lambda v: sum((g + 1) << (16 * i) for i, g in enumerate(groups.get(translit(v), ()))))
    return (packed & 0xFFFF).astype(np.int32) - 1, (packed >> 16).astype(np.int32) - 1


@cache
def _nickname_table() -> dict[str, tuple[int, ...]]:
    """Name -> ids of the (at most two) nickname groups it belongs to (from ``nicknames.yaml``)."""
    data = yaml.safe_load(resources.files("rules.match").joinpath("nicknames.yaml").read_text("utf-8"))
    table: dict[str, tuple[int, ...]] = {}
    for gid, (formal, shorts) in enumerate(data.items()):
        for name in (formal, *shorts):
            table[name] = (*table.get(name, ()), gid)[:2]
    return table
