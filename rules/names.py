"""Person and organisation names: casing, parsing, organisation forms and a matching key."""

from __future__ import annotations

import re
from functools import partial

import pandas as pd
from anyascii import anyascii
from nameparser import HumanName
from nameparser.config import CONSTANTS

from rules.rule import by_distinct, clean_text, map_text, on_distinct, rule

#: Name parts, in the order :func:`parse_name` returns them.
NAME_PARTS = ("title", "first_name", "middle_name", "last_name", "suffix")

# Lower-case particles of Dutch, German, French, Spanish, Portuguese and Arabic surnames.
# Italian "Di"/"Della"/"Lo" are left capitalised: that is how Italians write them.
_PARTICLES = frozenset({
    "van", "von", "der", "den", "ter", "ten", "de", "des", "du", "da", "das", "do", "dos", "la", "le",
    "y", "zu", "bin", "binti", "ibn", "af", "av",
})
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)")
_ROMAN = re.compile(r"(?:II|III|IV|VI|VII|VIII|IX|XI|XII)")
# "O'Brien", "D'Angelo": one letter, an apostrophe, then the name proper.
_ELIDED = re.compile(r"([^\W\d_])(['’])([^\W\d_]{2,}.*)")
# Mc/Mac heuristics of Lingua::EN::NameCase: Mac + at least three letters, not ending in
# a vowel-ish letter, so Mace, Macy and Macon stay as they are.
_MAC = re.compile(r"(ma?c)([^\W\d_]{2,}[^\W\d_aciozj])", re.IGNORECASE)
_NOT_MAC = frozenset({
    "macevicius", "machado", "machar", "machin", "machlin", "macias", "maciulis", "mackie", "mackle",
    "macklin", "macquarie", "macomber", "macin", "mackintosh", "macken", "machen", "machiel", "maciol",
    "mackell", "macklem", "mackrell", "maclin", "mackey", "mackley", "machell", "machon",
})

# Legal forms are removed from an organisation's matching key ("ACME LTD" ~ "Acme Limited");
# organisation words only mark a name as an organisation.
_LEGAL_FORMS = (
    "ltd", "limited", "l.l.c.", "l.l.p.", "p.l.c.", "inc", "incorporated", "corp", "corporation", "gmbh",
    "mbh", "gmbh & co. kg", "sarl", "s.a.r.l.", "s.à r.l.", "pty", "pty ltd", "pte", "pte ltd", "sdn bhd",
    "bhd", "oyj", "a/s", "aps", "gbr", "ohg", "sp. z o.o.", "s.r.o.", "kft", "zrt", "nyrt", "ltda",
    "eireli", "pvt", "pvt ltd", "tbk", "ооо", "оао", "зао", "пао", "тов", "şti", "s.a. de c.v.",
)
_ORG_WORDS = (
    "company", "& co", "& sons", "and sons", "holdings", "group", "partners", "partnership",
    "foundation", "association", "university", "gesellschaft", "verein", "stiftung", "società",
    "sociedad", "société",
)
# Short forms that are also syllables of personal names: only as the last word, and only
# in capitals or dotted ("ACME SA", "Acme S.A.", not "Maria Sa" or "Anna Sas").
_END_FORMS = (
    "AG", "KG", "UG", "SE", "SA", "S.A.", "SAS", "S.A.S.", "SpA", "SPA", "S.p.A.", "SRL", "Srl", "S.r.l.",
    "SL", "S.L.", "BV", "B.V.", "NV", "N.V.", "AB", "AS", "Oy", "OY", "KK", "K.K.", "CV", "C.V.", "Co.",
    "e.V.", "a.s.", "A.S.", "AE", "A.Ş.", "АО", "ΑΕ", "Α.Ε.", "ΕΠΕ",
)
_START_FORMS = ("PT", "CV", "ООО", "ОАО", "ЗАО", "ПАО", "АО", "ТОВ")
# CJK legal forms are written without spaces, so they are matched anywhere in the name.
_CJK_FORMS = ("株式会社", "有限会社", "合同会社", "有限公司", "公司", "(株)", "（株）", "㈱", "주식회사", "(주)", "㈜", "유한회사")


