"""A nightly sync keeps the new CRM aligned with the legacy systems during the transition.

The IT team ran the migration once; every night `crm-migrate sync` picks up what changed in
the ERP (read by its ``updated_at`` cursor) and in the contact export, and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

import migrate.extract
from cli import main
from migrate import Project, run, sync
from migrate.changes import decode_cursor, encode_cursor
from migrate.workspace import cursors, read_table, stages
from tests.databases import with_databases
from tests.projects import CONTACTS_CSV, CUSTOMERS, make_project


def nightly_project(root, erp_url: str | None = None) -> Project:
    """The test project with the ERP read incrementally by its typed ``updated_at`` timestamp."""
    make_project(root, erp_url=erp_url)
    config = yaml.safe_load((root / "migration.yaml").read_text())
    config["sources"]["erp"]["cursor"] = "updated_at"
    (root / "migration.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    with erp(root, erp_url).begin() as conn:
        customers = CUSTOMERS.assign(updated_at=pd.to_datetime(CUSTOMERS["updated_at"]))
        customers.to_sql("erp_customers", conn, index=False, if_exists="replace")
    return Project.load(root)


def erp(root, erp_url: str | None) -> sa.Engine:
    return sa.create_engine(erp_url or f"sqlite:///{root}/data/erp.db")


def crm_contacts(project: Project) -> pd.DataFrame:
    engine = sa.create_engine(project.config.target.url.replace("sqlite:///", f"sqlite:///{project.dir}/"))
    with engine.connect() as conn:
        return pd.read_sql("SELECT * FROM contacts", conn)


def stages_of(project: Project, run_id: str) -> list[str]:
    found = read_table(project.workspace(), stages, where=stages.c.run_id == run_id)
    return found.sort_values("position")["stage"].tolist()


def erp_rows_read(project: Project, run_id: str) -> int:
    found = read_table(project.workspace(), stages, where=(stages.c.run_id == run_id) & (stages.c.stage == "extract"))
    return int(json.loads(found["detail"].iloc[0])["erp"]["records"])


@pytest.fixture
def migrated(tmp_path) -> Project:
    project = nightly_project(tmp_path)
    assert run(project).reconciliation["holds"]
    return project


def test_a_quiet_night_reads_only_the_newest_erp_row_and_skips_matching(migrated):
    result = sync(migrated)

    assert result.reconciliation["holds"] is True
    assert erp_rows_read(migrated, result.run_id) == 1  # the row at the cursor itself, read again
    assert "match" not in stages_of(migrated, result.run_id)
    assert "golden" not in stages_of(migrated, result.run_id)
    assert sum(r.total("created") + r.total("updated") for r in result.loads) == 0


def test_a_changed_and_a_new_erp_customer_reach_the_crm(migrated):
    with erp(migrated.dir, None).begin() as conn:
        conn.execute(sa.text("UPDATE erp_customers SET email = 'fay@new.example', updated_at = '2024-06-01 00:00:00' "
                             "WHERE customer_id = 103"))
        conn.execute(sa.text("INSERT INTO erp_customers (customer_id, first_nm, last_nm, email, country, updated_at) "
                             "VALUES (105, 'Hal', 'Moss', 'hal@moss.org', 'GB', '2024-06-02 00:00:00')"))

    result = sync(migrated)

    assert erp_rows_read(migrated, result.run_id) == 3  # the old high-water row, 103 and 105
    assert {"match", "golden"} <= set(stages_of(migrated, result.run_id))
    contacts = crm_contacts(migrated)
    assert "fay@new.example" in set(contacts["email"])
    assert "hal@moss.org" in set(contacts["email"])
    assert len(contacts) == contacts["external_id"].nunique()
    rec = result.reconciliation
    assert rec["holds"] is True
    assert rec["sources"]["erp"]["in"] == 5  # 4 migrated + 1 new, the changed one not counted twice
    stored = read_table(migrated.workspace(), cursors).set_index("source")
    assert decode_cursor(stored.loc["erp", "value"]) == dt.datetime(2024, 6, 2)


def test_an_erp_row_that_turns_bad_is_quarantined_and_comes_back_when_fixed(migrated):
    with erp(migrated.dir, None).begin() as conn:
        conn.execute(sa.text("UPDATE erp_customers SET email = 'gus@@grey', updated_at = '2024-07-01 00:00:00' "
                             "WHERE customer_id = 104"))
    bad = sync(migrated).reconciliation["sources"]["erp"]
    assert (bad["in"], bad["quarantined"]) == (4, 1)
    assert bad["in"] == bad["loaded"] + bad["merged"] + bad["quarantined"]

    with erp(migrated.dir, None).begin() as conn:
        conn.execute(sa.text("UPDATE erp_customers SET email = 'gus@grey.org', updated_at = '2024-07-02 00:00:00' "
                             "WHERE customer_id = 104"))
    fixed = sync(migrated).reconciliation
    assert fixed["holds"] is True
    assert (fixed["sources"]["erp"]["in"], fixed["sources"]["erp"]["quarantined"]) == (4, 0)
    assert "gus@grey.org" in set(crm_contacts(migrated)["email"])


def test_unchanged_export_rows_are_not_standardised_again(migrated, monkeypatch):
    seen: list[int] = []
    real = migrate.extract.standardise

    def counting(frame, **kwargs):
        seen.append(len(frame))
        return real(frame, **kwargs)

    monkeypatch.setattr(migrate.extract, "standardise", counting)
    edited = CONTACTS_CSV.replace("c4,Zoë,Øster,zoe@oster.dk", "c4,Zoë,Øster,zoe@oster.example")
    (migrated.dir / "data" / "contacts.csv").write_text(edited, encoding="utf-8")

    result = sync(migrated)

    # Of the export's 8 distinct ids, c1-c3 are staged unchanged and skipped; c4 changed, and the
    # four quarantined rows (c5-c7 and the row without an id) are checked again. The ERP's
    # boundary row is unchanged too. A full run standardises 8 + 4 rows.
    assert sum(seen) == 5
    assert "zoe@oster.example" in set(crm_contacts(migrated)["email"])
    assert result.reconciliation["holds"] is True


def test_a_sync_interrupted_after_extract_still_remakes_the_golden_records(migrated, monkeypatch):
    with erp(migrated.dir, None).begin() as conn:
        conn.execute(sa.text("UPDATE erp_customers SET last_nm = 'Greyson', updated_at = '2024-08-01 00:00:00' "
                             "WHERE customer_id = 104"))

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr("migrate.pipeline.match_stage", crash)
        with pytest.raises(KeyboardInterrupt):
            sync(migrated)  # the cursor moved on, the golden records did not

    result = sync(migrated)

    assert "golden" in stages_of(migrated, result.run_id)
    assert "Greyson" in set(crm_contacts(migrated)["last_name"])


@with_databases("postgresql", "mariadb")
def test_the_cursor_filters_in_the_database_on_a_typed_timestamp(tmp_path, db_url):
    project = nightly_project(tmp_path, erp_url=db_url)
    assert run(project).reconciliation["holds"]
    with erp(tmp_path, db_url).begin() as conn:
        conn.execute(sa.text("UPDATE erp_customers SET email = 'fay@new.example', updated_at = :at "
                             "WHERE customer_id = 103"), {"at": dt.datetime(2024, 6, 1)})

    result = sync(project)

    assert erp_rows_read(project, result.run_id) == 2
    assert "fay@new.example" in set(crm_contacts(project)["email"])
    assert result.reconciliation["holds"] is True


def test_cursor_values_keep_their_type():
    for value in (dt.datetime(2024, 6, 2, 3, 4, 5), dt.date(2024, 6, 2), 42, "2024-06-02T00:00:00",
                  pd.Timestamp("2024-06-02 01:00")):
        back = decode_cursor(encode_cursor(value))
        assert back == value
        assert type(back) is (dt.datetime if isinstance(value, pd.Timestamp) else type(value))


def test_a_cursor_on_a_file_source_is_a_config_error(tmp_path):
    make_project(tmp_path)
    config = yaml.safe_load((tmp_path / "migration.yaml").read_text())
    config["sources"]["contacts"]["cursor"] = "Modified"
    (tmp_path / "migration.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    result = CliRunner().invoke(main, ["sync", "-p", str(tmp_path)])

    assert result.exit_code == 2
    assert "sources.contacts.cursor" in result.output


def test_sync_from_the_command_line_reports_and_exits_zero(migrated):
    result = CliRunner().invoke(main, ["sync", "-p", str(migrated.dir)])

    assert result.exit_code == 0, result.output
    assert "holds" in result.output.lower() or "reconcil" in result.output.lower()
