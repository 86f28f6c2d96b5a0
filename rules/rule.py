"""Rules carry a stable code, a dotted name and a docstring example (like sqlfluff rules).

Also the two helpers every rule uses to stay fast on big columns: :func:`on_distinct` runs a
vectorised function over the distinct values only, :func:`by_distinct` runs a slow per-value
library once per distinct value, across all cores when there are many.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import unicodedata
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from multiprocessing import get_all_start_methods, get_context
from typing import TypeVar

import numpy as np
import pandas as pd

F = TypeVar("F", bound=Callable)

#: Below this many distinct values a process pool costs more than it saves.
PARALLEL_MIN_DISTINCT = 20_000

#: Placeholders legacy systems use for "no value".
NULL_TOKENS = frozenset({
    "", "N/A", "NA", "N.A.", "#N/A", "NULL", "<NULL>", "NONE", "NIL", "-", "--", "?", "UNKNOWN", "TBC",
    "TBD", "NAN", "NAT",
})


@dataclass(frozen=True)
class Rule:
    """A registered rule: ``code`` (e.g. ``PH01``), ``name`` (e.g. ``phones.e164``), function."""

    code: str
    name: str
    func: Callable
    doc: str

    @property
    def summary(self) -> str:
        """The first line of the docstring."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""


#: Every rule by dotted name.
RULES: dict[str, Rule] = {}


def rule(code: str, name: str) -> Callable[[F], F]:
    """Register a standardisation rule under a stable code and dotted name.

    Raises:
        ValueError: the code is already taken by another rule (codes are a public contract).
    """

    def wrap(func: F) -> F:
        taken = next((r.name for r in RULES.values() if r.code == code and r.name != name), None)
        if taken:
            raise ValueError(f"rule code {code} is already used by {taken}")
        RULES[name] = Rule(code, name, func, func.__doc__ or "")
        return func

    return wrap


def find_rule(key: str) -> Rule | None:
    """The rule with this dotted name or code, if any.

    Example:
        >>> import rules.phones
        >>> from rules.rule import find_rule
        >>> find_rule("PH01").name, find_rule("phones.e164").code, find_rule("phones.e146")
        ('phones.e164', 'PH01', None)
    """
    return RULES.get(key) or next((r for r in RULES.values() if r.code == key), None)


