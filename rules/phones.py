"""Phone numbers to E.164 with phonenumbers, with their type and extension.

Two paths give the same answers (a test holds them to it): numbers that can be written
as "+<digits>" for certain are typed over phonenumbers' own metadata, compiled once;
everything else (letters, extensions, carrier codes, invalid numbers) goes through
``phonenumbers.parse``. Both run once per distinct number.
"""

from __future__ import annotations

import re
from functools import cache
from typing import NamedTuple

import phonenumbers
import pandas as pd
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneMetadata, PhoneNumberFormat, PhoneNumberType,
    region_code_for_country_code,
)

from migrate.errors import ConfigError
from rules.rule import NULL_TOKENS, as_text, by_distinct, on_distinct, reason_where, rule

#: Region codes phonenumbers knows (ISO-3166 alpha-2 plus a few like XK).
SUPPORTED_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)

_TYPES = {
    PhoneNumberType.MOBILE: "mobile", PhoneNumberType.FIXED_LINE: "fixed",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_or_mobile", PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate", PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip", PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager", PhoneNumberType.UAN: "uan", PhoneNumberType.VOICEMAIL: "voicemail",
}
_COLUMNS = ["phone", "type", "extension", "reason"]


def check_region(region: str | None) -> str | None:
    """Upper-case a region code; ValueError if phonenumbers does not know it.

    Example:
        >>> check_region("gb")
        'GB'
    """
    if region is None:
        return None
    code = str(region).strip().upper()
    if code not in SUPPORTED_REGIONS:
        raise ValueError(f"unknown region code {region!r}; expected an ISO-3166 alpha-2 code like 'GB'")
    return code


def _valid(value: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(value, region)
    except NumberParseException:
        return None
    # number_type is UNKNOWN exactly when is_valid_number is False; asking once halves the cost
    return number if phonenumbers.number_type(number) != PhoneNumberType.UNKNOWN else None


def _parse_one(value: str, region: str | None) -> tuple[str, str, str | None] | None:
    """E.164, type and extension of one number, or None when it is not a valid number."""
    number = _valid(value, region)
    if number is None and value.isdigit():
        # exports often drop the "+" ("447911123456") or keep the IDD prefix ("0044...")
        code = str(phonenumbers.country_code_for_region(region)) if region else None
        if code and value.startswith(code):
            number = _valid("+" + value, None)
        elif value.startswith("00"):
            number = _valid("+" + value[2:], None)
    if number is None:
        return None
    kind = _TYPES.get(phonenumbers.number_type(number), "unknown")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164), kind, number.extension or None


class _Dialling(NamedTuple):
    """How numbers are dialled from a region, from phonenumbers' metadata, regexes compiled."""

    code: str
    idd: str | None
    national: re.Pattern[str]
    max_length: int
    trunk: re.Pattern[str] | None
    transforms: bool
    metadata: PhoneMetadata


@cache
def _dialling(region: str) -> _Dialling:
    meta = PhoneMetadata.metadata_for_region_or_calling_code(
        int(region), region_code_for_country_code(int(region))) if region.isdigit() else \
        PhoneMetadata.metadata_for_region(region)
    idd = meta.international_prefix
    return _Dialling(
        code=str(meta.country_code), idd=idd if idd and idd.isdigit() else None,
        national=re.compile(meta.general_desc.national_number_pattern or "(?!)"),
        max_length=max(meta.general_desc.possible_length, default=0),
        trunk=re.compile(meta.national_prefix_for_parsing) if meta.national_prefix_for_parsing else None,
        transforms=bool(meta.national_prefix_transform_rule), metadata=meta,
    )


