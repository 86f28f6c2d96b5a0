"""Stewards at the command line: the queue, decisions, offline review in a spreadsheet, golden records."""

from __future__ import annotations

import csv
import json

import pandas as pd
from click.testing import CliRunner

from cli import main
from migrate.review import decision_log, get_item, item_id, list_items, refresh_queue
from tests.projects import CONTACTS_CSV
from tests.test_review_stories import conflict_project, edit, golden_of, rerun


def invoke(*args: object):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_a_steward_works_the_queue_from_the_command_line(tmp_path):
    project, conflict = conflict_project(tmp_path)
    p = ("-p", project.dir)

    listed = invoke("review", "list", *p)
    assert listed.exit_code == 0 and conflict in listed.output and "birth_date" in listed.output
    shown = invoke("review", "show", *p, conflict)
    version = get_item(project.workspace(), conflict).version
    assert shown.exit_code == 0
    assert "1980-03-02" in shown.output and "1980-02-03" in shown.output and version in shown.output

    assert invoke("review", "decide", *p, conflict, "--pick", "1980-02-03", "--seen", version,
                  "--note", "passport", "--who", "sam").exit_code == 0
    log = invoke("review", "log", *p)
    assert "#1 " in log.output and f"on {conflict}: set birth_date = '1980-02-03' by sam (passport)" in log.output
    entries = json.loads(invoke("review", "log", *p, "--json").output)
    assert [(e["id"], e["constraint"], e["who"]) for e in entries] == [(1, "override", "sam")]

    assert invoke("review", "revoke", *p, "1", "--who", "lee").exit_code == 0
    assert get_item(project.workspace(), conflict).status == "open"


def test_bad_decisions_exit_2_and_stale_ones_exit_1_with_what_changed(tmp_path):
    project, conflict = conflict_project(tmp_path)
    p = ("-p", project.dir)
    unknown = invoke("review", "decide", *p, "A-0000000000", "--pick", "x")
    assert unknown.exit_code == 2 and "no review item 'A-0000000000'" in unknown.output
    both = invoke("review", "decide", *p, conflict, "--pick", "1980-02-03", "--override", "city=York")
    assert both.exit_code == 2 and "exactly one of" in both.output
    not_offered = invoke("review", "decide", *p, conflict, "--pick", "1999-09-09")
    assert not_offered.exit_code == 2 and "not one of the values in conflict" in not_offered.output
    assert invoke("review", "revoke", *p, "42").exit_code == 2

    seen = get_item(project.workspace(), conflict).version
    edit(project, CONTACTS_CSV.replace("c1,ann,LEE,Ann.Lee@Example.com,020 7946 0018,United Kingdom,02/03/1980",
                                       "c1,ann,LEE,Ann.Lee@Example.com,020 7946 0018,United Kingdom,05/03/1980")
         .replace("c3,Ann,Lee,ann.lee@example.com,,GB,02/03/1980", "c3,Ann,Lee,ann.lee@example.com,,GB,03/02/1980"))
    rerun(project)
    stale = invoke("review", "decide", *p, conflict, "--pick", "1980-02-03", "--seen", seen)
    assert stale.exit_code == 1
    assert "contacts:c1 changed (birth_date '1980-03-02' -> '1980-03-05')" in stale.output.replace("\n", " ")


