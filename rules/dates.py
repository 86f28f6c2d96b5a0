"""Dates and timestamps in the formats legacy systems write them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import pandas as pd

from rules.rule import blank_to_na, fold, on_distinct, reason_where, rule

#: How a source writes numeric dates whose day and month could be swapped (03/04/1980).
DateOrder = Literal["dmy", "mdy", "ymd"]

#: Oldest plausible age of a living customer.
MAX_AGE_YEARS = 120

_MONTH_NAMES = (
    "january february march april may june july august september october november december",
    "januar februar märz april mai juni juli august september oktober november dezember",
    "jänner",
    "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
    "januari februari maart april mei juni juli augustus september oktober november december",
    "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro",
    "январь февраль март апрель май июнь июль август сентябрь октябрь ноябрь декабрь",
    "января февраля марта апреля мая июня июля августа сентября октября ноября декабря",
    "styczeń luty marzec kwiecień maj czerwiec lipiec sierpień wrzesień październik listopad grudzień",
    "stycznia lutego marca kwietnia maja czerwca lipca sierpnia września października listopada grudnia",
)


def _month_lookup() -> dict[str, int]:
    """Folded month name or unambiguous abbreviation (3+ letters) -> month number."""
    candidates: dict[str, set[int]] = {}
    for line in _MONTH_NAMES:
        # "jänner" is January alone; every other line lists the twelve months in order
        for month, name in enumerate(line.split(), start=1):
            word = fold(name)
            for end in range(3, len(word) + 1):
                candidates.setdefault(word[:end], set()).add(month)
    lookup = {word: months.pop() for word, months in candidates.items() if len(months) == 1}
    lookup["mrt"] = 3  # Dutch
    return lookup


_MONTHS = _month_lookup()

_TIME = (r"(?:[ T]+(?P<hh>\d{1,2}):(?P<mi>\d{2})(?::(?P<ss>\d{2}))?(?:[.,]\d+)?\s*"
         r"(?P<tz>Z|UTC|GMT|[+-]\d{2}:?\d{2})?)?")
_ORDINAL = r"(?:st|nd|rd|th|er|º|\.)?"
# Each layout names its parts: y/m/d, a/b/c (numeric, order decided per source),
# mon (a month word) or serial (an Excel day number).
_LAYOUTS = (
    rf"(?P<y>\d{{4}})[-/.](?P<m>\d{{1,2}})[-/.](?P<d>\d{{1,2}}){_TIME}",
    r"(?P<y>(?:19|20)\d{2})(?P<m>\d{2})(?P<d>\d{2})",
    rf"(?P<a>\d{{1,2}})[-/. ](?P<b>\d{{1,2}})[-/. ](?P<c>\d{{4}}|\d{{2}}){_TIME}",
    # "29 de febrero de 1980", "29 февраля 1980 г."
    rf"(?P<d>\d{{1,2}}){_ORDINAL}[-/ ]*(?:de )?(?P<mon>[^\W\d_]{{3,}})\.?,?[-/ ]*(?:de )?(?P<y>\d{{4}}|\d{{2}})"
    rf"(?:\s*г\.?)?{_TIME}",
    rf"(?P<mon>[^\W\d_]{{3,}})\.?[-/ ]*(?P<d>\d{{1,2}}){_ORDINAL},?[-/ ]*(?P<y>\d{{4}}){_TIME}",
    r"(?P<y>\d{4})[-/ ](?P<mon>[^\W\d_]{3,})\.?[-/ ](?P<d>\d{1,2})",
    r"(?P<y>\d{4})\s*[年년]\s*(?P<m>\d{1,2})\s*[月월]\s*(?P<d>\d{1,2})\s*[日일]?",
    r"(?P<serial>\d{5})(?:\.\d+)?",
)
_NUMERIC = _LAYOUTS[2]
# MySQL's "0000-00-00" and friends mean "no date", not a wrong one.
_ZERO_DATE = r"[0\-/. :T]*0[0\-/. :T]*"
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")  # Excel's day 0, after its 1900 leap-year bug


def _texts(values: pd.Series) -> pd.Series:
    text = blank_to_na(values)
    return text.mask(text.str.fullmatch(_ZERO_DATE).eq(True))


def infer_date_order(values: pd.Series) -> DateOrder | None:
    """Day-first or month-first, from the numeric dates whose first or second part is over 12.

    Returns None when the values do not tell (no such dates, or as many of each).

    Example:
        >>> infer_date_order(pd.Series(["03/04/1980", "25/12/1975", "01/02/2001"]))
        'dmy'
    """
    parts = _texts(values.astype(object).drop_duplicates()).str.extract(f"^{_NUMERIC}$")
    day_first = (parts["a"].astype(float) > 12).sum()
    month_first = (parts["b"].astype(float) > 12).sum()
    if day_first == month_first:
        return None
    return "dmy" if day_first > month_first else "mdy"


def _full_year(years: pd.Series, today: dt.date) -> pd.Series:
    """Two-digit years in the last hundred years up to today: "80" -> 1980, "05" -> 2005."""
    two_digit = years < 100
    century = np.where(years % 100 <= today.year % 100, today.year // 100, today.year // 100 - 1)
    return years.where(~two_digit, century * 100 + years % 100)


def _parse(texts: pd.Series, order: DateOrder, today: dt.date) -> pd.Series:
    """Timestamps (UTC, naive) of the texts; NaT where no layout fits."""
    found = pd.DataFrame(index=texts.index, columns=["y", "m", "d", "hh", "mi", "ss", "tz", "serial"], dtype=object)
    left = texts.dropna()
    for layout in _LAYOUTS:
        parts = left.str.extract(f"^{layout}$", flags=0)
        hit = parts.notna().any(axis=1)
        parts = parts[hit]
        if "a" in parts:
            d, m, y = {"dmy": ("a", "b", "c"), "mdy": ("b", "a", "c"), "ymd": ("c", "b", "a")}[order]
            parts = parts.rename(columns={d: "d", m: "m", y: "y"})
        if "mon" in parts:
            parts["m"] = parts["mon"].map(lambda w: _MONTHS.get(fold(w)))
        found.loc[parts.index, parts.columns.intersection(found.columns)] = parts
        left = left[~hit]
    numbers = found.drop(columns="tz").apply(pd.to_numeric, errors="coerce")
    stamps = pd.to_datetime(pd.DataFrame({
        "year": _full_year(numbers["y"], today), "month": numbers["m"], "day": numbers["d"],
        "hour": numbers["hh"].fillna(0), "minute": numbers["mi"].fillna(0), "second": numbers["ss"].fillna(0),
    }), errors="coerce")
    # to_datetime rolls 25:00 over to the next day; a clock that reads 25:00 is wrong
    bad_time = (numbers["hh"] > 23) | (numbers["mi"] > 59) | (numbers["ss"] > 59)
    stamps = stamps.mask(bad_time) - _offsets(found["tz"])
    serial = numbers["serial"].dropna()
    return stamps.fillna(_EXCEL_EPOCH + pd.to_timedelta(serial, unit="D"))


def _offsets(zones: pd.Series) -> pd.Series:
    """UTC offsets of "+02:00", "-0500", "Z" as timedeltas (zero where none is given)."""
    parts = zones.str.extract(r"^(?P<sign>[+-])(?P<h>\d{2}):?(?P<m>\d{2})$").apply(pd.to_numeric, errors="coerce")
    sign = zones.str[:1].map({"+": 1, "-": -1}).astype(float)
    minutes = (sign * (parts["h"] * 60 + parts["m"])).fillna(0)
    return pd.to_timedelta(minutes, unit="min")


def _parsed_column(values: pd.Series, order: DateOrder | Literal["auto"], default_order: DateOrder,
                   today: dt.date | str | None, layout: str, name: str, reason: str) -> pd.DataFrame:
    """Shared by :func:`to_iso_date` and :func:`to_iso_timestamp`: parse, format, flag."""
    raw = values.astype(object)
    width = len(pd.Timestamp(0).strftime(layout))
    # values already in the output layout (most timestamps) only need checking, which
    # to_datetime does in C for the whole column; the rest is parsed per distinct value
    candidates = pd.Series([v if type(v) is str and len(v) == width else None for v in raw.tolist()],
                           index=raw.index, dtype=object)
    exact = pd.to_datetime(candidates, format=layout, errors="coerce").notna()
    out = pd.DataFrame({name: candidates.where(exact, None), "reason": None}, index=raw.index, dtype=object)
    rest = raw[~exact]
    if len(rest):
        resolved = (infer_date_order(rest) or default_order) if order == "auto" else order
        day = pd.Timestamp(today or dt.date.today()).date()

        def distinct(uniques: pd.Series) -> pd.DataFrame:
            texts = _texts(uniques)
            stamps = _parse(texts, resolved, day)
            return pd.DataFrame({name: stamps.dt.strftime(layout).astype(object).where(stamps.notna(), None),
                                 "reason": reason_where(texts.notna() & stamps.isna(), reason)})

        out.loc[~exact, [name, "reason"]] = on_distinct(rest, distinct).reindex(columns=[name, "reason"]).to_numpy()
    return out


@rule("DT01", "dates.iso")
def to_iso_date(values: pd.Series, order: DateOrder | Literal["auto"] = "auto", default_order: DateOrder = "dmy",
                today: dt.date | str | None = None) -> pd.DataFrame:
    """Dates in many layouts to ISO ``YYYY-MM-DD``.

    Reads ISO, ``yyyymmdd``, numeric day/month/year (``order``: ``auto`` decides from the
    values themselves, else ``default_order``), month names in ten languages, CJK
    ``1980年2月29日``, Excel serial numbers and date objects; two-digit years fall in the
    hundred years up to ``today``. ``0000-00-00`` and blanks are missing. Returns columns
    ``date`` and ``reason`` (``invalid_date`` where a value was given but is no date).

    Example:
        >>> to_iso_date(pd.Series(["1980-02-29", "31/12/1975", "29 février 1980", "29280", "31/02/1980",
        ...     "0000-00-00"])).values.tolist()
        [['1980-02-29', None], ['1975-12-31', None], ['1980-02-29', None], ['1980-02-29', None], [None, 'invalid_date'], [None, None]]
    """
    return _parsed_column(values, order, default_order, today, "%Y-%m-%d", "date", "invalid_date")


@rule("DT02", "dates.timestamp")
def to_iso_timestamp(values: pd.Series, order: DateOrder | Literal["auto"] = "auto",
                     default_order: DateOrder = "dmy", today: dt.date | str | None = None) -> pd.DataFrame:
    """Timestamps to ISO ``YYYY-MM-DDTHH:MM:SS`` in UTC (offsets applied, naive taken as UTC).

    Same layouts as :func:`to_iso_date`, with an optional time. Returns columns
    ``timestamp`` and ``reason`` (``invalid_timestamp``).

    Example:
        >>> to_iso_timestamp(pd.Series(["2024-03-01T10:30:00+02:00", "01/03/2024 10:30", "soon"])).values.tolist()
        [['2024-03-01T08:30:00', None], ['2024-03-01T10:30:00', None], [None, 'invalid_timestamp']]
    """
    return _parsed_column(values, order, default_order, today, "%Y-%m-%dT%H:%M:%S", "timestamp", "invalid_timestamp")


@rule("DT03", "dates.birth_plausible")
def plausible_birth_date(values: pd.Series, today: dt.date | str | None = None) -> pd.DataFrame:
    """Keep ISO birth dates that are not in the future and at most 120 years ago.

    Returns columns ``birth_date`` (missing where implausible) and ``reason``
    (``implausible_birth_date``). Placeholder dates like 1900-01-01 fall out here.

    Example:
        >>> plausible_birth_date(pd.Series(["1980-02-29", "2999-01-01", "1900-01-01", None]),
        ...     today="2025-06-01").values.tolist()
        [['1980-02-29', None], [None, 'implausible_birth_date'], [None, 'implausible_birth_date'], [None, None]]
    """
    day = pd.Timestamp(today or dt.date.today())
    earliest = (day - pd.DateOffset(years=MAX_AGE_YEARS)).strftime("%Y-%m-%d")
    iso = values.astype("string")
    # ISO strings order like the dates they spell, so no parsing is needed
    bad = (iso > day.strftime("%Y-%m-%d")) | (iso < earliest)
    return pd.DataFrame({
        "birth_date": iso.astype(object).where(iso.notna() & ~bad.fillna(False), None),
        "reason": reason_where(bad, "implausible_birth_date"),
    }, index=values.index)
