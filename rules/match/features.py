"""Matching keys derived from canonical records: primary e-mail and phone, transliteration,
phonetic and nickname keys, hashes.

A field is dictionary-encoded once with pyarrow (:class:`Distinct`: a code per record and the
distinct values), and every normalisation runs once per distinct value, vectorised with
``pyarrow.compute``; only values outside ASCII (names in another script) take a Python step.
A feature stays per distinct value (:class:`Keyed`: the record codes and a table) until a
partition's pairs need it, so a million records cost an int32 code per field, not an array per
feature. Equality keys are 64-bit hashes of the normalised value, so they mean the same in every
partition and every run: a distributed engine needs no shared vocabulary, and
:func:`rules.match.explain` can prepare two records alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import jellyfish
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from anyascii import anyascii

from rules.match import memory

#: Hash of a missing value; every key treats it as "nothing to compare".
NULL = np.uint64(0)

Normalise = Callable[[pa.Array], pa.Array]
"""A normalisation: distinct string values in, one (string) result per value out, nulls kept."""

_STREET_WORDS = {
    "st": "street", "rd": "road", "ave": "avenue", "av": "avenue", "ln": "lane", "dr": "drive",
    "cl": "close", "ct": "court", "gdns": "gardens", "pl": "place", "sq": "square", "cres": "crescent",
    "blvd": "boulevard", "hwy": "highway", "mt": "mount", "n": "north", "s": "south", "e": "east", "w": "west",
}


@dataclass(frozen=True)
class Keyed:
    """A per-record feature kept per distinct value: record ``i`` has ``table[codes[i]]``.

    The table's last entry is the missing value, so code ``-1`` (missing) needs no mask. Text
    tables stay Arrow arrays: Python strings are made only for the pairs that need them.
    """

    codes: np.ndarray
    table: np.ndarray | pa.Array

    def take(self, rows: np.ndarray) -> np.ndarray | pa.Array:
        """The feature of the records at ``rows``."""
        return self.lookup(self.codes[rows])

    def lookup(self, codes: np.ndarray) -> np.ndarray | pa.Array:
        """The table entries of ``codes`` (-1 for the missing value)."""
        if isinstance(self.table, pa.Array):
            return self.table.take(np.where(codes < 0, len(self.table) - 1, codes))
        return self.table[codes]

    def subset(self, rows: np.ndarray) -> Keyed:
        """The same feature for the records at ``rows`` only (the table is shared)."""
        return Keyed(self.codes[rows], self.table)


@dataclass
class Distinct:
    """A column as a code per record (-1 missing) and its distinct values (null also missing).

    :meth:`map` transforms the distinct values without merging those that become equal (hashes
    do not need it), so a chain of normalisations costs one vectorised pass over them each.
    """

    codes: np.ndarray
    values: pa.Array
    #: :meth:`hashes` and :meth:`map` results, computed once: comparisons and blocking rules share them.
    _hashes: Keyed | None = field(default=None, repr=False, compare=False)
    _mapped: dict[Normalise, Distinct] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, values: pa.Array) -> Distinct:
        """Dictionary-encode string values; nulls and blank strings are missing.

        Codes take two bytes a record when the distinct values allow (names, dates, cities).
        """
        encoded = pc.dictionary_encode(values)
        kind = np.int16 if len(encoded.dictionary) < np.iinfo(np.int16).max else np.int32
        codes = pc.fill_null(encoded.indices, -1).to_numpy().astype(kind)
        return cls(codes, _blank_to_null(encoded.dictionary))

    def map(self, func: Normalise) -> Distinct:
        """Apply a vectorised normalisation to the distinct values; empty results become missing."""
        if func not in self._mapped:
            self._mapped[func] = Distinct(self.codes, _blank_to_null(func(self.values)))
        return self._mapped[func]

    def keyed(self, table: pa.Array | np.ndarray, missing: object) -> Keyed:
        """A :class:`Keyed` feature from one value per distinct value (nulls become ``missing``)."""
        if isinstance(table, (pa.Array, pa.ChunkedArray)):
            table = pc.fill_null(table, missing).to_numpy(zero_copy_only=False)
        return Keyed(self.codes, np.append(table, np.array([missing], dtype=table.dtype)))

    def hashes(self) -> Keyed:
        """A uint64 hash per record, :data:`NULL` where missing."""
        if self._hashes is None:
            self._hashes = self.keyed(hash_text(self.values), NULL)
        return self._hashes

    def text(self) -> Keyed:
        """The value per record (null where missing)."""
        return Keyed(self.codes, pa.concat_arrays([self.values, pa.nulls(1, self.values.type)]))

    def frequencies(self) -> Keyed:
        """Share of the present records holding each record's value (NaN where missing)."""
        merged = self._merged_codes()
        counts = self._merged_counts(merged)
        share = counts / max(counts.sum(), 1)
        return Keyed(self.codes, np.append(share, np.nan)[merged].astype(np.float32))

    def value_counts(self) -> tuple[pa.Array, np.ndarray]:
        """Each value once (equal values merged, in order of first appearance) and how many records hold it."""
        return pc.unique(self.values.drop_null()), self._merged_counts(self._merged_codes()).astype(np.int64)

    def _merged_counts(self, merged: np.ndarray) -> np.ndarray:
        """Records per merged value (:meth:`_merged_codes`), counted per distinct value first:
        no array per record is made."""
        per_value = np.bincount(self.codes + 1, minlength=len(self.values) + 1)[1:]
        present = merged[:-1] >= 0
        return np.bincount(merged[:-1][present], weights=per_value[present], minlength=int(merged.max()) + 1)

    def _merged_codes(self) -> np.ndarray:
        """Per distinct value the code it has once equal values are merged, then -1 (for code -1).

        Merged codes number the values in order of first appearance, as :meth:`value_counts` lists them.
        """
        merged = pc.fill_null(pc.dictionary_encode(self.values).indices, -1).to_numpy().astype(np.int32)
        return np.append(merged, np.int32(-1))


