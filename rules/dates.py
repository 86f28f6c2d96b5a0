"""Dates in the formats legacy systems write them."""

from __future__ import annotations

import pandas as pd

from rules.rule import blank_to_na, rule


@rule("DT01", "dates.iso")
def to_iso_date(values: pd.Series, dayfirst: bool = True) -> pd.DataFrame:
    """Parse dates and return them as ISO ``YYYY-MM-DD`` strings.

    Returns columns ``date`` and ``valid`` (False where a value was given but is no date).

    Example:
        >>> to_iso_date(pd.Series(["1980-02-29", "31/12/1975"]))["date"].tolist()
        ['1980-02-29', '1975-12-31']
    """
    cleaned = blank_to_na(values)
    iso = pd.to_datetime(cleaned, format="ISO8601", errors="coerce")
    other = pd.to_datetime(cleaned.where(iso.isna()), errors="coerce", dayfirst=dayfirst, format="mixed")
    parsed = iso.fillna(other)
    date = parsed.dt.strftime("%Y-%m-%d").astype("object").where(parsed.notna(), None)
    valid = parsed.notna() | cleaned.isna()
    return pd.DataFrame({"date": date, "valid": valid.astype(bool)}, index=values.index)