def test_a_team_reviews_offline_in_a_spreadsheet(tmp_path):
    project, conflict = conflict_project(tmp_path)
    ws = project.workspace()
    refresh_queue(project, ws, "test", pd.DataFrame({"record_key_l": ["contacts:c2", "contacts:c4"],
                                                     "record_key_r": ["erp:102", "erp:103"],
                                                     "match_probability": [0.9, 0.7]}), None)
    bob, zoe = item_id("pair", "contacts:c2", "erp:102"), item_id("pair", "contacts:c4", "erp:103")
    file = tmp_path / "review.csv"
    exported = invoke("review", "export", "-p", project.dir, file)
    assert exported.exit_code == 0 and "3 items written" in exported.output
    with file.open(encoding="utf-8-sig") as fh:
        rows = {r["item_id"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {conflict, bob, zoe}
    assert "1980-03-02 (contacts:c1)" in rows[conflict]["values"] and "[contacts:c2]" in rows[bob]["left"]

    rows[conflict].update(decision="pick", value="1980-02-03", note="passport")
    rows[bob].update(decision="no-match")
    rows[zoe].update(decision="maybe")
    extra = [dict(rows[bob], item_id="P-0000000000", decision="match"),
             dict(rows[conflict], decision="override", field="shoe_size", value="9")]
    with file.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.DictWriter(fh, list(rows[bob]))
        writer.writeheader()
        writer.writerows([rows[conflict], rows[bob], rows[zoe], *extra])

    imported = invoke("review", "import", "-p", project.dir, file, "--who", "team")
    assert imported.exit_code == 1
    problems = imported.output.replace("\n", " ")
    assert f"review.csv:4: {zoe}: unknown decision 'maybe'" in problems
    assert "review.csv:5: P-0000000000: no review item" in problems
    assert "review.csv:6:" in problems and "shoe_size" in problems
    assert "2 decisions applied, 3 rows skipped" in problems
    log = decision_log(ws)
    assert sorted(log["item_id"]) == sorted([conflict, bob]) and set(log["who"]) == {"team"}
    assert set(list_items(ws, status="decided")["item_id"]) == {conflict, bob}


def test_a_spreadsheet_row_about_records_that_changed_since_the_export_is_refused(tmp_path):
    project, conflict = conflict_project(tmp_path)
    file = tmp_path / "review.csv"
    invoke("review", "export", "-p", project.dir, file)
    with file.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    rows[0].update(decision="pick", value="1980-02-03")
    with file.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    edit(project, CONTACTS_CSV.replace("c3,Ann,Lee,ann.lee@example.com,,GB,02/03/1980",
                                       "c3,Ann,Lee,ann.lee@example.com,,GB,03/02/1981"))
    rerun(project)

    imported = invoke("review", "import", "-p", project.dir, file)

    assert imported.exit_code == 1
    assert "contacts:c3 changed (birth_date '1980-02-03' -> '1981-02-03')" in imported.output.replace("\n", " ")
    assert decision_log(project.workspace()).empty


def test_golden_show_history_and_unmerge(tmp_path):
    project, _ = conflict_project(tmp_path)
    p = ("-p", project.dir)
    ann = golden_of(project, "erp:101")

    shown = invoke("golden", "show", *p, ann)
    assert shown.exit_code == 0
    for text in ("erp:101", "contacts:c1", "contacts:c3", "agreement", "tiebreak", "anchor", "merged"):
        assert text in shown.output
    unmerged = invoke("golden", "unmerge", *p, "contacts:c3", "--note", "not her", "--who", "sam")
    assert unmerged.exit_code == 0 and "cannot_link" in unmerged.output
    rerun(project)
    history = invoke("golden", "history", *p, ann).output
    assert "created" in history and f"with {ann}" in history and "split" in history
    assert "keep apart contacts:c3 from contacts:c1, erp:101 by sam (not her)" in history
    assert golden_of(project, "contacts:c3") != ann
    assert invoke("golden", "show", *p, "G-000000000000").exit_code == 2
    assert invoke("golden", "unmerge", *p, "contacts:c3").exit_code == 2  # alone now: nothing to unmerge


def test_the_report_shows_merges_conflicts_and_the_decision_log(tmp_path):
    project, conflict = conflict_project(tmp_path)
    invoke("review", "decide", "-p", project.dir, conflict, "--override", "birth_date=1980-12-24", "--who", "sam")
    rerun(project)
    data = json.loads(invoke("reconcile", "-p", project.dir, "--json").output)
    golden = data["golden"]
    assert golden["sources"]["contacts"] == {"records": 4, "merged": 3, "conflicts": 1}
    assert golden["review"] == {"conflict": {"decided": 1}}
    assert golden["decisions"]["log"][0]["decision"] == "set birth_date = '1980-12-24' by sam"
    md = (project.state_dir / "reports" / "reconciliation.md").read_text()
    assert "## Decision log" in md and "set birth_date = '1980-12-24' by sam" in md
    assert "## Merges and conflicts per source" in md and "## Cluster sizes" in md
    html = (project.state_dir / "reports" / "reconciliation.html").read_text()
    assert "Decision log" in html and "set birth_date = &#x27;1980-12-24&#x27; by sam" in html
