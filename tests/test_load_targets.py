"""The new CRM as SQLite, PostgreSQL or MariaDB (reference schema or an existing one), or as import files."""

from __future__ import annotations

import json
import logging
import threading

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from cli import main
from connectors.crm_schema import reference_metadata
from connectors.targets import canonical, row_checksums
from migrate import Project, load_phases, run
from migrate.loader import golden_rows
from migrate.workspace import id_map, load_ledger, load_results, read_table
from tests.databases import with_databases
from tests.projects import make_project


def invoke(*args):
    result = CliRunner().invoke(main, list(map(str, args)))
    assert "Traceback" not in result.output, result.output
    return result


def staged(tmp_path, target: dict) -> Project:
    root = make_project(tmp_path / "p")
    config = yaml.safe_load((root / "migration.yaml").read_text())
    config["target"] = {"batch_size": 3, **target}
    (root / "migration.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    project = Project.load(root)
    run(project, load=False)
    return project


def table(url: str, name: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(f"SELECT * FROM {name} ORDER BY external_id"), conn)
    engine.dispose()
    return frame


@with_databases("sqlite", "postgresql", "mariadb")
def test_a_row_the_crm_rejects_fails_with_its_reason_and_the_batch_still_loads(db_url, tmp_path):
    md = reference_metadata()
    md.tables["contacts"].append_constraint(sa.CheckConstraint("length(last_name) <= 4", name="short_last_name"))
    engine = sa.create_engine(db_url)
    md.create_all(engine)
    engine.dispose()
    project = staged(tmp_path, {"url": db_url})
    result = invoke("load", "-p", project.dir, "--phase", "all")
    assert result.exit_code == 1
    contacts = table(db_url, "contacts")
    assert sorted(contacts["last_name"]) == ["Grey", "Lee"]  # Stone, Field and Øster are too long
    out = read_table(project.workspace(), load_results).set_index("key")
    failed = out[out["status"] == "failed"]
    assert len(failed) == 3 and all("short_last_name" in r or "CHECK" in r for r in failed["reason"])
    assert set(out.loc[out["status"] == "unprocessed", "reason"].str.slice(0, 7)) == {"parent "}
    export = tmp_path / "failed.csv"
    assert invoke("results", "export", "-p", project.dir, export, "--status", "failed").exit_code == 0
    assert pd.read_csv(export)["status"].tolist() == ["failed"] * 3
    assert invoke("reconcile", "-p", project.dir).exit_code == 1


@with_databases("postgresql", "mariadb")
def test_reference_schema_round_trips_types_so_a_rerun_sends_nothing(db_url, tmp_path):
    project = staged(tmp_path, {"url": db_url})
    first = load_phases(project, ["all"])
    assert first.reconciliation["holds"], first.reconciliation["read_back"]
    orders = table(db_url, "orders")
    assert sorted(orders["amount"].astype(float)) == [15.25, 80.0, 99.99, 120.5]
    # A new workspace that knows nothing finds every row already there and identical.
    (project.dir / ".crm-migrate" / "workspace.db").unlink()
    fresh = Project.load(project.dir)
    run(fresh, load=False)
    again = load_phases(fresh, ["all"])
    assert again.loads[0].unchanged == {"contacts": 5, "orders": 4}
    assert again.loads[0].total("created") + again.loads[0].total("updated") == 0


@with_databases("sqlite", "postgresql", "mariadb")
def test_a_rerun_finds_a_value_the_crm_changed_even_in_case_alone_and_rollback_puts_it_back(db_url, tmp_path):
    project = staged(tmp_path, {"url": db_url})
    load_phases(project, ["all"])
    key, name = table(db_url, "contacts")[["external_id", "last_name"]].iloc[0]
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # MariaDB's default collation calls 'Grey' and 'grey' equal; the loader must not
        conn.execute(sa.text("UPDATE contacts SET last_name = :v WHERE external_id = :k"),
                     {"v": name.lower(), "k": key})
    engine.dispose()
    (project.dir / ".crm-migrate" / "workspace.db").unlink()
    fresh = Project.load(project.dir)
    run(fresh, load=False)
    again = load_phases(fresh, ["all"])
    assert again.loads[0].updated["contacts"] == again.loads[0].total("updated") == 1
    assert again.loads[0].unchanged == {"contacts": 4, "orders": 4}
    assert table(db_url, "contacts").set_index("external_id").loc[key, "last_name"] == name
    assert invoke("rollback", "-p", fresh.dir, "--phase", "all", "--yes").exit_code == 0
    assert table(db_url, "contacts").set_index("external_id").loc[key, "last_name"] == name.lower()


@with_databases("sqlite", "postgresql", "mariadb")
def test_id_map_holds_the_crm_ids_also_when_the_id_counter_skips_numbers(db_url, tmp_path):
    engine = sa.create_engine(db_url)
    reference_metadata().create_all(engine)
    if engine.dialect.name == "postgresql":  # ids 1, 8, 15…: not consecutive, so the batch reads them back
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER SEQUENCE contacts_id_seq INCREMENT BY 7"))
    engine.dispose()
    project = staged(tmp_path, {"url": db_url})
    assert load_phases(project, ["all"]).reconciliation["holds"]
    mapped = read_table(project.workspace(), id_map)
    for entity in ("contacts", "orders"):
        crm = table(db_url, entity).set_index("external_id")["id"].astype(str)
        ids = mapped[mapped["entity"] == entity].set_index("key")["target_id"]
        assert len(ids) == len(crm) and ids.sort_index().equals(crm.sort_index().rename("target_id")), entity


MAPPING = {
    "contacts": {"table": "person", "key": "legacy_ref", "id": "person_id",
                 "columns": {"first_name": "given_name", "last_name": "family_name", "email": "mail"}},
    "orders": {"table": "purchase", "key": "legacy_ref", "id": "purchase_id",
               "columns": {"contact_id": "person_id", "amount": "total", "occurred_on": "ordered_on"}},
}


def existing_crm(url: str) -> None:
    md = sa.MetaData()
    sa.Table("person", md, sa.Column("person_id", sa.Integer, primary_key=True),
             sa.Column("legacy_ref", sa.String(64), unique=True), sa.Column("given_name", sa.String(80)),
             sa.Column("family_name", sa.String(80)), sa.Column("mail", sa.String(200)))
    sa.Table("purchase", md, sa.Column("purchase_id", sa.Integer, primary_key=True),
             sa.Column("legacy_ref", sa.String(64), unique=True),
             sa.Column("person_id", sa.Integer, sa.ForeignKey("person.person_id")),
             sa.Column("total", sa.Numeric(10, 2)), sa.Column("ordered_on", sa.String(10)))
    engine = sa.create_engine(url)
    md.create_all(engine)
    engine.dispose()


@with_databases("sqlite", "postgresql", "mariadb")
def test_a_target_mapping_loads_into_an_existing_schema(db_url, tmp_path):
    existing_crm(db_url)
    (tmp_path / "crm-mapping.yaml").write_text(yaml.safe_dump(MAPPING))
    project = staged(tmp_path, {"url": db_url, "mapping": "../crm-mapping.yaml"})
    result = load_phases(project, ["all"])
    assert result.reconciliation["holds"], result.reconciliation
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        people = pd.read_sql(sa.text("SELECT * FROM person"), conn)
        bought = pd.read_sql(sa.text("SELECT * FROM purchase"), conn)
    engine.dispose()
    assert len(people) == 5 and people["legacy_ref"].str.startswith("G-").all()
    assert len(bought) == 4 and set(bought["person_id"]) <= set(people["person_id"])
    assert result.loads[0].skipped == {}


@with_databases("sqlite", "postgresql")
def test_a_mapping_naming_a_missing_table_or_column_stops_before_anything_is_written(db_url, tmp_path):
    existing_crm(db_url)
    bad = {"contacts": {**MAPPING["contacts"], "columns": {"first_name": "given", "last_name": "family_name"}},
           "orders": {**MAPPING["orders"], "table": "purchases"}}
    (tmp_path / "crm-mapping.yaml").write_text(yaml.safe_dump(MAPPING))
    project = staged(tmp_path, {"url": db_url, "mapping": "../crm-mapping.yaml"})
    (tmp_path / "crm-mapping.yaml").write_text(yaml.safe_dump(bad))
    result = invoke("load", "-p", project.dir, "--phase", "all")
    assert result.exit_code == 2
    assert "contacts.columns.first_name: table 'person' has no column 'given'" in result.output
    assert "orders: table 'purchases' does not exist" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert read_table(project.workspace(), load_ledger).empty


@with_databases("postgresql")
def test_a_read_only_crm_is_one_line_and_exit_1_before_anything_is_written(db_url, tmp_path):
    engine = sa.create_engine(db_url)
    reference_metadata().create_all(engine)
    engine.dispose()
    read_only = db_url + "?options=-c%20default_transaction_read_only%3Don"
    project = staged(tmp_path, {"url": read_only})
    result = invoke("load", "-p", project.dir, "--phase", "all")
    assert result.exit_code == 1
    assert "does not accept writes: cannot execute UPDATE in a read-only transaction" in result.output
    assert read_table(project.workspace(), load_ledger).empty


@with_databases("postgresql")
def test_a_locked_table_is_retried_with_backoff_until_it_is_free(db_url, tmp_path, caplog):
    engine = sa.create_engine(db_url)
    reference_metadata().create_all(engine)
    project = staged(tmp_path, {"url": db_url + "?options=-c%20lock_timeout%3D300"})
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("LOCK TABLE contacts IN EXCLUSIVE MODE"))
            locked.set()
            release.wait(1.5)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(10)
    with caplog.at_level(logging.WARNING, logger="crm_migrate"):
        result = load_phases(project, ["all"])
    holder.join()
    engine.dispose()
    assert any("retrying in" in r.getMessage() and "lock timeout" in r.getMessage() for r in caplog.records)
    assert result.reconciliation["holds"] and result.loads[0].created == {"contacts": 5, "orders": 4}


