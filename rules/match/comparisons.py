"""Comparisons with levels, computed on whole arrays of candidate pairs.

Each comparison kind says which keys it derives from a record (:meth:`Kind.features`), which
levels it has, and how to put every pair of a partition on a level at once
(:meth:`Kind.gamma`). The level of a pair is its *gamma*: ``-1`` when either side is missing
(neutral: no evidence either way), ``0`` for "no similarity", and higher for closer agreement.
Fuzzy similarities run through rapidfuzz's ``process.cpdist`` with ``workers=-1``, once per
distinct pair of values in the partition, with the lowest threshold as ``score_cutoff`` so
dissimilar pairs (nearly all random pairs) exit early.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
from rapidfuzz import distance, fuzz, process

from rules.match import features as fx
from rules.match.settings import Comparison

#: Gamma of a pair where either value is missing.
MISSING = -1

Sides = Callable[..., tuple[np.ndarray, np.ndarray]]
"""``sides(feature)``: the left and right arrays of a feature for every pair (text may be Arrow);
``sides(feature, rows)``: the same for the pairs at ``rows`` only."""


def column(comparison: Comparison, feature: str) -> str:
    """Name of a comparison's feature column in prepared records (``first_name__tl``)."""
    return f"{comparison.id}__{feature}"


class Kind:
    """A comparison kind: the keys it derives, its levels, and how pairs get their level."""

    name: ClassVar[str]
    #: Feature holding term frequencies, and the levels whose weight they adjust.
    tf_feature: ClassVar[str | None] = None
    tf_levels: ClassVar[tuple[str, ...]] = ()

    def features(self, cols: fx.Columns, c: Comparison) -> dict[str, fx.Keyed]:
        """Per-record keys this comparison needs, kept per distinct value."""
        raise NotImplementedError

    def levels(self, c: Comparison) -> list[str]:
        """Level labels by gamma: index 0 is "else", the last the closest agreement."""
        raise NotImplementedError

    def gamma(self, sides: Sides, c: Comparison) -> np.ndarray:
        """The level of every pair (int8, -1 where a side is missing)."""
        raise NotImplementedError

    def tf_values(self, cols: fx.Columns, c: Comparison) -> fx.Distinct:
        """The value whose frequency adjusts the weight (used by prepare and the model's tf table)."""
        return cols[c.field]


def _assign(present: np.ndarray, conditions: list[np.ndarray]) -> np.ndarray:
    """Gamma from conditions listed from level 1 up: the highest true condition wins."""
    out = np.zeros(len(present), dtype=np.int8)
    for level, cond in enumerate(conditions, start=1):
        out[cond] = level
    out[~present] = MISSING
    return out


def similarity(sides: Sides, code: str, text: str, rows: np.ndarray,
               scorer: Callable[..., float], scale: float = 1.0, cutoff: float | None = None) -> np.ndarray:
    """Similarity of the ``text`` feature for the pairs in ``rows`` (0 elsewhere).

    Pairs repeat values a lot (the same two first names in many blocks), so each distinct
    (left, right) pair of ``code`` hashes is scored once. A score beyond ``cutoff`` (below it
    for similarities, above it for distances) may come back as any value beyond it.
    """
    hl, hr = sides(code)
    out = np.zeros(len(hl), dtype=np.float32)
    idx = np.flatnonzero(rows)
    if len(idx) == 0:
        return out
    key = hl[idx] ^ (hr[idx] * np.uint64(0x9E3779B97F4A7C15))
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    tl, tr = sides(text, idx[first])
    scores = process.cpdist(np.asarray(tl), np.asarray(tr), scorer=scorer,
                            workers=-1, dtype=np.float32, score_cutoff=cutoff)
    out[idx] = scores[inverse] / scale
    return out


def _equal(sides: Sides, feature: str) -> np.ndarray:
    left, right = sides(feature)
    return (left == right) & (left != 0)


def _present(sides: Sides, feature: str = "code") -> np.ndarray:
    left, right = sides(feature)
    return (left != 0) & (right != 0)


