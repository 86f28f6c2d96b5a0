"""Every survivorship rule against its cases in tests/cases/survive.yaml (one generic test).

A case's ``rules`` is validated as the ``rules.survive`` section of migration.yaml, so the
cases also prove that what a user writes there means what the docs say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from mappings.canonical import GOLDEN_ATTRIBUTES
from migrate.config import SURVIVE_RULE_NAMES, SurviveConfig
from rules.survive import RULES, survive

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "survive.yaml").read_text(encoding="utf-8"))


def _params() -> list[Any]:
    return [pytest.param(case, id=f"{section}:{case['id']}") for section, cases in CASES.items() for case in cases]


def _plain(value: Any) -> Any:
    """pandas' missing markers and numpy scalars as plain Python, for comparison with YAML."""
    if not isinstance(value, (list, dict)) and pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


@pytest.mark.parametrize("case", _params())
def test_survive_case(case: dict[str, Any]) -> None:
    if "error" in case:  # a rule that cannot apply to its attribute is a configuration error
        with pytest.raises(ValidationError, match=case["error"]):
            SurviveConfig.model_validate(case["rules"])
        return
    records = pd.DataFrame(case["records"], dtype=object)
    records["cluster_id"] = records["cluster_id"].fillna("c") if "cluster_id" in records else "c"
    if "source_updated_at" not in records:
        records["source_updated_at"] = None
    config = SurviveConfig.model_validate(case["rules"])
    attributes = tuple(a for a in GOLDEN_ATTRIBUTES if a in records)

    out = survive(records, config.rules_for, attributes, anchor_rules=config.rules_for("default"))

    cluster = case.get("cluster", "c")
    for attribute, want in case["expected"].items():
        got = {"value": _plain(out.golden.loc[cluster, attribute]),
               "from": _plain(out.from_record.loc[cluster, attribute]),
               "rule": _plain(out.rule.loc[cluster, attribute])}
        assert got == want, attribute
    if "anchor" in case:
        assert out.anchors[cluster] == case["anchor"]
    if "conflicts" in case:
        mine = out.conflicts[out.conflicts["cluster_id"] == cluster]
        got_conflicts = {a: sorted(g["record_key"]) for a, g in mine.groupby("attribute")}
        assert got_conflicts == case["conflicts"]


def test_every_rule_has_cases() -> None:
    assert set(RULES) == {*SURVIVE_RULE_NAMES, "source_priority"}
    assert set(CASES) >= set(RULES)