def _form_pattern(form: str) -> str:
    """A legal form with its dots and inner spaces optional: "s.p.a." also matches "SpA"."""
    chunks = [re.escape(c) for c in re.split(r"[.\s]+", form) if c]
    return r"[.\s]*".join(chunks) + (r"\.?" if form.endswith(".") or len(chunks) > 1 else "")


def _alternation(forms: tuple[str, ...]) -> str:
    # longest first so "pty ltd" wins over "pty"
    return "|".join(_form_pattern(f) for f in sorted(forms, key=len, reverse=True))


_WORD_START, _WORD_END = r"(?<![^\W_])", r"(?![^\W_])"
_LEGAL_FORM_RE = re.compile(rf"{_WORD_START}(?:{_alternation(_LEGAL_FORMS)}){_WORD_END}", re.IGNORECASE)
_ORG_RE = re.compile(
    rf"{_WORD_START}(?:{_alternation(_LEGAL_FORMS + _ORG_WORDS)}){_WORD_END}"
    rf"|(?:{'|'.join(map(re.escape, _CJK_FORMS))})",
    re.IGNORECASE,
)
# case-sensitive on purpose; names are whitespace-trimmed first, so a form alone never matches
_END_RE = re.compile(rf"\s(?:{'|'.join(map(re.escape, _END_FORMS))})[\s,.]*$")
_START_RE = re.compile(rf"^(?:{'|'.join(map(re.escape, _START_FORMS))})\s+\S")

# Tokens nameparser treats specially; a name without any of them splits on spaces alone.
_NAMEPARSER_WORDS = frozenset().union(*(
    {w.lower().strip(".") for w in words} for words in (
        CONSTANTS.titles, CONSTANTS.first_name_titles, CONSTANTS.suffix_acronyms,
        CONSTANTS.suffix_not_acronyms, CONSTANTS.prefixes, CONSTANTS.non_first_name_prefixes,
        CONSTANTS.conjunctions, CONSTANTS.bound_first_names,
    )
))
_LATIN_WORD = r"[A-Za-zÀ-ÖØ-öø-ÿ]+(?:['’-][A-Za-zÀ-ÖØ-öø-ÿ]+)*"
_SIMPLE_NAME = rf"{_LATIN_WORD}(?: {_LATIN_WORD}){{1,2}}"


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:].lower()


def _case_part(part: str) -> str:
    """Case one hyphen-free piece of a word."""
    if part[:1].isdigit():
        # "1ST" -> "1st", but a house number's letter stays: "221B"
        return part.lower() if _ORDINAL.fullmatch(part.lower()) else part.upper()
    if elided := _ELIDED.fullmatch(part):
        return elided[1].upper() + elided[2] + _capitalise(elided[3])
    if (mac := _MAC.fullmatch(part)) and part.lower() not in _NOT_MAC:
        return _capitalise(mac[1]) + _capitalise(mac[2])
    return _capitalise(part)


def _case_word(word: str, *, particle_allowed: bool, roman_allowed: bool) -> str:
    if particle_allowed and word.lower() in _PARTICLES:
        return word.lower()
    if roman_allowed and _ROMAN.fullmatch(word.upper()):
        return word.upper()
    return "-".join(_case_part(p) if p else p for p in word.split("-"))


def _proper_case_one(value: str, place: bool) -> str:
    text = " ".join(value.split())
    if text != text.upper() and text != text.lower():
        return text  # mixed case was typed on purpose: "McDonald", "van der Berg", "DuPont"
    words = text.split(" ")
    last = len(words) - 1
    return " ".join(
        # particles only before the surname proper, and a place name starts with a capital
        _case_word(w, particle_allowed=i < last and not (place and i == 0), roman_allowed=i > 0 or last == 0)
        for i, w in enumerate(words)
    )