def _above_thresholds(sides: Sides, c: Comparison, scorer: Callable[..., float], scale: float = 1.0,
                      code: str = "code") -> list[np.ndarray]:
    """One condition per threshold, lowest first, on the ``text`` similarity of unequal pairs."""
    rows = _present(sides, code) & ~_equal(sides, code)
    # A hair below the lowest threshold: scores are compared in float32, as without a cutoff.
    score = similarity(sides, code, "text", rows, scorer, scale, cutoff=min(c.thresholds) * scale * (1 - 1e-6))
    return [score >= t for t in sorted(c.thresholds)]


class NameKind(Kind):
    """Person and organisation names: exact, transliterated, swapped, nickname, Jaro-Winkler, phonetic."""

    name = "name"
    tf_feature = "tf"
    tf_levels = ("transliterated", "exact")

    def features(self, cols, c):
        raw = cols[c.field]
        tl = raw.map(fx.translit)
        out = {
            "raw": raw.map(fx.casefold).hashes(), "tl": tl.hashes(), "text": tl.text(),
            "ph": tl.map(fx.metaphone).hashes(), "tf": tl.frequencies(),
        }
        if _has_nicknames(c):
            out["nick1"], out["nick2"] = fx.nickname_groups(raw)
        if c.swap_with:
            out["swap"] = cols[c.swap_with].map(fx.translit).hashes()
        return out

    def tf_values(self, cols, c):
        return cols[c.field].map(fx.translit)

    def levels(self, c):
        jw = [f"jaro_winkler>={t:g}" for t in sorted(c.thresholds)]
        labels = ["else", *jw[:1], "phonetic", *jw[1:]]
        labels += ["nickname"] * _has_nicknames(c) + ["swapped"] * bool(c.swap_with)
        return [*labels, "transliterated", "exact"]

    def gamma(self, sides, c):
        tl_l, tl_r = sides("tl")
        present, same = _present(sides, "tl"), _equal(sides, "tl")
        fuzzy = _above_thresholds(sides, c, distance.JaroWinkler.normalized_similarity, code="tl")
        conditions = [*fuzzy[:1], _equal(sides, "ph"), *fuzzy[1:]]
        if _has_nicknames(c):
            (a_l, a_r), (b_l, b_r) = sides("nick1"), sides("nick2")
            conditions.append(((a_l == a_r) | (a_l == b_r)) & (a_l >= 0) | ((b_l == a_r) | (b_l == b_r)) & (b_l >= 0))
        if c.swap_with:
            sw_l, sw_r = sides("swap")
            conditions.append((tl_l == sw_r) & (sw_l == tl_r) & (sw_l != 0) & ~same)
        conditions += [same, _equal(sides, "raw")]
        return _assign(present, conditions)


def _has_nicknames(c: Comparison) -> bool:
    return c.field in ("first_name", "middle_name")


class EmailKind(Kind):
    """E-mail: exact, same local part at another domain, fuzzy (a typo)."""

    name = "email"

    def features(self, cols, c):
        email = cols[c.field]  # standardised: already lower case
        return {"code": email.hashes(), "local": email.map(fx.local_part).hashes(), "text": email.text()}

    def levels(self, c):
        return ["else", *(f"jaro_winkler>={t:g}" for t in sorted(c.thresholds)), "same_local_part", "exact"]

    def gamma(self, sides, c):
        fuzzy = _above_thresholds(sides, c, distance.JaroWinkler.normalized_similarity)
        return _assign(_present(sides), [*fuzzy, _equal(sides, "local"), _equal(sides, "code")])


class PhoneKind(Kind):
    """Phones in E.164: exact, or the same last 8 digits (the subscriber number under another prefix)."""

    name = "phone"

    def features(self, cols, c):
        phone = cols[c.field]  # standardised: E.164
        return {"code": phone.hashes(), "last8": phone.map(fx.last_digits(8)).hashes()}

    def levels(self, c):
        return ["else", "last_8_digits", "exact"]

    def gamma(self, sides, c):
        return _assign(_present(sides), [_equal(sides, "last8"), _equal(sides, "code")])


