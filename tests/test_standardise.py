"""The standardise stage as the pipeline uses it: records in, standardised records and flags out."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pandas as pd
import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from migrate.errors import ConfigError
from rules import phones
from rules.rule import RULES, by_distinct
from rules.standardise import FLAG_COLUMNS, StandardiseOptions, standardise

# `rules.standardise` is also the name of the function the package exports
stage = sys.modules["rules.standardise"]
rule_module = sys.modules["rules.rule"]

TODAY = "2025-06-01"


def records(**columns: list) -> pd.DataFrame:
    size = len(next(iter(columns.values())))
    base = {"record_key": [f"crm:{i}" for i in range(size)], "source": ["crm"] * size}
    return pd.DataFrame({**base, **columns})


def flags_of(out, reason: str) -> pd.DataFrame:
    return out.flags[out.flags["reason"] == reason]


def test_invalid_phone_is_flagged_not_raised() -> None:
    out = standardise(records(phones=[["12345", "07911 123456"]]), default_region="GB")

    assert out.records["phones"].iloc[0] == ["+447911123456"]
    flagged = flags_of(out, "invalid_phone")
    assert flagged[["record_key", "column", "value", "rule"]].values.tolist() == [["crm:0", "phones", "12345", "PH01"]]
    assert list(out.flags.columns) == FLAG_COLUMNS


def test_same_phone_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    for name in ("_parse_international", "_parse_one"):
        real = getattr(phones, name)
        monkeypatch.setattr(phones, name, lambda *a, real=real: calls.append(a) or real(*a))
    spellings = ["07911 123456", "+44 7911 123456", "(07911) 123-456", "0044 7911 123456"] * 250

    out = standardise(records(phones=[[s] for s in spellings]), default_region="GB")

    assert set(map(tuple, out.records["phones"])) == {("+447911123456",)}
    assert calls == [("+447911123456",)]


def test_phone_type_and_extension_stay_beside_the_number() -> None:
    out = standardise(records(phones=[["020 7946 0018 ext. 12", "07911 123456", "+442079460018 x12"]]),
                      default_region="GB")

    row = out.records.iloc[0]
    assert row["phones"] == ["+442079460018", "+447911123456"]
    assert row["phone_types"] == ["fixed", "mobile"]
    assert row["phone_extensions"] == ["12", None]


def test_phone_region_comes_from_the_record_country_before_the_default() -> None:
    out = standardise(records(phones=[["030 901820"], ["030 901820"]], country=["Deutschland", None]),
                      default_region="GB")

    assert out.records["phones"].tolist() == [["+4930901820"], []]
    assert flags_of(out, "invalid_phone")["record_key"].tolist() == ["crm:1"]


def test_source_options_set_the_region_for_their_records() -> None:
    df = records(phones=[["(415) 555-2671"], ["(415) 555-2671"]])
    df["source"] = ["erp", "crm"]
    options = StandardiseOptions.from_config({"default_region": "GB", "sources": {"erp": {"default_region": "US"}}})

    out = standardise(df, options=options)

    assert out.records["phones"].tolist() == [["+14155552671"], []]


def test_full_name_is_parsed_into_missing_parts_and_dropped() -> None:
    out = standardise(records(full_name=["DR. JUAN DE LA CRUZ", "Ann Lee"], first_name=[None, "Anne"]))

    first = out.records.iloc[0]
    assert [first["title"], first["first_name"], first["last_name"]] == ["Dr.", "Juan", "de la Cruz"]
    assert out.records.iloc[1]["first_name"] == "Anne"
    assert "full_name" not in out.records


def test_a_company_typed_as_a_name_becomes_an_organization() -> None:
    out = standardise(records(full_name=["Acme Widgets GmbH", None, None],
                              last_name=[None, "ООО Ромашка", "Lee"],
                              organization_name=[None, None, "Acme Ltd"]))

    assert out.records["entity"].tolist() == ["organization", "organization", "person"]
    assert out.records["organization_name"].tolist() == ["Acme Widgets GmbH", "ООО Ромашка", "Acme Ltd"]
    assert out.records["last_name"].tolist() == [None, None, "Lee"]


def test_only_an_organization_name_makes_an_organization() -> None:
    out = standardise(records(organization_name=["Initech", "Initech"], first_name=[None, "Peter"]))

    assert out.records["entity"].tolist() == ["organization", "person"]


def test_name_key_lets_scripts_and_legal_forms_meet() -> None:
    out = standardise(records(first_name=["Иван", "IVAN", None, None], last_name=["Петров", "PETROV", None, None],
                              organization_name=[None, None, "ACME LTD", "Acme Limited"]))

    keys = out.records["name_key"].tolist()
    assert keys[0] == keys[1] == "ivan petrov"
    assert keys[2] == keys[3] == "acme"
    assert out.records["first_name"].tolist()[:2] == ["Иван", "Ivan"]


def test_each_source_resolves_day_and_month_from_its_own_dates() -> None:
    df = records(birth_date=["03/04/1980", "25/12/1975", "03/04/1980", "12/25/1975"])
    df["source"] = ["uk", "uk", "us", "us"]

    out = standardise(df, today=TODAY)

    assert out.records["birth_date"].tolist() == ["1980-04-03", "1975-12-25", "1980-03-04", "1975-12-25"]


def test_date_order_option_overrides_the_data() -> None:
    out = standardise(records(birth_date=["03/04/1980", "25/12/1975"]), date_order="mdy", today=TODAY)

    assert out.records["birth_date"].tolist() == ["1980-03-04", None]
    assert flags_of(out, "invalid_date")["value"].tolist() == ["25/12/1975"]


def test_implausible_birth_dates_are_flagged_and_removed() -> None:
    out = standardise(records(birth_date=["2030-01-01", "1900-01-01", "1980-02-29"]), today=TODAY)

    assert out.records["birth_date"].tolist() == [None, None, "1980-02-29"]
    assert flags_of(out, "implausible_birth_date")["value"].tolist() == ["2030-01-01", "1900-01-01"]


def test_placeholders_are_missing_not_flagged() -> None:
    out = standardise(records(birth_date=["0000-00-00", "N/A"], emails=[["  "], ["n/a"]], phones=[["-"], []],
                              country=["", "NULL"], email_opt_in=["", None]), default_region="GB")

    assert out.flags.empty
    assert out.records["emails"].tolist() == [[], []]
    assert out.records["birth_date"].tolist() == [None, None]


def test_role_email_is_flagged_but_kept() -> None:
    out = standardise(records(emails=[["Info@Acme.de", "ann@@acme.de"]]))

    assert out.records["emails"].iloc[0] == ["info@acme.de"]
    assert flags_of(out, "role_email")["value"].tolist() == ["Info@Acme.de"]
    assert flags_of(out, "invalid_email")["value"].tolist() == ["ann@@acme.de"]


def test_consent_spellings_become_booleans() -> None:
    out = standardise(records(email_opt_in=["Yes", "unsubscribed", "maybe"], do_not_contact=["DNC", "N", ""]))

    assert out.records["email_opt_in"].tolist() == [True, False, pd.NA]
    assert out.records["do_not_contact"].tolist() == [True, False, pd.NA]
    assert flags_of(out, "invalid_consent")["value"].tolist() == ["maybe"]


def test_configured_action_travels_with_each_flag() -> None:
    options = StandardiseOptions.from_config({"invalid_phone": "quarantine", "invalid_country": "flag"})

    out = standardise(records(phones=[["12345"]], country=["Atlantis"]), options=options)

    assert dict(zip(out.flags["reason"], out.flags["action"])) == {"invalid_phone": "quarantine",
                                                                    "invalid_country": "flag"}


def test_skipped_rule_leaves_its_column_as_it_was() -> None:
    options = StandardiseOptions.from_config({"skip": ["PH01", "names.case"]})

    out = standardise(records(phones=[["12345"]], first_name=["ANN"]), options=options)

    assert out.records["phones"].iloc[0] == ["12345"]
    assert out.records["first_name"].iloc[0] == "ANN"
    assert out.flags.empty


def test_index_and_row_order_are_kept_even_when_the_index_repeats() -> None:
    df = records(first_name=["ann", "bob", "cy"], birth_date=["1980-01-01", "bad", "01/02/1990"])
    df.index = [7, 7, 3]

    out = standardise(df, today=TODAY)

    assert out.records.index.tolist() == [7, 7, 3]
    assert out.records["first_name"].tolist() == ["Ann", "Bob", "Cy"]
    assert flags_of(out, "invalid_date")["record_key"].tolist() == ["crm:1"]


@pytest.mark.parametrize(("config", "key"), [
    ({"default_region": "XX"}, "rules.standardise.default_region"),
    ({"sources": {"erp": {"default_region": "ZZ"}}}, "rules.standardise.sources.erp.default_region"),
    ({"skip": ["phones.e146"]}, "rules.standardise.skip"),
    ({"invalid_phones": "flag"}, "rules.standardise.invalid_phones"),
    ({"invalid_phone": "drop"}, "rules.standardise.invalid_phone"),
    ({"date_order": "dym"}, "rules.standardise.date_order"),
])
def test_bad_config_is_a_config_error_naming_the_key(config: dict, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        StandardiseOptions.from_config(config)

    assert error.value.problems[0].startswith(key + ":")
    assert error.value.exit_code == 2


def test_unknown_default_region_argument_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="default_region: unknown region code 'XX'"):
        standardise(records(phones=[["07911 123456"]]), default_region="XX")


_ugly = st.one_of(st.none(), st.text(max_size=30), st.integers(), st.floats(), st.booleans(),
                  st.sampled_from(["N/A", "0000-00-00", " ", "+44", "@", "29/02/1981", "Ltd", "ООО", "٠٧٩"]))


@settings(max_examples=25, deadline=None)
@given(values=st.lists(_ugly, max_size=6))
def test_no_rule_raises_on_anything_a_legacy_system_can_hold(values: list) -> None:
    column = pd.Series(values, dtype=object)
    for registered in RULES.values():
        result = registered.func(column)
        assert len(result) == len(column), registered.name
        assert result.index.equals(column.index), registered.name


@settings(max_examples=25, deadline=None)
@given(cells=st.lists(st.tuples(_ugly, _ugly, _ugly, st.lists(_ugly, max_size=3)), min_size=1, max_size=5))
def test_standardise_never_raises_on_ugly_records(cells: list) -> None:
    df = records(full_name=[c[0] for c in cells], birth_date=[c[1] for c in cells],
                 country=[c[2] for c in cells], phones=[c[3] for c in cells], emails=[c[3] for c in cells],
                 email_opt_in=[c[2] for c in cells])

    out = standardise(df, default_region="GB", today=TODAY)

    assert len(out.records) == len(df)
    assert out.records["phones"].map(lambda p: all(str(n).startswith("+") for n in p)).all()
    assert set(out.flags["record_key"]) <= set(df["record_key"])


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.sampled_from(["a", "bb", "a ", ""])), max_size=12))
def test_by_distinct_gives_every_row_its_own_result(values: list) -> None:
    got = by_distinct(pd.Series(values, dtype=object), len).tolist()

    assert got == [None if v is None else len(v) for v in values]


def test_many_distinct_values_run_in_worker_processes_with_the_same_results(monkeypatch) -> None:
    monkeypatch.setattr(rule_module, "PARALLEL_MIN_DISTINCT", 10)
    values = pd.Series([f"{i:07d}" for i in range(200)] * 2 + [None])

    got = by_distinct(values, int, workers=2)

    assert got.tolist() == [int(v) for v in values[:-1]] + [None]


_local = st.text(alphabet="abcXYZ09._+-'é", min_size=1, max_size=12)
_domain = st.sampled_from(["example.com", "EXAMPLE.co.uk", "bücher.de", "xn--bcher-kva.de", "a-b.io", "x.local",
                           "localhost", "-bad.com", "ex..com", "123.45", "exa_mple.org", "пример.рф"])


@settings(max_examples=150, deadline=None)
@given(address=st.builds(lambda lp, d: f"{lp}@{d}", _local, _domain))
def test_vectorised_emails_agree_with_email_validator(address: str) -> None:
    try:
        expected = validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        expected = None

    assert stage.emails.normalise_emails(pd.Series([address]))["email"].iloc[0] == expected


def test_phone_shortcut_agrees_with_phonenumbers_parse() -> None:
    rng = random.Random(5)
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    values, wanted_regions = [], []
    for _ in range(3000):
        region = rng.choice(regions)
        example = phonenumbers.example_number(region)
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        national = str(example.national_number)[:-3] + f"{rng.randrange(1000):03d}" if example else "123456"
        zeros = "0" * (example.number_of_leading_zeros or 1) if example and example.italian_leading_zero else ""
        code = str(meta.country_code)
        values.append(rng.choice([f"{meta.national_prefix or ''}{zeros}{national}", f"+{code}{zeros}{national}",
                                  f"00{code}{zeros}{national}", f"{code}{zeros}{national}", f"{zeros}{national}"]))
        wanted_regions.append(region)

    got = phones.to_e164(pd.Series(values), pd.Series(wanted_regions))

    assert got["phone"].notna().sum() > 1000  # the comparison covers plenty of valid numbers
    for value, region, (phone, kind) in zip(values, wanted_regions, got[["phone", "type"]].itertuples(index=False)):
        parsed = phones._parse_one(value, region)
        assert (phone, kind) == (parsed[:2] if parsed else (None, None)), (value, region)


def test_rule_catalogue_is_generated_from_the_current_rules() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
    import gen_rules

    assert gen_rules.TARGET.read_text(encoding="utf-8") == gen_rules.render()
