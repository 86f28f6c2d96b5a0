"""A data steward fixes quarantined rows in a spreadsheet and puts them back."""

from __future__ import annotations

import csv
import json

from click.testing import CliRunner

from cli import main
from tests.projects import make_project


def invoke(*args):
    result = CliRunner().invoke(main, list(map(str, args)))
    assert "Traceback" not in result.output
    return result


def reconciliation(root):
    return json.loads(invoke("reconcile", "-p", root, "--json").stdout)


def test_fixed_rows_are_requeued_migrated_and_stay_fixed_on_the_next_run(tmp_path):
    root = make_project(tmp_path)
    invoke("run", "-p", root)
    before = reconciliation(root)["sources"]["contacts"]
    export = tmp_path / "fix.csv"
    assert invoke("quarantine", "export", "-p", root, export, "--source", "contacts").exit_code == 0
    with export.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    fixed = []
    for row in rows:
        if row["reason"] == "invalid_email":
            row["Email"] = "carl@example.com"
            fixed.append(row)
        elif row["reason"] == "wrong_column_count":  # the raw line had an extra field; the steward fills the columns
            row.update({"Id": "c8", "First": "Eve", "Last": "Extra", "Email": "eve@x.org", "Country": "GB"})
            fixed.append(row)
    fixed.append({**rows[0], "quarantine_id": "99999"})  # a bad row: reported, the rest applied
    with export.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(fixed)
    result = invoke("quarantine", "requeue", "-p", root, export)
    assert result.exit_code == 1  # one row could not be used
    assert "quarantine row 99999 is not open" in result.output
    after = reconciliation(root)
    contacts = after["sources"]["contacts"]
    assert contacts["quarantined"] == before["quarantined"] - 2
    assert contacts["holds"] and after["requeued"]["contacts"] == 2
    # The source file still holds the bad rows: the next run applies the fixes again.
    invoke("run", "-p", root)
    assert reconciliation(root)["sources"]["contacts"]["quarantined"] == before["quarantined"] - 2


def test_a_correction_is_not_applied_once_the_source_row_changed(tmp_path):
    root = make_project(tmp_path)
    invoke("run", "-p", root)
    export = tmp_path / "fix.csv"
    invoke("quarantine", "export", "-p", root, export, "--reason", "invalid_email")
    with export.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    rows[0]["Email"] = "carl@example.com"
    with export.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    invoke("quarantine", "requeue", "-p", root, export)
    contacts = root / "data" / "contacts.csv"
    contacts.write_text(contacts.read_text().replace("carl@@example", "carl@@example.org"))
    invoke("run", "-p", root)
    listing = invoke("quarantine", "list", "-p", root, "--reason", "invalid_email")
    assert "carl@@example.org" in listing.output


def test_show_explains_one_row_with_its_source_columns(tmp_path):
    root = make_project(tmp_path)
    invoke("run", "-p", root)
    from migrate import Project
    from migrate.quarantine import list_rows

    qid = list_rows(Project.load(root).workspace(), reason="invalid_date")["id"].iloc[0]
    shown = invoke("quarantine", "show", "-p", root, qid)
    assert "31/02/1980" in shown.output and "Birthday" in shown.output
    assert invoke("quarantine", "show", "-p", root, "424242").exit_code == 2
