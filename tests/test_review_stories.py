"""Data stewards decide what the matcher and survivorship could not, and their decisions stick.

The small test project matches deterministically, so uncertain pairs are raised through
the review API the way the probabilistic match stage raises them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from migrate.pipeline import run
from migrate.project import Project
from migrate.review import (Decision, DecisionError, StaleItemError, UnknownDecisionError, UnknownItemError,
                            UnknownRecordError, cluster_with_decisions, constraints, decide, decision_log, get_item,
                            list_items, refresh_queue, revoke, unmerge)
from migrate.workspace import SCHEMA_VERSION, Workspace, golden, golden_events, pairs, read_table, xref
from tests.projects import CONTACTS_CSV, make_project

#: Ann Lee twice in the address book with different birthdays, and no birthday in the ERP:
#: two equally trusted values, a conflict for a steward.
ANN_C3 = "c3,Ann,Lee,ann.lee@example.com,,GB,02/03/1980"
ANN_C3_OTHER_BIRTHDAY = "c3,Ann,Lee,ann.lee@example.com,,GB,03/02/1980"
BOB_C2 = "c2,Bob,Stone,bob@stone.io,+44 20 7946 0999"


#: Probabilistic matching that links Ann Lee's three records into a cluster too big to merge unreviewed.
SMALL_CLUSTERS = {"blocking": [["last_name"], ["email"]], "max_cluster_size": 2,
                  "compare": {"first_name": "name", "last_name": "name", "email": "email", "phone": "phone",
                              "birth_date": "date"},
                  "thresholds": {"link": 0.9, "review": 0.5}}


def migrate(tmp_path: Path, contacts: str = CONTACTS_CSV, erp_sql: tuple[str, ...] = (),
            match: dict | None = None) -> Project:
    """The test project with these contacts, ERP changes and match rules, run once up to golden records."""
    root = make_project(tmp_path)
    if match is not None:
        config = yaml.safe_load((root / "migration.yaml").read_text(encoding="utf-8"))
        config["rules"]["match"] = match
        (root / "migration.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    project = Project.load(root)
    edit(project, contacts, *erp_sql)
    run(project, load=False)
    return project


def edit(project: Project, contacts: str | None = None, *erp_sql: str) -> None:
    """Change the sources as the legacy systems would between runs."""
    if contacts is not None:
        (project.dir / "data" / "contacts.csv").write_text(contacts, encoding="utf-8")
    engine = sa.create_engine(f"sqlite:///{project.dir}/data/erp.db")
    with engine.begin() as conn:
        for statement in erp_sql:
            conn.execute(sa.text(statement))
    engine.dispose()


def rerun(project: Project) -> str:
    return run(project, load=False).run_id


def golden_of(project: Project, record_key: str) -> str:
    return project.workspace().scalar(sa.select(xref.c.golden_id).where(xref.c.record_key == record_key))


def raise_pair(project: Project, left: str, right: str, probability: float = 0.8) -> str:
    """Put a pair in the queue as the match stage does for one between the thresholds."""
    ws = project.workspace()
    refresh_queue(project, ws, "test", pd.DataFrame({"record_key_l": [left], "record_key_r": [right],
                                                     "match_probability": [probability]}), None)
    return list_items(ws, kind="pair")["item_id"].iloc[0]


def conflict_project(tmp_path: Path) -> tuple[Project, str]:
    """Ann Lee with two birthdays from equally trusted records; returns the project and the conflict item."""
    project = migrate(tmp_path, CONTACTS_CSV.replace(ANN_C3, ANN_C3_OTHER_BIRTHDAY),
                      ("UPDATE erp_customers SET dob = NULL WHERE customer_id = 101",))
    items = list_items(project.workspace(), kind="conflict")
    assert items["attribute"].tolist() == ["birth_date"]
    return project, items["item_id"].iloc[0]


def golden_row(project: Project, record_key: str) -> dict:
    ws = project.workspace()
    return read_table(ws, golden, where=golden.c.golden_id == golden_of(project, record_key)).iloc[0].to_dict()


# --- match decisions -------------------------------------------------------------------------------------------

def test_no_match_decision_survives_a_rerun_and_a_changed_record(tmp_path):
    project = migrate(tmp_path)
    ws = project.workspace()
    assert golden_of(project, "contacts:c2") == golden_of(project, "erp:102")  # same e-mail: merged
    item = raise_pair(project, "contacts:c2", "erp:102")

    decide(project, ws, item, Decision("no_match"), "sam", note="Bob is Robert's son")
    rerun(project)
    assert golden_of(project, "contacts:c2") != golden_of(project, "erp:102")

    edit(project, CONTACTS_CSV.replace(BOB_C2, "c2,Bobby,Stone,bob@stone.io,+44 20 7946 0111"))
    rerun(project)
    assert golden_of(project, "contacts:c2") != golden_of(project, "erp:102")
    assert get_item(ws, item).status == "decided"


def test_match_decision_links_records_the_matcher_left_apart(tmp_path):
    project = migrate(tmp_path)
    ws = project.workspace()
    assert golden_of(project, "contacts:c4") != golden_of(project, "erp:104")
    item = raise_pair(project, "contacts:c4", "erp:104", 0.7)

    decide(project, ws, item, Decision("match"), "sam")
    rerun(project)

    assert golden_of(project, "contacts:c4") == golden_of(project, "erp:104")
    stored = read_table(ws, pairs).set_index(["record_key_l", "record_key_r"])
    assert stored.loc[("contacts:c4", "erp:104"), "rule"] == "steward"


def test_cannot_link_cuts_a_cluster_joined_through_a_third_record(tmp_path):
    project = migrate(tmp_path)
    ws = project.workspace()
    ann = {golden_of(project, k) for k in ("contacts:c1", "contacts:c3", "erp:101")}
    assert len(ann) == 1  # one e-mail links all three
    decide(project, ws, raise_pair(project, "contacts:c3", "erp:101"), Decision("no_match"), "sam")

    rerun(project)

    assert golden_of(project, "contacts:c3") != golden_of(project, "erp:101")
    assert golden_of(project, "contacts:c1") in {golden_of(project, "contacts:c3"), golden_of(project, "erp:101")}


def test_clustering_keeps_cannot_link_records_apart_whatever_links_them():
    decided = constraints_of(must=[("d", "e")], cannot=[("a", "c"), ("d", "f")])
    linked = pd.DataFrame({"record_key_l": ["a", "b", "e"], "record_key_r": ["b", "c", "f"],
                           "match_probability": [0.99, 0.97, 1.0], "rule": ["email", "email", "phones"]})
    from migrate.review import with_decisions

    pairs_now = with_decisions(linked, decided)
    clusters = cluster_with_decisions(pd.Series(list("abcdef")), pairs_now, decided).set_index("record_key")
    cluster = clusters["cluster_id"]
    assert cluster["a"] != cluster["c"]
    assert cluster["b"] == cluster["a"]  # the stronger link (a-b) is kept, the weaker (b-c) cut
    assert cluster["d"] == cluster["e"] != cluster["f"]  # must-link d-e wins over the link e-f


def constraints_of(must: list[tuple[str, str]], cannot: list[tuple[str, str]]):
    from migrate.review import Constraints

    def frame(rows: list[tuple[str, str]]) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=["record_key_l", "record_key_r"]).assign(decision_id=1)

    return Constraints(frame(must), frame(cannot), pd.DataFrame())


def test_an_oversized_cluster_a_steward_keeps_together_merges_until_it_grows(tmp_path):
    project = migrate(tmp_path, match=SMALL_CLUSTERS)
    ws = project.workspace()
    ann = ["contacts:c1", "contacts:c3", "erp:101"]
    assert len({golden_of(project, k) for k in ann}) == 3  # held apart until a steward decides
    items = list_items(ws, kind="cluster")
    assert items["records"].tolist() == [ann]

    decide(project, ws, items["item_id"].iloc[0], Decision("match"), "sam")
    rerun(project)
    assert len({golden_of(project, k) for k in ann}) == 1
    assert list_items(ws, kind="cluster", status="decided")["item_id"].tolist() == items["item_id"].tolist()

    edit(project, CONTACTS_CSV + "c9,Ann,Lee,ann.lee@example.com,,GB,02/03/1980,,\n")
    rerun(project)  # a fourth Ann Lee: the cluster is a new question, the item opens again
    assert list_items(ws, kind="cluster")["records"].tolist() == [["contacts:c1", "contacts:c3", "contacts:c9",
                                                                   "erp:101"]]


def test_revoking_a_decision_lets_the_records_match_again(tmp_path):
    project = migrate(tmp_path)
    ws = project.workspace()
    item = raise_pair(project, "contacts:c2", "erp:102")
    result = decide(project, ws, item, Decision("no_match"), "sam")
    rerun(project)
    assert golden_of(project, "contacts:c2") != golden_of(project, "erp:102")

    revoke(project, ws, result.decision_id, "lee")
    assert get_item(ws, item).status == "open"
    assert constraints(ws).cannot_link.empty
    rerun(project)
    assert golden_of(project, "contacts:c2") == golden_of(project, "erp:102")


# --- attribute decisions ---------------------------------------------------------------------------------------

def test_ties_between_equally_trusted_records_are_raised_as_conflicts(tmp_path):
    project, item_id = conflict_project(tmp_path)
    item = get_item(project.workspace(), item_id)
    assert item.kind == "conflict" and item.attribute == "birth_date"
    assert sorted(v["value"] for v in item.evidence["values"]) == ["1980-02-03", "1980-03-02"]
    assert sorted(item.records["record_key"]) == ["contacts:c1", "contacts:c3"]
    # Bob vs Robert differ too, but the ERP is trusted first: a rule decided, nothing to review.
    assert list_items(project.workspace(), kind="conflict", source="erp").empty


def test_override_survives_new_source_data(tmp_path):
    project, item = conflict_project(tmp_path)
    decide(project, project.workspace(), item, Decision.parse("override", "birth_date=1980-12-24"), "sam",
           note="passport seen")
    rerun(project)
    row = golden_row(project, "erp:101")
    assert row["birth_date"] == "1980-12-24"
    assert row["lineage"]["birth_date"]["rule"] == "steward_override"
    assert row["lineage"]["birth_date"]["who"] == "sam"

    # The trusted ERP now has a birthday, and the address book changed: the steward's value stays.
    edit(project, CONTACTS_CSV.replace(ANN_C3, "c3,Ann,Lee,ann.lee@example.com,,GB,04/04/1984"),
         "UPDATE erp_customers SET dob = '1970-01-01' WHERE customer_id = 101")
    rerun(project)
    assert golden_row(project, "erp:101")["birth_date"] == "1980-12-24"
    assert get_item(project.workspace(), item).status == "decided"


def test_pick_keeps_the_chosen_value_and_names_its_record(tmp_path):
    project, item = conflict_project(tmp_path)
    decide(project, project.workspace(), item, Decision("pick", "1980-02-03"), "sam")
    rerun(project)
    row = golden_row(project, "erp:101")
    assert row["birth_date"] == "1980-02-03"
    assert row["lineage"]["birth_date"]["from_record_key"] == "contacts:c3"


def test_an_override_follows_its_golden_record_into_a_merge(tmp_path):
    project = migrate(tmp_path)
    ws = project.workspace()
    pair = raise_pair(project, "contacts:c4", "erp:104")
    # Both golden records are as old and as large: the smaller id survives, the other is retired into it.
    doomed = max(("contacts:c4", "erp:104"), key=lambda k: golden_of(project, k))
    old_id = golden_of(project, doomed)
    refresh_queue(project, ws, "test", None, pd.DataFrame({"cluster_id": [doomed]}))
    decide(project, ws, list_items(ws, kind="cluster")["item_id"].iloc[0], Decision.parse("override", "city=Aarhus"),
           "sam")
    decide(project, ws, pair, Decision("match"), "sam")
    rerun(project)
    assert golden_of(project, doomed) != old_id
    assert golden_row(project, doomed)["city"] == "Aarhus"


# --- unmerge and stable ids ------------------------------------------------------------------------------------

def test_unmerge_restores_both_records_with_their_own_ids(tmp_path):
    apart = CONTACTS_CSV.replace(BOB_C2, "c2,Bob,Stone,bob@other.io,+44 20 7946 0999")
    project = migrate(tmp_path, apart)
    bob, robert = golden_of(project, "contacts:c2"), golden_of(project, "erp:102")
    assert bob != robert

    edit(project, CONTACTS_CSV)  # Bob's address book entry now shares Robert's e-mail
    rerun(project)
    merged = golden_of(project, "contacts:c2")
    assert merged == golden_of(project, "erp:102") and merged in {bob, robert}
    gone = ({bob, robert} - {merged}).pop()
    ws = project.workspace()
    retired = read_table(ws, golden, where=golden.c.golden_id == gone).iloc[0]
    assert (retired["status"], retired["retired_into"]) == ("retired", merged)

    unmerge(project, ws, "contacts:c2", "sam", note="father and son")
    run_id = rerun(project)
    assert (golden_of(project, "contacts:c2"), golden_of(project, "erp:102")) == (bob, robert)
    events = read_table(ws, golden_events, where=golden_events.c.run_id == run_id)
    assert events[["golden_id", "event", "other_id"]].values.tolist() == [[gone, "restored", merged]]


def test_a_rerun_with_no_change_produces_zero_id_churn(tmp_path):
    project = migrate(tmp_path)
    ws = project.workspace()
    before_xref = read_table(ws, xref).sort_values("record_key").reset_index(drop=True)
    before_golden = read_table(ws, golden).sort_values("golden_id").reset_index(drop=True)

    run_id = rerun(project)

    pd.testing.assert_frame_equal(read_table(ws, xref).sort_values("record_key").reset_index(drop=True), before_xref)
    pd.testing.assert_frame_equal(read_table(ws, golden).sort_values("golden_id").reset_index(drop=True),
                                  before_golden)
    assert read_table(ws, golden_events, where=golden_events.c.run_id == run_id).empty


# --- bad input -------------------------------------------------------------------------------------------------

def test_a_decision_on_changed_records_is_refused_and_says_what_changed(tmp_path):
    project = migrate(tmp_path)
    ws = project.workspace()
    item = raise_pair(project, "contacts:c2", "erp:102")
    seen = get_item(ws, item).version

    edit(project, CONTACTS_CSV.replace(BOB_C2, "c2,Bob,Stone,bob@stone.io,+44 20 7946 0111"))
    rerun(project)

    with pytest.raises(StaleItemError) as caught:
        decide(project, ws, item, Decision("no_match"), "sam", seen_version=seen)
    message = str(caught.value)
    assert caught.value.exit_code == 1
    assert "contacts:c2 changed" in message and "phones" in message and "+442079460111" in message
    assert decision_log(ws).empty
    # Shown again, the item decides.
    decide(project, ws, item, Decision("no_match"), "sam", seen_version=get_item(ws, item).version)


def test_unknown_ids_and_decisions_that_do_not_fit_are_usage_errors(tmp_path):
    project = migrate(tmp_path)
    ws = project.workspace()
    item = raise_pair(project, "contacts:c2", "erp:102")
    with pytest.raises(UnknownItemError) as unknown:
        decide(project, ws, "P-0000000000", Decision("match"), "sam")
    assert unknown.value.exit_code == 2 and "P-0000000000" in str(unknown.value)
    with pytest.raises(DecisionError, match="pair item is decided with match or no_match"):
        decide(project, ws, item, Decision("pick", "Bob"), "sam")
    with pytest.raises(UnknownDecisionError):
        revoke(project, ws, 99, "sam")
    with pytest.raises(UnknownRecordError):
        unmerge(project, ws, "contacts:nobody", "sam")
    with pytest.raises(DecisionError, match="only record"):
        unmerge(project, ws, "contacts:c4", "sam")
    with pytest.raises(DecisionError, match="FIELD=VALUE"):
        Decision.parse("override", "York")


def test_every_decision_is_logged_with_who_when_note_and_previous_state(tmp_path):
    project = migrate(tmp_path)
    ws = project.workspace()
    item = raise_pair(project, "contacts:c2", "erp:102")
    first = decide(project, ws, item, Decision("no_match"), "sam", note="looked different")
    again = decide(project, ws, item, Decision("no_match"), "sam")
    second = decide(project, ws, item, Decision("match"), "lee", note="same person after all")

    assert again.decision_id == first.decision_id  # the same decision twice is recorded once
    log = decision_log(ws).set_index("id")
    assert len(log) == 2
    assert (log.loc[first.decision_id, "revoked_by"], log.loc[second.decision_id, "who"]) == ("lee", "lee")
    assert log.loc[second.decision_id, "note"] == "same person after all"
    previous = json.loads(log.loc[second.decision_id, "previous"])
    assert previous["item_status"] == "decided" and previous["superseded"] == [first.decision_id]
    assert previous["golden_ids"]["contacts:c2"] == golden_of(project, "erp:102")
    assert all(isinstance(at, str) and at.startswith("20") for at in log["at"])
    audit = [json.loads(line) for line in (project.state_dir / "logs" / "decisions.jsonl").read_text().splitlines()]
    assert [a["who"] for a in audit] == ["sam", "lee"]


def test_a_workspace_from_before_decisions_had_golden_ids_is_upgraded(tmp_path):
    url = f"sqlite:///{tmp_path}/ws.db"
    ws = Workspace(url, tmp_path)
    with ws.begin() as conn:
        conn.execute(sa.text("ALTER TABLE decisions DROP COLUMN golden_id"))
        conn.execute(sa.text("ALTER TABLE decisions DROP COLUMN revoked_by"))
        conn.execute(sa.text("ALTER TABLE xref DROP COLUMN origin_id"))
        conn.execute(sa.text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
    ws.engine.dispose()

    upgraded = Workspace(url, tmp_path)

    assert upgraded.schema_version() == SCHEMA_VERSION == 2
    assert constraints(upgraded).overrides.empty
    columns = {c["name"] for c in sa.inspect(upgraded.engine).get_columns("decisions")}
    assert {"golden_id", "revoked_by"} <= columns
