"""Stories: a wrong rules.match setting fails before any work, naming the key."""

from __future__ import annotations

import pytest

from migrate.errors import ConfigError
from rules.match import MatchSettings

GOOD = {"blocking": [["last_name", "postcode"], ["email"]],
        "compare": {"first_name": "name", "last_name": "name", "email": "email"}}


def problems(**changes) -> str:
    with pytest.raises(ConfigError) as err:
        MatchSettings.from_config({**GOOD, **changes})
    assert err.value.exit_code == 2
    return str(err.value)


def test_blocking_rule_on_unknown_field_names_the_key():
    assert "rules.match.blocking.1.0: unknown field 'emial'" in problems(blocking=[["last_name"], ["emial"]])


def test_unknown_blocking_function_is_a_config_error():
    assert "rules.match.blocking.0.0: unknown blocking function 'soundex'" in problems(
        blocking=[["soundex(last_name)"]])


def test_threshold_outside_0_to_1_is_a_config_error():
    message = problems(thresholds={"link": 1.5, "review": 0.6})
    assert "rules.match.thresholds.link" in message


def test_review_threshold_above_link_is_a_config_error():
    assert "review (0.99) must not exceed link (0.9)" in problems(thresholds={"link": 0.9, "review": 0.99})


def test_impossible_comparison_is_a_config_error():
    message = problems(compare={"phone": "date"})
    assert "rules.match.compare.phone: a 'date' comparison cannot compare 'phone' (a phone_list field)" in message


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigError) as err:
        MatchSettings.from_config({"blocking": [["nope"]], "compare": {"x": "name"}, "guards": ["dob"]})
    assert len(err.value.problems) == 3


def test_fuzzy_thresholds_must_lie_between_0_and_1():
    assert "compare.first_name.thresholds" in problems(
        compare={"first_name": {"kind": "name", "thresholds": [1.2]}})


def test_guard_must_name_a_comparison():
    assert "rules.match.guards.0: 'birth_date' is not one of the comparisons" in problems(guards=["birth_date"])


def test_blocking_functions_parse():
    s = MatchSettings.model_validate({**GOOD, "blocking": [["first(last_name, 3)", "phonetic(first_name)"],
                                                           ["domain(email)", "local(email)"]]})
    assert [str(t) for t in s.blocking_rules()[0]] == ["first(last_name, 3)", "phonetic(first_name)"]


def test_strong_identifiers_block_first():
    s = MatchSettings.model_validate({**GOOD, "strong_identifiers": ["identifiers.vat"]})
    assert str(s.blocking_rules()[0][0]) == "identifiers.vat"