class DateKind(Kind):
    """Dates: exact, day and month transposed, one digit wrong, same year."""

    name = "date"

    def features(self, cols, c):
        dates = cols[c.field]
        return {"bcd": dates.keyed(fx.iso_date_bcd(dates.values), np.uint32(0))}

    def levels(self, c):
        return ["else", "same_year", "one_digit_differs", "day_month_transposed", "exact"]

    def gamma(self, sides, c):
        left, right = sides("bcd")  # a nibble per digit, a byte per month and day, two per year
        present = (left != 0) & (right != 0)
        same_year = (left >> 16) == (right >> 16)
        transposed = same_year & ((left >> 8) & 0xFF == right & 0xFF) & (left & 0xFF == (right >> 8) & 0xFF)
        x = left ^ right
        differing = np.bitwise_count((x | x >> 1 | x >> 2 | x >> 3) & 0x11111111)
        return _assign(present, [same_year, differing == 1, transposed & (left != right), left == right])


class PostcodeKind(Kind):
    """Postcodes: exact, or the same district."""

    name = "postcode"

    def features(self, cols, c):
        raw = cols[c.field]
        return {"code": raw.map(fx.postcode_key).hashes(), "district": raw.map(fx.postcode_district).hashes()}

    def levels(self, c):
        return ["else", "same_district", "exact"]

    def gamma(self, sides, c):
        return _assign(_present(sides), [_equal(sides, "district"), _equal(sides, "code")])


class AddressKind(Kind):
    """Street addresses: exact after normalisation, else token-set similarity (word order, abbreviations)."""

    name = "address"

    def features(self, cols, c):
        key = cols[c.field].map(fx.street_key)
        return {"code": key.hashes(), "text": key.text()}

    def levels(self, c):
        return ["else", *(f"token_set>={t:g}" for t in sorted(c.thresholds)), "exact"]

    def gamma(self, sides, c):
        fuzzy = _above_thresholds(sides, c, fuzz.token_set_ratio, scale=100.0)
        return _assign(_present(sides), [*fuzzy, _equal(sides, "code")])


class IdentifierKind(Kind):
    """Numeric and other identifiers: exact, or one edit (a typed digit wrong, two swapped)."""

    name = "identifier"

    def features(self, cols, c):
        key = cols[c.field].map(fx.identifier_key)
        return {"code": key.hashes(), "text": key.text()}

    def levels(self, c):
        return ["else", "one_edit", "exact"]

    def gamma(self, sides, c):
        present, same = _present(sides), _equal(sides, "code")
        edits = similarity(sides, "code", "text", present & ~same, distance.DamerauLevenshtein.distance, cutoff=1)
        return _assign(present, [edits == 1, same])


class StringKind(Kind):
    """Any text (city, company): exact after transliteration, else Jaro-Winkler thresholds."""

    name = "string"
    tf_feature = "tf"
    tf_levels = ("exact",)

    def features(self, cols, c):
        tl = self.tf_values(cols, c)
        return {"code": tl.hashes(), "text": tl.text(), "tf": tl.frequencies()}

    def tf_values(self, cols, c):
        return cols[c.field].map(fx.translit)

    def levels(self, c):
        return ["else", *(f"jaro_winkler>={t:g}" for t in sorted(c.thresholds)), "exact"]

    def gamma(self, sides, c):
        fuzzy = _above_thresholds(sides, c, distance.JaroWinkler.normalized_similarity)
        return _assign(_present(sides), [*fuzzy, _equal(sides, "code")])


class ExactKind(Kind):
    """Any value: equal (case-insensitive) or not."""

    name = "exact"
    tf_feature = "tf"
    tf_levels = ("exact",)

    def features(self, cols, c):
        value = self.tf_values(cols, c)
        return {"code": value.hashes(), "tf": value.frequencies()}

    def tf_values(self, cols, c):
        return cols[c.field].map(fx.casefold)

    def levels(self, c):
        return ["else", "exact"]

    def gamma(self, sides, c):
        return _assign(_present(sides), [_equal(sides, "code")])


KINDS: dict[str, Kind] = {k.name: k() for k in (NameKind, EmailKind, PhoneKind, DateKind, PostcodeKind,
                                                 AddressKind, IdentifierKind, StringKind, ExactKind)}