@rule("NM01", "names.case")
def proper_case(values: pd.Series, place: bool = False) -> pd.Series:
    """Proper-case names typed all upper or all lower; mixed case is left alone.

    Knows Mc/Mac, O'/D', hyphens, Roman numerals and lower-case particles (van der, de la).
    With ``place`` (streets, cities) the first word is always capitalised ("Le Mans").

    Example:
        >>> proper_case(pd.Series(["  MARY-JANE  ", "o'brien", "VAN DER BERG", "McDonald"])).tolist()
        ['Mary-Jane', "O'Brien", 'van der Berg', 'McDonald']
    """
    return map_text(values, partial(_proper_case_one, place=place))


def _parse_one(value: str) -> tuple[str | None, ...]:
    name = HumanName(value)
    return tuple(getattr(name, p.split("_")[0]) or None for p in NAME_PARTS)


def _split_simple(names: pd.Series) -> pd.DataFrame:
    """Split "First [Middle] Last" on spaces, the way nameparser would, without nameparser."""
    words = names.str.split(" ", expand=True).reindex(columns=range(3))
    three = words[2].notna()
    return pd.DataFrame({
        "title": None, "first_name": words[0], "middle_name": words[1].where(three),
        "last_name": words[2].where(three, words[1]), "suffix": None,
    }, index=names.index)


def _parse_distinct(names: pd.Series) -> pd.DataFrame:
    words = names.str.lower().str.replace(r"['’.]", "", regex=True).str.split(" ", expand=True)
    simple = names.str.fullmatch(_SIMPLE_NAME) & ~words.isin(_NAMEPARSER_WORDS).any(axis=1)
    parsed = by_distinct(names[~simple], _parse_one)
    hard = pd.DataFrame(parsed.tolist(), index=parsed.index, columns=list(NAME_PARTS))
    return pd.concat([_split_simple(names[simple]), hard]).reindex(names.index)


@rule("NM02", "names.parse")
def parse_name(values: pd.Series) -> pd.DataFrame:
    """Split full names into title, first, middle, last and suffix (nameparser).

    Plain "First Last" names (the bulk) are split vectorised; anything with titles,
    suffixes, particles, commas or non-Latin letters goes through nameparser once per name.

    Example:
        >>> parse_name(pd.Series(["Dr. Juan de la Cruz Jr.", "Ann Lee"])).values.tolist()
        [['Dr.', 'Juan', None, 'de la Cruz', 'Jr.'], [None, 'Ann', None, 'Lee', None]]
    """
    return on_distinct(clean_text(values), _parse_distinct)


def _fold(value: str) -> str:
    """ASCII, lower case, letters and digits only: "Zoë O'Brien" -> "zoe obrien"."""
    ascii_text = anyascii(_END_RE.sub(" ", _LEGAL_FORM_RE.sub(" ", value))).lower().replace("'", "")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", ascii_text).split())


@rule("NM03", "names.key")
def name_key(values: pd.Series) -> pd.Series:
    """A matching key: transliterated to ASCII, lower case, punctuation and legal forms dropped.

    The original stays in the record; the key lets "Иван Петров" meet "Ivan Petrov" and
    "ACME LTD" meet "Acme Limited".

    Example:
        >>> name_key(pd.Series(["Иван Петров", "Zoë O'Brien", "ACME Ltd.", "  "])).tolist()
        ['ivan petrov', 'zoe obrien', 'acme', None]
    """
    return map_text(values, lambda v: _fold(v) or None)


def _is_organization(names: pd.Series) -> pd.Series:
    return (names.str.contains(_ORG_RE) | names.str.contains(_END_RE) | names.str.contains(_START_RE))


@rule("NM04", "names.organization")
def is_organization(values: pd.Series) -> pd.Series:
    """True where a name is an organisation's (a legal form or an organisation word).

    Legal forms: Ltd, GmbH, S.A., Inc, LLC, ООО, 株式会社 and many more; words: Holdings,
    Foundation, & Sons. Short forms (SA, AG, AB) count only as the last word, in capitals.

    Example:
        >>> is_organization(pd.Series(["Acme GmbH", "ООО Ромашка", "Maria Sa", "Ann Lee"])).tolist()
        [True, True, False, False]
    """
    found = on_distinct(clean_text(values), _is_organization)
    return found.eq(True)
