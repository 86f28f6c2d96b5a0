"""Addresses: countries to ISO-3166 alpha-2, postcodes per country, street abbreviations."""

from __future__ import annotations

import gettext
import re
from functools import cache

import pandas as pd
import pycountry

from rules.names import proper_case
from rules.rule import blank_to_na, clean_text, fold, on_distinct, reason_where, rule

# Country names are looked up in these languages besides English (pycountry's translations).
_LANGUAGES = (
    "de", "fr", "es", "it", "nl", "pt", "pt_BR", "pl", "sv", "da", "nb_NO", "fi", "cs", "hu", "ro", "tr",
    "el", "ru", "uk", "bg", "sr", "zh_CN", "zh_TW", "ja", "ko", "ar", "he", "hi", "th", "vi", "id",
)
# Names people write that ISO does not list.
_ALIASES = {
    "GB": ("uk", "great britain", "britain", "england", "scotland", "wales", "northern ireland",
           "grossbritannien", "grande bretagne", "gran bretana", "inghilterra", "engeland", "angleterre"),
    "US": ("usa", "us", "america", "united states of america", "vereinigte staaten von amerika", "eeuu"),
    "IE": ("eire", "republic of ireland"), "NL": ("holland", "the netherlands"), "RU": ("russia", "россия"), "KR": ("korea", "south korea"),
    "KP": ("north korea",), "TR": ("turkey", "turkei"), "CZ": ("czech republic", "czechia"),
    "CI": ("ivory coast",), "MK": ("macedonia",), "SZ": ("swaziland",), "MM": ("burma",),
    "CV": ("cape verde",), "VA": ("vatican",), "XK": ("kosovo", "xk"), "GR": ("el",),
    "CN": ("prc", "中华人民共和国"), "AE": ("uae",), "VN": ("viet nam",),
}


def _key(text: str) -> str:
    """Case, accents and punctuation folded: "Côte d’Ivoire" -> "cote d ivoire"."""
    # dots join ("U.S.A." is "usa"); other punctuation separates words
    return " ".join(re.sub(r"[^\w]+", " ", fold(text).replace(".", "")).split())


@cache
def _country_index() -> dict[str, str]:
    """Folded country name or code -> alpha-2; English and codes win over translations."""
    index: dict[str, str] = {}
    countries = list(pycountry.countries)
    names = [(c.alpha_2, [c.name, getattr(c, "common_name", None), getattr(c, "official_name", None)])
             for c in countries]
    for c in countries:
        for code in (c.alpha_2, c.alpha_3, c.numeric, str(int(c.numeric))):
            index.setdefault(_key(code), c.alpha_2)
    for alpha_2, aliases in _ALIASES.items():
        for alias in aliases:
            index.setdefault(_key(alias), alpha_2)
    translators = [gettext.NullTranslations()] + [
        gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang], fallback=True)
        for lang in _LANGUAGES
    ]
    for translator in translators:
        for alpha_2, spellings in names:
            for name in filter(None, spellings):
                index.setdefault(_key(translator.gettext(name)), alpha_2)
    return index


def _country_one(value: str) -> str | None:
    return _country_index().get(_key(value))


@rule("AD01", "addresses.country")
def country_code(values: pd.Series) -> pd.DataFrame:
    """Country names (in 30+ languages) and codes (alpha-2, alpha-3, numeric) to ISO alpha-2.

    Returns columns ``country`` and ``reason`` (``invalid_country`` where a value was given
    but names no country).

    Example:
        >>> country_code(pd.Series(["United Kingdom", "de", "FRA", "Deutschland", "日本", "Atlantis"])).values.tolist()
        [['GB', None], ['DE', None], ['FR', None], ['DE', None], ['JP', None], [None, 'invalid_country']]
    """
    return on_distinct(values.astype(object), _country_distinct).reindex(columns=["country", "reason"])


def _country_distinct(values: pd.Series) -> pd.DataFrame:
    cleaned = blank_to_na(values)
    country = cleaned.map(_country_one, na_action="ignore").astype(object)
    return pd.DataFrame({"country": country, "reason": reason_where(cleaned.notna() & country.isna(),
                                                                    "invalid_country")})


# Per country: the compact form (no spaces or hyphens) and how to write it. ``pad`` restores
# a leading zero a spreadsheet dropped from an all-digit code ("2134" -> "02134").
_POSTCODES: dict[str, tuple[str, str, int]] = {
    "GB": (r"([A-Z]{1,2}\d[A-Z\d]?)(\d[A-Z]{2})", r"\1 \2", 0),
    "US": (r"(\d{5})(?:(\d{4}))?", r"\1-\2", 5),
    "CA": (r"([A-Z]\d[A-Z])(\d[A-Z]\d)", r"\1 \2", 0),
    "NL": (r"(\d{4})([A-Z]{2})", r"\1 \2", 0),
    "IE": (r"([AC-FHKNPRTV-Y]\d{2}|D6W)([0-9AC-FHKNPRTV-Y]{4})", r"\1 \2", 0),
    "PL": (r"(\d{2})(\d{3})", r"\1-\2", 5),
    "PT": (r"(\d{4})(\d{3})", r"\1-\2", 0),
    "BR": (r"(\d{5})(\d{3})", r"\1-\2", 8),
    "JP": (r"(\d{3})(\d{4})", r"\1-\2", 0),
    **{c: (r"(\d{3})(\d{2})", r"\1 \2", 0) for c in ("SE", "CZ", "SK", "GR")},
    **{c: (r"(\d{5})", r"\1", 5) for c in ("DE", "FR", "IT", "ES", "FI", "MX", "KR", "MY", "TH", "UA", "TR")},
    **{c: (r"(\d{4})", r"\1", 4) for c in ("AU", "AT", "BE", "CH", "DK", "NO", "HU", "ZA", "NZ", "LU", "PH")},
    **{c: (r"(\d{6})", r"\1", 0) for c in ("IN", "RU", "CN", "SG", "BY", "KZ", "RO")},
}