def _factorize(values: pd.Series | pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Codes per row and the position of each distinct value's first row.

    For a frame, a row is distinct by all its columns; rows whose first column is missing
    get code -1 (nothing to standardise).
    """
    frame = values.to_frame() if isinstance(values, pd.Series) else values
    codes, _ = pd.factorize(frame.iloc[:, 0], use_na_sentinel=True)
    missing = codes < 0
    combined = codes.astype(np.int64)
    for col in frame.columns[1:]:
        more, uniques = pd.factorize(frame[col], use_na_sentinel=False)
        combined = combined * (len(uniques) + 1) + more
    present = np.flatnonzero(~missing)
    codes = np.full(len(frame), -1, dtype=np.int64)
    codes[present], _ = pd.factorize(combined[present])
    # codes number distinct rows in order of appearance, so np.unique's k-th is code k
    _, first = np.unique(codes[present], return_index=True)
    return codes, present[first]


def on_distinct(values: pd.Series | pd.DataFrame, func: Callable[..., pd.Series | pd.DataFrame]
                ) -> pd.Series | pd.DataFrame:
    """Run a vectorised function over the distinct values only and spread the result back.

    Even vectorised string work is per element underneath; a column of 1M dates has a few
    thousand distinct values, so working on those is far cheaper. ``func`` receives the
    distinct rows (a Series, or a frame with the same columns) with a fresh index.

    Example:
        >>> on_distinct(pd.Series(["a", "b", "a", None]), lambda s: s.str.upper()).tolist()
        ['A', 'B', 'A', None]
    """
    codes, first = _factorize(values)
    result = func(values.iloc[first].reset_index(drop=True))
    # None for missing on the few distinct rows, then spread with numpy: no per-row pandas work
    result = result.astype(object).where(result.notna(), None)
    missing = codes < 0
    positions = np.where(missing, 0, codes)

    def spread(column: np.ndarray) -> np.ndarray:
        out = column[positions] if len(column) else np.empty(len(codes), dtype=object)
        out[missing] = None
        return out

    if isinstance(result, pd.Series):
        return pd.Series(spread(result.to_numpy()), index=values.index, dtype=object)
    return pd.DataFrame({c: spread(result[c].to_numpy()) for c in result.columns}, index=values.index)


def by_distinct(values: pd.Series | pd.DataFrame, func: Callable[..., object], *,
                workers: int | None = None) -> pd.Series:
    """Apply a per-value function once per distinct value and map the result back.

    Real columns repeat a lot (countries, cities, the same phone in several rows), so the
    slow per-value libraries (phonenumbers, email-validator, nameparser) run once per value.
    With a frame, ``func`` gets one argument per column (missing as ``None``) and rows whose
    first column is missing are skipped. With many distinct values and a picklable ``func``
    the work is spread over ``workers`` processes (default: all cores).

    Example:
        >>> by_distinct(pd.Series(["x", "yy", "x", None]), len).tolist()
        [1, 2, 1, None]
    """
    codes, first = _factorize(values)
    frame = values.to_frame() if isinstance(values, pd.Series) else values
    rows = frame.iloc[first].astype(object)
    args = list(zip(*(rows[c].where(rows[c].notna(), None) for c in rows.columns)))
    results = _run(func, args, workers or os.cpu_count() or 1)
    out = np.empty(len(values), dtype=object)
    mask = codes >= 0
    if results:
        looked_up = np.empty(len(results), dtype=object)
        looked_up[:] = results
        out[mask] = looked_up[codes[mask]]
    return pd.Series(out, index=values.index, dtype=object)


def _run(func: Callable[..., object], args: list[tuple], workers: int) -> list[object]:
    """Call ``func(*a)`` for each ``a``, in a process pool when that pays off."""
    if workers < 2 or len(args) < PARALLEL_MIN_DISTINCT or not _picklable(func):
        return [func(*a) for a in args]
    chunks = np.array_split(np.arange(len(args)), workers * 4)
    # fork shares the loaded libraries and their metadata with the workers for free
    context = get_context("fork") if "fork" in get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        parts = pool.map(_call_chunk, repeat(func), ([args[i] for i in c] for c in chunks))
        return [r for part in parts for r in part]


def _call_chunk(func: Callable[..., object], args: list[tuple]) -> list[object]:
    return [func(*a) for a in args]


def _picklable(func: Callable[..., object]) -> bool:
    """Lambdas and closures cannot cross to a worker process; they run in this one."""
    try:
        pickle.dumps(func)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def reason_where(mask: pd.Series, reason: str) -> pd.Series:
    """``reason`` where ``mask`` holds, else None: the ``reason`` column fallible rules return.

    Example:
        >>> reason_where(pd.Series([True, False, None]), "invalid_phone").tolist()
        ['invalid_phone', None, None]
    """
    hit = mask.astype("boolean").fillna(False).to_numpy(dtype=bool)
    return pd.Series(np.where(hit, reason, None), index=mask.index, dtype=object)


def _text_or_none(value: object, collapse: bool) -> str | None:
    text = as_text(value)
    if text is None:
        return None
    text = " ".join(text.split()) if collapse else text.strip()
    return None if text.upper() in NULL_TOKENS else text


def map_text(values: pd.Series, func: Callable[[str], object] | None = None, *, collapse: bool = True) -> pd.Series:
    """Clean each distinct value like :func:`clean_text`, then apply ``func`` to those present.

    One pass over the distinct values in plain Python: cheaper than a chain of pandas
    string methods over every row.

    Example:
        >>> map_text(pd.Series([" ann  lee ", "N/A", " ann  lee "]), str.title).tolist()
        ['Ann Lee', None, 'Ann Lee']
    """
    def each(uniques: pd.Series) -> pd.Series:
        texts = (_text_or_none(v, collapse) for v in uniques.tolist())
        return pd.Series([None if t is None else (func(t) if func else t) for t in texts], dtype=object)

    return on_distinct(values, each)


def blank_to_na(values: pd.Series) -> pd.Series:
    """Strip strings and turn blanks and the usual placeholders into missing values (None).

    Example:
        >>> blank_to_na(pd.Series([" a ", "N/A", "  ", None])).tolist()
        ['a', None, None, None]
    """
    return map_text(values, collapse=False)


def clean_text(values: pd.Series) -> pd.Series:
    """Blanks to missing and inner runs of whitespace to one space, as plain objects.

    Example:
        >>> clean_text(pd.Series(["  Acme \\t Ltd ", "null"])).tolist()
        ['Acme Ltd', None]
    """
    return map_text(values)


def as_text(value: object) -> str | None:
    """A cell as text the way a person would write it; missing stays None.

    Spreadsheets and databases hand over numbers and dates, not strings: an integral float
    is a number without its ".0", a date or timestamp is ISO 8601.

    Example:
        >>> [as_text(v) for v in (447911123456.0, dt.date(1980, 2, 29), " x ", float("nan"))]
        ['447911123456', '1980-02-29', ' x ', None]
    """
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value if isinstance(value, str) else str(value)


def fold(text: str) -> str:
    """Case and accents folded, for lookups: "Février" -> "fevrier", "Йорк" -> "иорк".

    Example:
        >>> fold("Février")
        'fevrier'
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