def test_salesforce_export_is_an_upsert_set_parents_first_keyed_by_external_id(tmp_path):
    project = staged(tmp_path, {"kind": "salesforce_csv", "path": "export"})
    result = load_phases(project, ["all"])
    assert result.reconciliation["holds"], result.reconciliation
    export = project.dir / "export"
    assert sorted(p.name for p in export.iterdir()) == ["2_Contact", "3_Order"]
    contacts = pd.concat(pd.read_csv(p) for p in sorted((export / "2_Contact").glob("*.csv")))
    assert len(contacts) == 5 and contacts["External_Id__c"].is_unique
    assert {"FirstName", "LastName", "Email", "HasOptedOutOfEmail"} <= set(contacts.columns)
    orders = pd.concat(pd.read_csv(p) for p in sorted((export / "3_Order").glob("*.csv")))
    assert set(orders["BillToContact.External_Id__c"]) <= set(contacts["External_Id__c"])
    files = sorted(export.rglob("*.csv"))
    again = load_phases(project, ["all"])
    assert again.loads[0].total("created") == 0 and sorted(export.rglob("*.csv")) == files
    assert invoke("rollback", "-p", project.dir, "--phase", "all", "--yes").exit_code == 0
    assert list(export.rglob("*.csv")) == []


def test_hubspot_export_writes_contacts_and_deals_with_the_contact_reference(tmp_path):
    project = staged(tmp_path, {"kind": "hubspot_csv", "path": "hubspot", "external_id_field": "crm_migrate_id"})
    assert load_phases(project, ["all"]).reconciliation["holds"]
    contacts = pd.read_csv(next((project.dir / "hubspot" / "2_contacts").glob("*.csv")))
    deals = pd.concat(pd.read_csv(p) for p in (project.dir / "hubspot" / "3_deals").glob("*.csv"))
    assert {"crm_migrate_id", "firstname", "lastname", "email"} <= set(contacts.columns)
    assert set(deals["contact_crm_migrate_id"]) <= set(
        pd.concat(pd.read_csv(p) for p in (project.dir / "hubspot" / "2_contacts").glob("*.csv"))["crm_migrate_id"])
    results = json.loads(invoke("reconcile", "-p", project.dir, "--json").stdout)["read_back"]
    assert results["contacts"] == {**results["contacts"], "expected": 5, "found": 5, "mismatched": 0}