class Columns:
    """Canonical fields of a set of records, dictionary-encoded on first use.

    Columns may hold Python objects or Arrow data (``pd.ArrowDtype``). ``emails``/``phones``
    (or ``email``/``phone``) give the primary element; ``identifiers.X`` reads key X of the
    identifiers; ``name_key`` is built from first and last name when the records lack it; a
    field the records lack is all missing.
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
            memory.release()  # the raw column and the encoder's hash table are freed by now
        return self._cache[field]

    def _raw(self, field: str) -> pa.Array:
        records = self.records
        if field.startswith("identifiers."):
            key = field.split(".", 1)[1]
            return _member(arrow(records["identifiers"]), key) if "identifiers" in records else _nulls(len(records))
        if field == "name_key" and field not in records:
            first, last = (self[f].map(translit) for f in ("first_name", "last_name"))
            parts = [pc.fill_null(d.values.take(pa.array(d.codes, mask=d.codes < 0)), "") for d in (first, last)]
            return pc.utf8_trim(pc.binary_join_element_wise(*parts, " "), " ")
        if field not in records:
            return _nulls(len(records))
        values = arrow(records[field])
        return _first(values) if pa.types.is_list(values.type) or pa.types.is_large_list(values.type) else values


def arrow(column: pd.Series) -> pa.Array:
    """A column as one pyarrow array: Arrow-backed columns as they are, Python objects converted.

    Strings stay strings, lists of strings become lists, dicts become structs; other scalars
    (numbers, dates, mixed) are read as their ``str()``, trimmed. None and NaN are null.
    """
    try:
        values = pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        values = pa.array([None if v is None or v != v else str(v).strip() for v in column], type=pa.string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_null(values.type):
        return values.cast(pa.string())
    if not _is_text(values.type) and not pa.types.is_nested(values.type):
        values = pc.utf8_trim_whitespace(values.cast(pa.string()))
    return values


def hash_text(values: pa.Array) -> np.ndarray:
    """A uint64 hash of each string, read from the Arrow buffers: no Python string is made.

    Values of one byte length sit back to back once taken together, so each length group is a
    matrix of bytes, hashed eight bytes (one little-endian word) per step with the SplitMix64
    finaliser. Null and empty strings hash to :data:`NULL`, every other value to a non-zero hash.

    Example:
        >>> h = hash_text(pa.array(["Lee", None, "Lee", "Li"]))
        >>> bool(h[0] == h[2]), int(h[1]), bool(h[0] != h[3])
        (True, 0, True)
    """
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.large_string())
    offsets = np.int64 if pa.types.is_large_string(values.type) else np.int32
    lengths = pc.fill_null(pc.binary_length(values), 0).to_numpy()
    order = np.argsort(lengths, kind="stable")
    out = np.zeros(len(values), dtype=np.uint64)
    for rows in np.split(order, np.flatnonzero(np.diff(lengths[order])) + 1):
        n = int(lengths[rows[0]]) if len(rows) else 0
        if n == 0:
            continue
        group = values.take(pa.array(rows))
        start = np.frombuffer(group.buffers()[1], offsets, 1, group.offset * np.dtype(offsets).itemsize)[0]
        words = np.zeros((len(rows), -(-n // 8) * 8), dtype=np.uint8)
        words[:, :n] = np.frombuffer(group.buffers()[2], np.uint8, len(rows) * n, int(start)).reshape(-1, n)
        h = np.full(len(rows), n, dtype=np.uint64)
        for word in words.view("<u8").T:
            h ^= word
            _mix(h)
        out[rows] = np.maximum(h, np.uint64(1))
    return out


def _mix(h: np.ndarray) -> None:
    """SplitMix64's finaliser, in place: every input bit moves about half the output bits."""
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _nulls(n: int) -> pa.Array:
    return pa.nulls(n, pa.string())