def _international(value: str, region: str | None) -> str | None:
    """The "+<digits>" form of a compact number, where phonenumbers would certainly agree.

    Mirrors the parser's first steps: an IDD prefix becomes "+", a leading country code is
    taken as one under the parser's own test, a trunk prefix (or none) is replaced by the
    country code. Anything less certain (letters, carrier codes, transform rules) is None
    and left to the parser. The point: "07911 123456" from one source and
    "+44 7911 123456" from another are validated once, not twice.
    """
    if value.startswith("+"):
        return value if value[1:].isascii() and value[1:].isdigit() else None
    if region is None or not (value.isascii() and value.isdigit()):
        return None
    rules = _dialling(region)
    if rules.idd and value.startswith(rules.idd):
        return "+" + value[len(rules.idd):]
    if value.startswith(rules.code):
        # a leading country code counts when the whole is no national number of the region
        # (or too long for one) but the rest is
        whole_fits = rules.national.fullmatch(value) and len(value) <= rules.max_length
        return None if whole_fits or not rules.national.fullmatch(value[len(rules.code):]) else "+" + value
    if rules.transforms:
        return None
    trunk = rules.trunk.match(value) if rules.trunk else None
    if trunk and any(trunk.groups()):
        return None
    return f"+{rules.code}{value[trunk.end():] if trunk else value}"


# The number types phonenumbers tests, in its order; the first whose pattern fits wins.
_KINDS = {
    "premium_rate": PhoneNumberType.PREMIUM_RATE, "toll_free": PhoneNumberType.TOLL_FREE,
    "shared_cost": PhoneNumberType.SHARED_COST, "voip": PhoneNumberType.VOIP,
    "personal_number": PhoneNumberType.PERSONAL_NUMBER, "pager": PhoneNumberType.PAGER,
    "uan": PhoneNumberType.UAN, "voicemail": PhoneNumberType.VOICEMAIL,
    "fixed_line": PhoneNumberType.FIXED_LINE, "mobile": PhoneNumberType.MOBILE,
}


class _Types(NamedTuple):
    """One region's number patterns compiled once; phonenumbers compiles them per call."""

    general: re.Pattern[str] | None
    kinds: re.Pattern[str] | None  # every type's pattern as a named alternative, in order
    mobile: re.Pattern[str] | None
    same_fixed_and_mobile: bool
    leading_digits: re.Pattern[str] | None


def _pattern(desc: object) -> str | None:
    """A number description as one regex: its possible lengths (a lookahead), then its pattern."""
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = "|".join(rf"\d{{{n}}}" for n in desc.possible_length)
    return (f"(?=(?:{lengths})$)" if lengths else "") + f"(?:{desc.national_number_pattern})"


@cache
def _types(region: str, code: int) -> _Types | None:
    meta = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if meta is None:
        return None
    kinds = [(name, _pattern(getattr(meta, name))) for name in _KINDS]
    alternatives = "|".join(f"(?P<{name}>{pattern})" for name, pattern in kinds if pattern)
    compiled = [re.compile(p) if p else None for p in (_pattern(meta.general_desc), alternatives, _pattern(meta.mobile))]
    return _Types(*compiled, same_fixed_and_mobile=bool(meta.same_mobile_and_fixed_line_pattern),
                  leading_digits=re.compile(meta.leading_digits) if meta.leading_digits else None)


def _type_in(national: str, types: _Types | None) -> int:
    """phonenumbers' _number_type_helper, with one regex for all types instead of one per type."""
    if types is None or types.general is None or not types.general.fullmatch(national) or types.kinds is None:
        return PhoneNumberType.UNKNOWN
    found = types.kinds.fullmatch(national)
    kind = found.lastgroup if found else None
    if kind == "fixed_line":
        mobile_too = types.same_fixed_and_mobile or (types.mobile is not None and types.mobile.fullmatch(national))
        return PhoneNumberType.FIXED_LINE_OR_MOBILE if mobile_too else PhoneNumberType.FIXED_LINE
    if kind is None or (kind == "mobile" and types.same_fixed_and_mobile):
        return PhoneNumberType.UNKNOWN
    return _KINDS[kind]


def _claims(region: str, code: int, national: str) -> bool:
    """Whether a region sharing a country code (+1, +7, +44...) owns the number."""
    types = _types(region, code)
    if types is None:
        return False
    if types.leading_digits is not None:
        return types.leading_digits.match(national) is not None
    return _type_in(national, types) != PhoneNumberType.UNKNOWN