def _postcode_group(codes: pd.Series, country: str) -> pd.DataFrame:
    """Format the postcodes of one country; those that do not fit its pattern keep their text."""
    tidy = codes.str.upper().str.replace(r"\s+", " ", regex=True)
    if country not in _POSTCODES:
        return pd.DataFrame({"postcode": tidy, "reason": None})
    pattern, layout, pad = _POSTCODES[country]
    # "D-10115", "NL-1234 AB": a country prefix from European mail habits
    compact = tidy.str.replace(rf"^(?:{country}|[A-Z]{{1,2}})-(?=\d)", "", regex=True)
    compact = compact.str.replace(r"[\s\-]", "", regex=True)
    if pad:
        short = compact.str.fullmatch(rf"\d{{{pad - 1}}}")
        compact = compact.where(~short, "0" + compact)
    fits = compact.str.fullmatch(pattern)
    formatted = compact.str.replace(rf"^{pattern}$", layout, regex=True).str.rstrip("-")
    return pd.DataFrame({
        "postcode": formatted.where(fits, tidy),
        "reason": reason_where(~fits, "invalid_postcode"),
    })


def _postcode_distinct(pairs: pd.DataFrame) -> pd.DataFrame:
    countries = pairs["country"].fillna("")
    parts = [_postcode_group(group["postcode"], country) for country, group in pairs.groupby(countries)]
    return pd.concat(parts).reindex(pairs.index) if parts else pd.DataFrame(columns=["postcode", "reason"])


@rule("AD02", "addresses.postcode")
def normalise_postcode(values: pd.Series, country: str | pd.Series | None = None) -> pd.DataFrame:
    """Postcodes in their country's layout ("SW1A1AA" -> "SW1A 1AA", "1234ab" -> "1234 AB").

    ``country`` is an alpha-2 code, or one per row. Returns columns ``postcode`` and
    ``reason`` (``invalid_postcode`` where it does not fit the country's pattern; the text is
    kept, upper-cased, since a wrong pattern here must not lose an address).

    Example:
        >>> normalise_postcode(pd.Series(["sw1a1aa", "2134", "ABC"]), pd.Series(["GB", "US", "DE"])).values.tolist()
        [['SW1A 1AA', None], ['02134', None], ['ABC', 'invalid_postcode']]
    """
    countries = country if isinstance(country, pd.Series) else pd.Series(country, index=values.index, dtype=object)
    pairs = pd.DataFrame({"postcode": blank_to_na(values.astype(object)), "country": countries.astype(object)})
    return on_distinct(pairs, _postcode_distinct).reindex(columns=["postcode", "reason"])


# Street-type abbreviations written after the name ("Main St", "Hauptstr.") and before it
# ("Av. de la Paix", "C/ Mayor"). "St" first is "Saint" ("St Albans Road") and stays.
_SUFFIX_WORDS = {
    "st": "Street", "str": "Street", "rd": "Road", "ave": "Avenue", "av": "Avenue", "blvd": "Boulevard",
    "dr": "Drive", "ln": "Lane", "ct": "Court", "pl": "Place", "sq": "Square", "hwy": "Highway",
    "pkwy": "Parkway", "cres": "Crescent", "ter": "Terrace", "terr": "Terrace", "cl": "Close",
    "gdns": "Gardens", "mt": "Mount", "pde": "Parade", "rdg": "Ridge", "cir": "Circle", "sta": "Station",
}
_PREFIX_WORDS = {
    "av": "Avenue", "ave": "Avenue", "bd": "Boulevard", "bld": "Boulevard", "boul": "Boulevard",
    "rte": "Route", "c/": "Calle", "avda": "Avenida", "pza": "Plaza", "pl": "Place", "ch": "Chemin",
}
_SUFFIX_RE = re.compile(
    rf"(?<=\S )({'|'.join(_SUFFIX_WORDS)})\.?(?=\s*(?:,|$|\d))", re.IGNORECASE)
_PREFIX_RE = re.compile(
    rf"^((?:\d+\w?,?\s+)?)({'|'.join(map(re.escape, _PREFIX_WORDS))})(?:\.\s*|\s+|(?<=/))(?=\w)", re.IGNORECASE)
_GERMAN_STR_RE = re.compile(r"(?<=\w)(str)\.?(?=[\s,\d]|$)", re.IGNORECASE)
_PO_BOX_RE = re.compile(r"\bp\.?\s*o\.?\s*box\b", re.IGNORECASE)


def _street_words(streets: pd.Series) -> pd.Series:
    s = streets.str.replace(_PO_BOX_RE, "PO Box", regex=True)
    s = s.str.replace(_GERMAN_STR_RE, "straße", regex=True)
    s = s.str.replace(_PREFIX_RE, lambda m: m[1] + _PREFIX_WORDS[m[2].lower()] + " ", regex=True)
    return s.str.replace(_SUFFIX_RE, lambda m: _SUFFIX_WORDS[m[1].lower()], regex=True)


@rule("AD03", "addresses.street")
def normalise_street(values: pd.Series) -> pd.Series:
    """Street lines cased like place names, with street-type abbreviations written out.

    Example:
        >>> normalise_street(pd.Series(["12 MAIN ST.", "Hauptstr. 5", "3 av. des Champs", "St Albans Rd"])).tolist()
        ['12 Main Street', 'Hauptstraße 5', '3 Avenue des Champs', 'St Albans Road']
    """
    cased = proper_case(clean_text(values), place=True)
    return on_distinct(cased, _street_words)
