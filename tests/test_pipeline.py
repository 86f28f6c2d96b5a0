"""An IT team runs a small migration end to end and checks that nothing was lost."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from connectors.target_sql import SqlTarget
from migrate import Project, run
from migrate.workspace import quarantine, read_table
from tests.projects import EXPECTED_IN, make_project


@pytest.fixture
def project(tmp_path):
    return Project.load(make_project(tmp_path))


def test_every_source_row_is_loaded_merged_or_quarantined(project):
    result = run(project)
    rec = result.reconciliation
    assert rec["holds"] is True
    for name, expected in EXPECTED_IN.items():
        row = rec["sources"][name]
        assert row["in"] == expected
        assert row["in"] == row["loaded"] + row["merged"] + row["quarantined"]
        assert row["pending"] == 0
    assert rec["total"]["merged"] == 3  # Ann x2 into the ERP's Ann, Bob into the ERP's Robert


def test_second_run_loads_nothing_twice(project):
    run(project)
    target = SqlTarget(project.config.target.url, project.dir)
    before = target.read("contacts")
    again = run(project)
    assert sum(sum(r.created.values()) + sum(r.updated.values()) for r in again.loads) == 0
    after = target.read("contacts")
    pd.testing.assert_frame_equal(before, after)
    assert len(after) == after["external_id"].nunique()


def test_bad_rows_are_quarantined_with_reason_and_line(project):
    run(project)
    q = read_table(project.workspace(), quarantine).set_index("source_ref")
    assert q.loc["line 6", "reason"] == "invalid_email"
    assert q.loc["line 6", "value"] == "carl@@example"
    assert q.loc["line 7", "reason"] == "no_identity"
    assert q.loc["line 8", "reason"] == "invalid_date"
    assert q.loc["line 9", "reason"] == "wrong_column_count"
    assert q.loc["line 10", "reason"] == "duplicate_source_id"
    assert q.loc["line 11", "reason"] == "missing_source_id"
    assert q.loc["order_id=5", "reason"] == "orphan_related"
    raw = json.loads(q.loc["line 6", "raw"])
    assert raw["Email"] == "carl@@example"


def test_orders_follow_their_golden_contact(project):
    run(project)
    target = SqlTarget(project.config.target.url, project.dir)
    contacts = target.read("contacts").set_index("id")
    orders = target.read("orders")
    assert len(orders) == 4
    owners = orders["contact_id"].map(contacts["email"])
    assert set(owners) == {"ann.lee@example.com", "bob@stone.io", "fay@field.net"}


def test_golden_values_say_where_they_came_from(project):
    run(project)
    ws = project.workspace()
    with ws.begin() as conn:
        row = conn.execute(sa.text("SELECT first_name, lineage FROM golden WHERE emails LIKE '%bob@stone.io%'")).one()
    # The ERP is trusted first: Robert wins over the address book's Bob.
    assert row.first_name == "Robert"
    lineage = json.loads(row.lineage)
    assert lineage["first_name"] == {"from_record_key": "erp:102", "rule": "source_priority"}
