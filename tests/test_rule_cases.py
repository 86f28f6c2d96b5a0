"""Every standardisation rule against its cases in tests/cases/*.yaml (one generic test).

A file maps rule names to cases. A case has ``input`` (one value) and ``expected``, or
``column`` and ``expected`` as lists when the rule looks at the whole column (date order);
``options`` are keyword arguments, and a list option is one value per row. A rule that
returns a frame is compared on the columns a case names, and its ``reason`` must be
missing unless the case names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import rules.standardise  # noqa: F401  (imports and so registers every rule)
from rules.rule import RULES

CASES = Path(__file__).parent / "cases"


def _cases() -> list[Any]:
    params = []
    for path in sorted(CASES.glob("*.yaml")):
        if path.stem == "survive":  # survivorship cases: tests/test_survive_cases.py
            continue
        for rule_name, cases in yaml.safe_load(path.read_text(encoding="utf-8")).items():
            for number, case in enumerate(cases):
                params.append(pytest.param(rule_name, case, id=f"{rule_name}:{case.get('id', number)}"))
    return params


def _plain(value: Any) -> Any:
    """pandas' missing markers and numpy scalars as plain Python, for comparison with YAML."""
    if not isinstance(value, (list, dict)) and pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _rows(result: pd.Series | pd.DataFrame) -> list[Any]:
    if isinstance(result, pd.DataFrame):
        return [{k: _plain(v) for k, v in row.items()} for row in result.to_dict("records")]
    return [_plain(v) for v in result]


@pytest.mark.parametrize(("rule_name", "case"), _cases())
def test_rule_case(rule_name: str, case: dict[str, Any]) -> None:
    column = case["column"] if "column" in case else [case["input"]]
    expected = case["expected"] if "column" in case else [case["expected"]]
    values = pd.Series(column, dtype=object)
    options = {k: pd.Series(v, dtype=object) if isinstance(v, list) else v for k, v in case.get("options", {}).items()}

    got = _rows(RULES[rule_name].func(values, **options))

    if got and isinstance(got[0], dict):
        if "reason" in got[0]:
            expected = [{"reason": None, **e} for e in expected]
        got = [{k: row[k] for k in e} for row, e in zip(got, expected)]
    assert got == expected


def test_there_are_at_least_300_cases_and_every_rule_has_some() -> None:
    cases = _cases()
    assert len(cases) >= 300
    assert {p.values[0] for p in cases} == set(RULES)