def _first(lists: pa.Array) -> pa.Array:
    """The first element of each list (null for an empty or missing list)."""
    offsets = lists.offsets.to_numpy()
    present = (np.diff(offsets) > 0) & ~lists.is_null().to_numpy(zero_copy_only=False)
    first = lists.values.take(pa.array(offsets[:-1], mask=~present))
    return first if _is_text(first.type) else arrow(pd.Series(first.to_pylist(), dtype=object))


def _member(structs: pa.Array, key: str) -> pa.Array:
    """Key ``key`` of each record's identifiers (a struct or map column; null where absent)."""
    if pa.types.is_map(structs.type):
        values = pc.map_lookup(structs, key, "first")
    elif pa.types.is_struct(structs.type) and structs.type.get_field_index(key) >= 0:
        values = pc.struct_field(structs, key)
    else:
        return _nulls(len(structs))
    return values if _is_text(values.type) else arrow(pd.Series(values.to_pylist(), dtype=object))


def _blank_to_null(values: pa.Array) -> pa.Array:
    if not _is_text(values.type):
        values = values.cast(pa.string())
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)


def _outside_ascii(values: pa.Array, func: Callable[[str], str]) -> pa.Array:
    """``values`` with ``func`` applied, in Python, to the few outside ASCII."""
    mask = pc.invert(pc.fill_null(pc.string_is_ascii(values), True))
    if not pc.any(mask).as_py():
        return values
    fixed = [func(v) for v in pc.filter(values, mask).to_pylist()]
    return pc.replace_with_mask(values, mask, pa.array(fixed, values.type))


def per_value(func: Callable[[str], str]) -> Normalise:
    """A Python function as a normalisation: called once per distinct non-null value."""
    def run(values: pa.Array) -> pa.Array:
        encoded = pc.dictionary_encode(values)
        results = pa.array([func(v) for v in encoded.dictionary.to_pylist()], pa.string())
        return results.take(encoded.indices)
    return run


def _squeeze(values: pa.Array, keep: str) -> pa.Array:
    """Every run of characters outside ``keep`` (a regex class body) as one space, trimmed."""
    spaced = pc.replace_substring_regex(values, f"[^{keep}]+", " ")
    return pc.utf8_trim(pc.replace_substring_regex(spaced, " {2,}", " "), " ")


def casefold(values: pa.Array) -> pa.Array:
    """``str.casefold`` of every value."""
    return pc.ascii_lower(_outside_ascii(values, str.casefold))


def translit(values: pa.Array) -> pa.Array:
    """Lower-case ASCII letters and single spaces: "Øster" -> "oster", "Дмитрий" -> "dmitriy"."""
    return _squeeze(pc.ascii_lower(_outside_ascii(values, anyascii)), "a-z ")


#: Metaphone of each value (its letters should be transliterated first).
metaphone = per_value(jellyfish.metaphone)


def phonetic(values: pa.Array) -> pa.Array:
    """Metaphone of the transliterated value ("Smith" and "Smyth" share SM0)."""
    return metaphone(translit(values))


def street_key(values: pa.Array) -> pa.Array:
    """Street normalised for comparison: transliterated, lower case, abbreviations spelled out."""
    words = pc.split_pattern(_squeeze(pc.ascii_lower(_outside_ascii(values, anyascii)), "0-9a-z "), " ")
    flat = words.values
    short, long = pa.array(list(_STREET_WORDS)), pa.array(list(_STREET_WORDS.values()))
    spelled = pc.coalesce(long.take(pc.index_in(flat, value_set=short)), flat)
    return pc.binary_join(pa.ListArray.from_arrays(words.offsets, spelled, mask=words.is_null()), " ")


