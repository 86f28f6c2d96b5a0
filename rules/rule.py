"""Rules carry a stable code, a dotted name and a docstring example (like sqlfluff rules)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pandas as pd

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class Rule:
    """A registered rule: ``code`` (e.g. ``PH01``), ``name`` (e.g. ``phones.e164``), function."""

    code: str
    name: str
    func: Callable
    doc: str


RULES: dict[str, Rule] = {}


def rule(code: str, name: str) -> Callable[[F], F]:
    """Register a standardisation rule under a stable code and dotted name."""

    def wrap(func: F) -> F:
        RULES[name] = Rule(code, name, func, func.__doc__ or "")
        return func

    return wrap


def by_distinct(values: pd.Series, func: Callable[[object], object]) -> pd.Series:
    """Apply a per-value function once per distinct value and map the result back.

    Real columns repeat a lot (countries, cities, the same phone in several rows), so the
    slow per-value libraries (phonenumbers, email-validator, nameparser) run once per value.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    results = [func(v) for v in uniques]
    out = pd.Series([None] * len(values), index=values.index, dtype="object")
    mask = codes >= 0
    if mask.any():
        looked_up = pd.Series(results, dtype="object").to_numpy()[codes[mask]]
        out[mask] = looked_up
    return out


def blank_to_na(values: pd.Series) -> pd.Series:
    """Strip strings and turn blanks and the usual placeholders into missing values."""
    s = values.astype("string").str.strip()
    return s.mask(s.str.upper().isin(NULL_TOKENS) | (s == ""))


#: Placeholders legacy systems use for "no value".
NULL_TOKENS = frozenset({"", "N/A", "NA", "NULL", "NONE", "-", "--", "?", "UNKNOWN", "N.A.", "#N/A", "NIL"})