def _parse_international(candidate: str) -> tuple[str, str, None] | None:
    """E.164 and type of a "+<digits>" number, as phonenumbers would give them, several times faster.

    Splits the country code and types the number the way phonenumbers.parse and
    number_type do, over patterns compiled once. None sends the number to the parser: an
    unknown country code, a national part the parser might strip a trunk prefix from, or
    no valid number.
    """
    digits = candidate[1:]
    size = next((n for n in (1, 2, 3) if int(digits[:n]) in COUNTRY_CODE_TO_REGION_CODE), None) \
        if digits[:1].isdigit() and digits[0] != "0" else None
    national = digits[size:] if size else ""
    if not 2 <= len(national) <= 17 or not national.strip("0"):
        return None
    rules = _dialling(digits[:size])
    if rules.trunk and rules.trunk.match(national):
        return None
    code = int(rules.code)
    regions = COUNTRY_CODE_TO_REGION_CODE[code]
    region = regions[0] if len(regions) == 1 else next((r for r in regions if _claims(r, code, national)), None)
    kind = _type_in(national, _types(region, code)) if region else PhoneNumberType.UNKNOWN
    if kind == PhoneNumberType.UNKNOWN:
        return None
    return f"+{code}{national}", _TYPES.get(kind, "unknown"), None


# separators people type between digit groups
_SEPARATORS = str.maketrans("", "", " \t\n\u00a0-./()")


def _compact(value: object) -> str | None:
    """One spelling per number, so "020 7946 0018" and "(020) 7946-0018" are parsed once."""
    text = as_text(value)
    if text is None:
        return None
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]  # went through a float column
    # "+44 (0)20": the trunk 0 is only dialled at home
    text = text.replace("(0)", "").translate(_SEPARATORS)
    return None if text.upper() in NULL_TOKENS else text


def _parse_distinct(pairs: pd.DataFrame) -> pd.DataFrame:
    keyed = pd.DataFrame({"value": pairs["value"].map(_compact), "region": pairs["region"]})
    # cheap per value, so not worth a process pool
    candidates = by_distinct(keyed, _international, workers=1)
    parsed = by_distinct(candidates, _parse_international)
    rest = parsed.isna()
    parsed[rest] = by_distinct(keyed[rest], _parse_one)
    ok = parsed.notna()
    out = pd.DataFrame(parsed[ok].tolist(), index=parsed.index[ok], columns=_COLUMNS[:3]).reindex(parsed.index)
    out["reason"] = reason_where(~ok & keyed["value"].notna(), "invalid_phone")
    return out


def _known_regions(regions: pd.Series) -> pd.Series:
    codes = regions.astype("string").str.strip().str.upper()
    return codes.astype(object).where(codes.isin(SUPPORTED_REGIONS).eq(True), None)


@rule("PH01", "phones.e164")
def to_e164(values: pd.Series, region: str | pd.Series | None = None) -> pd.DataFrame:
    """Phone numbers to E.164 with their type (mobile, fixed...) and extension.

    ``region`` (one code, or one per row, e.g. from the record's country) is used for
    numbers written without a country code. Returns columns ``phone``, ``type``,
    ``extension`` and ``reason`` (``invalid_phone`` where a value was given but is not a
    valid number). Each distinct number is validated once, whichever way it was written.

    Example:
        >>> out = to_e164(pd.Series(["07911 123456", "020 7946 0018 ext. 12", "12345"]), "GB")
        >>> out.values.tolist()
        [['+447911123456', 'mobile', None, None], ['+442079460018', 'fixed', '12', None], [None, None, None, 'invalid_phone']]
    """
    if isinstance(region, pd.Series):
        regions = on_distinct(region.astype(object), _known_regions)
    else:
        try:
            regions = pd.Series(check_region(region), index=values.index, dtype=object)
        except ValueError as error:
            raise ConfigError(f"region: {error}") from None
    pairs = pd.DataFrame({"value": values.astype(object), "region": regions})
    return on_distinct(pairs, _parse_distinct).reindex(columns=_COLUMNS)

