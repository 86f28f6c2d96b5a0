"""Stories of the matcher: what a migration team sees when duplicates are found, held or explained."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench.synthetic import generate, to_contacts_csv
from rules.match import (MatchSettings, blocking_report, dedupe_csv, explain, link, pair_frame, prepare,
                         score_partition)

SETTINGS = MatchSettings.model_validate({
    "blocking": [["last_name", "postcode"], ["first_name", "birth_date"], ["email"], ["phone"]],
    "compare": {"first_name": "name", "last_name": "name", "email": "email", "phone": "phone",
                "birth_date": "date", "postcode": "postcode", "street": "address"},
    "guards": ["birth_date"],
})


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return generate(3_000, seed=11)


@pytest.fixture(scope="module")
def trained(records):
    return link(records.drop(columns="entity_id"), SETTINGS)


def person(key: str, first=None, last=None, email=None, phone=None, dob=None, postcode=None, street=None) -> dict:
    return {"record_key": key, "source": key.split(":")[0], "first_name": first, "last_name": last,
            "emails": [email] if email else [], "phones": [phone] if phone else [], "birth_date": dob,
            "postcode": postcode, "street": street, "identifiers": {}}


def level(waterfall: pd.DataFrame, comparison: str) -> str:
    """The level a comparison reached in a waterfall."""
    rows = waterfall[(waterfall["step"] == "comparison") & (waterfall["comparison"] == comparison)]
    return rows["level"].item()


def test_missing_values_are_neutral_never_a_match(trained):
    a = pd.Series(person("crm:1", "Ann", "Lee", postcode="N1 1AA"))
    b = pd.Series(person("erp:1", "Ann", "Lee", postcode="N1 1AA"))
    waterfall = explain(a, b, SETTINGS, trained.model)
    missing = waterfall[waterfall["level"] == "missing"]
    assert set(missing["comparison"]) == {"email", "phone", "birth_date", "street"}
    assert (missing["weight"] == 0).all()


def test_records_with_nothing_to_compare_stay_singletons(records, trained):
    empty = pd.DataFrame([person(f"crm:empty{i}") for i in range(3)])
    result = link(pd.concat([records.drop(columns="entity_id"), empty], ignore_index=True), SETTINGS,
                  model=trained.model)
    clusters = result.clusters.set_index("record_key")["cluster_id"]
    assert [clusters[f"crm:empty{i}"] for i in range(3)] == [f"crm:empty{i}" for i in range(3)]


def test_common_surname_weighs_less_than_rare_one(trained):
    def last_name_weight(name: str) -> float:
        w = explain(pd.Series(person("a:1", last=name)), pd.Series(person("b:1", last=name)), SETTINGS, trained.model)
        return w.loc[w["comparison"] == "last_name", "weight"].sum()

    common = trained.model["tf"]["last_name"]["values"]
    most_common = max(common, key=common.get)
    assert last_name_weight(most_common) < last_name_weight("Øster") - 2


def test_transliterated_nickname_and_swapped_names_still_match(trained):
    cases = [("Дмитрий", "Иванов", "Dmitriy", "Ivanov", "transliterated"),
             ("Robert", "Smith", "Bob", "Smith", "nickname"),
             ("Lee", "Ann", "Ann", "Lee", "swapped")]
    for first_l, last_l, first_r, last_r, expected in cases:
        w = explain(pd.Series(person("a:1", first_l, last_l)), pd.Series(person("b:1", first_r, last_r)),
                    SETTINGS, trained.model)
        assert level(w, "first_name") == expected


def test_day_month_transposed_birth_date_is_a_near_match_not_a_guard(trained):
    w = explain(pd.Series(person("a:1", "Ann", "Lee", dob="1980-03-04")),
                pd.Series(person("b:1", "Ann", "Lee", dob="1980-04-03")), SETTINGS, trained.model)
    assert level(w, "birth_date") == "day_month_transposed"
    assert w["level"].iloc[-1] == "model"


def test_different_birth_dates_cannot_link_whatever_else_agrees(trained):
    same = person("a:1", "Ann", "Lee", "ann@x.org", "+447700900123", "1950-01-01", "N1 1AA", "1 High Street")
    other = {**same, "record_key": "b:1", "birth_date": "1985-06-07"}
    w = explain(pd.Series(same), pd.Series(other), SETTINGS, trained.model)
    assert w["level"].iloc[-1] == "guard" and w["probability"].iloc[-1] == 0.0


def test_explain_waterfall_adds_up_to_the_score(records, trained):
    pair = trained.pairs.iloc[0]
    by_key = records.set_index("record_key", drop=False)
    w = explain(by_key.loc[pair["record_key_l"]], by_key.loc[pair["record_key_r"]], SETTINGS, trained.model)
    assert w["step"].iloc[0] == "prior" and w["step"].iloc[-1] == "final"
    assert w["weight"].sum() == pytest.approx(pair["match_weight"])
    assert w["probability"].iloc[-1] == pytest.approx(pair["match_probability"])


def test_oversized_cluster_is_held_for_review(records, trained):
    tight = SETTINGS.model_copy(update={"max_cluster_size": 2})
    result = link(records.drop(columns="entity_id"), tight, model=trained.model)
    sizes = result.clusters["cluster_id"].value_counts()
    assert result.oversized == sorted(sizes[sizes > 2].index)
    assert len(result.oversized) > 0


def test_pairs_between_thresholds_go_to_review(trained):
    p = trained.review_pairs["match_probability"]
    assert len(p) and ((p >= 0.60) & (p < 0.95)).all()


def chain() -> pd.DataFrame:
    """A-B and B-C are strong links; A and C were told apart by a steward."""
    a = person("crm:A", "Ann", "Lee", "ann@x.org", "+447700900001", None, "N1 1AA", "1 High Street")
    b = {**a, "record_key": "erp:B", "phones": ["+447700900002"]}
    c = {**b, "record_key": "mf:C", "emails": ["ann.lee@y.org"]}
    return pd.DataFrame([a, b, c])


def test_cannot_link_splits_a_chain(trained):
    cannot = pd.DataFrame({"record_key_l": ["crm:A"], "record_key_r": ["mf:C"]})
    plain = link(chain(), SETTINGS, model=trained.model)
    assert plain.clusters["cluster_id"].nunique() == 1
    split = link(chain(), SETTINGS, model=trained.model, cannot_link=cannot)
    ids = split.clusters.set_index("record_key")["cluster_id"]
    assert ids["crm:A"] != ids["mf:C"] and ids["erp:B"] in (ids["crm:A"], ids["mf:C"])
    decided = split.pairs[split.pairs["match_tier"] == "cannot_link"]
    assert len(decided) == 1 and decided["match_probability"].item() == 0.0


def test_must_link_holds_whatever_the_scores_say(trained):
    a = pd.DataFrame([person("crm:X", "Zed", "Quark"), person("erp:Y", "Amy", "Pond")])
    must = pd.DataFrame({"record_key_l": ["crm:X"], "record_key_r": ["erp:Y"]})
    result = link(a, SETTINGS, model=trained.model, must_link=must)
    assert result.clusters["cluster_id"].nunique() == 1


def test_labelled_pairs_count_as_known_matches_in_training(records):
    truth = records.groupby("entity_id")["record_key"].agg(list)
    pairs = [(keys[0], keys[1]) for keys in truth if len(keys) > 1][:200]
    must = pd.DataFrame(pairs, columns=["record_key_l", "record_key_r"])
    result = link(records.drop(columns="entity_id"), SETTINGS, must_link=must)
    assert result.model["training"]["labelled_pairs"] == 200


def test_model_round_trips_as_json(records, trained):
    model = json.loads(json.dumps(trained.model))
    again = link(records.drop(columns="entity_id"), SETTINGS, model=model)
    pd.testing.assert_frame_equal(again.clusters, trained.clusters)
    assert again.model["comparisons"] == trained.model["comparisons"]


def test_saved_model_with_other_comparisons_asks_for_retraining(trained):
    from migrate.errors import ConfigError

    other = SETTINGS.model_copy(update={"compare": {"first_name": "name"}})
    with pytest.raises(ConfigError, match="retrain"):
        link(chain(), other, model=trained.model)


def test_score_partition_is_pure(records, trained):
    prepared = prepare(records, SETTINGS)
    left, right = np.arange(0, 100), np.arange(100, 200)
    pairs = pair_frame(prepared, left, right)
    before = pairs.copy()
    first = score_partition(pairs, trained.model)
    second = score_partition(pairs.sample(frac=1, random_state=1), trained.model).sort_index()
    pd.testing.assert_frame_equal(pairs, before)
    pd.testing.assert_frame_equal(first, second)
    assert {"record_key_l", "record_key_r", "match_weight", "match_probability", "gamma_first_name"} <= set(first)


def test_blocking_report_counts_pairs_before_scoring_and_warns_on_big_blocks():
    df = pd.DataFrame([person(f"crm:{i}", "Ann", "Lee", email="info@shop.com", postcode=f"N{i % 2} 1AA")
                       for i in range(12)])
    settings = SETTINGS.model_copy(update={"max_block_size": 10})
    report = blocking_report(df, settings).set_index("rule")
    assert report.loc["last_name & postcode", "pairs"] == 2 * 15
    assert report.loc["email", "oversized_blocks"] == 1 and "skipped" in report.loc["email", "warning"]
    assert report.loc["total", "pairs"] == 30


def test_progress_is_reported_with_counts(records, trained):
    seen = []
    link(records.drop(columns="entity_id"), SETTINGS, model=trained.model,
         progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert ("score", seen[-2][1], seen[-2][2]) == seen[-2] and seen[-2][1] == seen[-2][2]
    assert seen[-1][0] == "cluster"


def test_dedupe_quick_mode_writes_cluster_id_and_probability(tmp_path):
    truth = generate(1_500, seed=5)
    to_contacts_csv(truth).to_csv(tmp_path / "contacts.csv", index=False)
    dedupe_csv(tmp_path / "contacts.csv", tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns[-2:]) == ["cluster_id", "match_probability"] and len(out) == len(truth)
    same = out.groupby(truth["entity_id"].to_numpy())["cluster_id"].nunique()
    assert (same == 1).mean() > 0.85
    alone = out.groupby("cluster_id")["cluster_id"].transform("size") == 1
    assert out.loc[alone, "match_probability"].isna().all()
    assert (out.loc[~alone, "match_probability"] >= 0.95).all()


def test_shared_strong_identifier_links_unless_a_guard_forbids(trained):
    settings = SETTINGS.model_copy(update={"strong_identifiers": ["identifiers.vat"]})
    a = {**person("crm:1", "Ann", "Lee", dob="1970-01-01"), "identifiers": {"vat": "GB 123 456"}}
    b = {**person("erp:1", "Anne-Marie", "Leigh-Smith"), "identifiers": {"vat": "gb123456"}}
    c = {**person("mf:1", "Ann", "Lee", dob="1990-12-31"), "identifiers": {"vat": "GB123456"}}
    result = link(pd.DataFrame([a, b, c]), settings, model=trained.model)
    tiers = result.pairs.set_index(["record_key_l", "record_key_r"])["match_tier"]
    assert tiers[("crm:1", "erp:1")] == "identifier"
    ids = result.clusters.set_index("record_key")["cluster_id"]
    assert ids["crm:1"] == ids["erp:1"] and ids["mf:1"] != ids["crm:1"]


def test_link_only_never_pairs_records_of_one_source(trained):
    twins = [person(f"{src}:{i}", "Ann", "Lee", postcode="N1 1AA") for src in ("crm", "erp") for i in range(2)]
    settings = SETTINGS.model_copy(update={"link_type": "link_only"})
    pairs = link(pd.DataFrame(twins), settings, model=trained.model).pairs
    assert len(pairs) == 4
    assert (pairs["record_key_l"].str[:3] != pairs["record_key_r"].str[:3]).all()