def identifier_key(values: pa.Array) -> pa.Array:
    """Identifiers without punctuation or spaces, upper case: "GB 123-45" -> "GB12345"."""
    stripped = pc.ascii_upper(pc.replace_substring_regex(values, "[^0-9A-Za-z]+", ""))
    return pc.if_else(pc.utf8_is_alnum(values), _upper(values), stripped)


def postcode_key(values: pa.Array) -> pa.Array:
    """Postcodes without spaces, upper case."""
    return pc.replace_substring(_upper(values), " ", "")


def postcode_district(values: pa.Array) -> pa.Array:
    """The district of a postcode: the outward code ("SW1A 1AA" -> "SW1A"), else all but the last character."""
    upper = _upper(values)
    outward = pc.list_element(pc.split_pattern(upper, " ", max_splits=1), 0)
    return pc.if_else(pc.match_substring(upper, " "), outward, pc.utf8_slice_codeunits(upper, 0, -1))


def _upper(values: pa.Array) -> pa.Array:
    return pc.ascii_upper(_outside_ascii(values, str.upper))


def local_part(values: pa.Array) -> pa.Array:
    """The part of an e-mail address before the first "@"."""
    return pc.list_element(pc.split_pattern(values, "@", max_splits=1), 0)


def domain(values: pa.Array) -> pa.Array:
    """The part of an e-mail address after the first "@" (empty without one)."""
    after = pc.replace_substring_regex(values, "^[^@]*@", "")
    return pc.if_else(pc.match_substring(values, "@"), after, pa.scalar("", values.type))


def last_digits(n: int) -> Normalise:
    """The last ``n`` digits (phones)."""
    return lambda values: pc.utf8_slice_codeunits(pc.replace_substring_regex(values, "[^0-9]+", ""), -n)


def iso_date_bcd(values: pa.Array) -> np.ndarray:
    """``YYYY-MM-DD`` as its eight digits in 4-bit nibbles ("1970-03-04" -> 0x19700304), 0 when it
    is no such date: digits, the year, the month and the day then compare with bit operations.

    Example:
        >>> [hex(v) for v in iso_date_bcd(pa.array(["1970-03-04", None, "soon"]))]
        ['0x19700304', '0x0', '0x0']
    """
    compact = pc.replace_substring(pc.utf8_slice_codeunits(values, 0, 10), "-", "")
    valid = pc.and_(pc.equal(pc.utf8_length(compact), 8), pc.ascii_is_decimal(compact))
    number = pc.fill_null(pc.cast(pc.if_else(valid, compact, pa.scalar("0", compact.type)), pa.int32()), 0).to_numpy()
    bcd = np.zeros(len(number), dtype=np.uint32)
    for k in range(8):
        bcd |= ((number // 10**k) % 10).astype(np.uint32) << np.uint32(4 * k)
    return bcd


def nickname_groups(column: Distinct) -> tuple[Keyed, Keyed]:
    """Up to two nickname-group ids per first name (-1 for none): "Bob" and "Robert" share one."""
    names, groups = _nickname_table()
    found = pc.index_in(translit(column.values), value_set=names)
    at = pc.fill_null(found, len(names)).to_numpy()
    return tuple(column.keyed(ids[at], np.int32(-1)) for ids in groups)  # type: ignore[return-value]


@cache
def _nickname_table() -> tuple[pa.Array, tuple[np.ndarray, np.ndarray]]:
    """Names, and the ids of the (at most two) nickname groups each belongs to (-1 none; from ``nicknames.yaml``).

    Each id array has one extra -1 at the end, for names not in the table.
    """
    data = yaml.safe_load(resources.files("rules.match").joinpath("nicknames.yaml").read_text("utf-8"))
    table: dict[str, tuple[int, ...]] = {}
    for gid, (formal, shorts) in enumerate(data.items()):
        for name in (formal, *shorts):
            table[name] = (*table.get(name, ()), gid)[:2]
    ids = [np.array([g[i] if len(g) > i else -1 for g in table.values()] + [-1], dtype=np.int32) for i in (0, 1)]
    return pa.array(list(table)), (ids[0], ids[1])