def test_checksums_tell_apart_values_holding_the_separator_or_the_null_marker():
    rows = pd.DataFrame({"a": ["x\x1f", "x", None, "\x00", "x\\"], "b": ["y", "\x1fy", "z", "z", "\\y"]})
    sums = row_checksums({c: canonical(rows[c], "text") for c in rows.columns}, rows.index)
    assert sums.is_unique and sums.str.fullmatch("[0-9a-f]{16}").all()


def test_a_second_and_later_email_are_sent_as_exactly_the_json_of_the_rest_of_the_list():
    lists = [["a@x.org", "b@y.org", "c@z.org"], [], None, ["a@x.org", None], ["a@x.org", "zoë@x.org"],
             ["a@x.org", 'q"@x.org'], ["a@x.org", "b\\c@x.org"], ["only@x.org"]]
    column = pd.arrays.ArrowExtensionArray(pa.array(lists, pa.list_(pa.string())))
    party = golden_rows(pd.DataFrame({"emails": column, "phones": column}).pipe(_person))["contacts"]
    assert pa.array(party["email"]).to_pylist() == [v[0] if v else None for v in lists]
    assert pa.array(party["other_emails"]).to_pylist() == [json.dumps(v[1:]) if v and len(v) > 1 else None
                                                           for v in lists]


def _person(frame: pd.DataFrame) -> pd.DataFrame:
    """Golden people with nothing but the columns under test set."""
    others = {c: pd.Series(None, index=frame.index, dtype=object) for c in ("golden_id", "title", "first_name",
              "middle_name", "suffix", "organization_name", "street", "city", "region", "postcode", "country",
              "birth_date", "email_opt_in", "do_not_contact")}
    return frame.assign(**others, entity="person", last_name="Lee")
