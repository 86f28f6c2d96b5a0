"""Addresses: countries to ISO-3166 alpha-2, postcodes tidied."""

from __future__ import annotations

import pandas as pd
import pycountry

from rules.rule import blank_to_na, by_distinct, rule


def _country(value: str) -> str | None:
    try:
        return pycountry.countries.lookup(value.strip()).alpha_2
    except LookupError:
        try:
            return pycountry.countries.search_fuzzy(value.strip())[0].alpha_2
        except LookupError:
            return None


@rule("AD01", "addresses.country")
def country_code(values: pd.Series) -> pd.Series:
    """Country names and codes to ISO-3166 alpha-2; unknown values become missing.

    Example:
        >>> country_code(pd.Series(["United Kingdom", "de", "FRA"])).tolist()
        ['GB', 'DE', 'FR']
    """
    return by_distinct(blank_to_na(values), lambda v: _country(str(v)))


@rule("AD02", "addresses.postcode")
def normalise_postcode(values: pd.Series) -> pd.Series:
    """Upper-case postcodes and collapse their inner spaces.

    Example:
        >>> normalise_postcode(pd.Series([" sw1a  1aa "])).tolist()
        ['SW1A 1AA']
    """
    return blank_to_na(values).str.upper().str.replace(r"\s+", " ", regex=True).astype("object")
