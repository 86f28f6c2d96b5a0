"""An IT team moves golden customers into the new CRM in waves: planned, loaded, rolled back, reconciled."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from cli import main
from connectors.crm_schema import reference_metadata
from migrate import Project, load_phases, run
from migrate.workspace import golden, id_map, load_ledger, read_table
from tests.projects import make_project

WAVES = [{"name": "wave1-erp", "where": "source == 'erp' and country == 'GB'"}, {"name": "wave2-rest"}]


def invoke(*args):
    result = CliRunner().invoke(main, list(map(str, args)))
    assert "Traceback" not in result.output, result.output
    return result


def crm(root) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{root / 'crm.db'}")


def rows(root, table: str) -> pd.DataFrame:
    with crm(root).connect() as conn:
        return pd.read_sql(sa.text(f"SELECT * FROM {table} ORDER BY external_id"), conn)


@pytest.fixture
def staged(tmp_path):
    """The test project in two waves, run up to golden records."""
    root = make_project(tmp_path / "p", phases=WAVES)
    assert invoke("run", "-p", root, "--no-load").exit_code == 0
    return root


def golden_ids(root, where: str) -> list[str]:
    frame = read_table(Project.load(root).workspace(), golden)
    return sorted(frame.query(where, engine="python")["golden_id"])


def test_plan_says_what_each_wave_would_do_and_writes_nothing(staged):
    result = invoke("plan", "-p", staged, "--json")
    assert result.exit_code == 0, result.output
    plans = {p["phase"]: p for p in json.loads(result.stdout)}
    assert plans["wave1-erp"]["created"] == {"contacts": 3, "orders": 4}
    assert plans["wave2-rest"]["created"] == {"contacts": 2}
    assert sa.inspect(crm(staged)).get_table_names() == []  # not even the schema is created
    assert read_table(Project.load(staged).workspace(), load_ledger).empty


def test_wave1_loads_only_its_business_unit_and_its_orders(staged):
    assert invoke("load", "-p", staged, "--phase", "wave1-erp").exit_code == 0
    contacts = rows(staged, "contacts")
    assert sorted(contacts["first_name"]) == ["Ann", "Fay", "Robert"]  # the ERP's British customers
    orders = rows(staged, "orders")
    assert len(orders) == 4 and set(orders["contact_id"]) <= set(contacts["id"])
    report = json.loads(invoke("reconcile", "-p", staged, "--json").stdout)
    assert report["phases"]["wave1-erp"]["holds"] and report["phases"]["wave2-rest"]["pending"] == 2
    assert report["phases"]["wave1-erp"]["sources"] == {  # the address book's Ann x2 and Bob merged into them
        "contacts": {"loaded": 0, "merged": 3, "pending": 0, "holds": True},
        "erp": {"loaded": 3, "merged": 0, "pending": 0, "holds": True}}
    assert report["phases"]["wave2-rest"]["sources"]["erp"] == {"loaded": 0, "merged": 0, "pending": 1, "holds": False}
    assert report["holds"] is False  # wave 2 is still to come


def test_a_committed_unchanged_wave_is_recognised_and_sends_nothing(staged):
    project = Project.load(staged)
    first = load_phases(project, ["wave1-erp", "wave2-rest"])
    assert first.reconciliation["holds"]
    again = load_phases(project, ["wave1-erp", "wave2-rest"])
    assert sum(r.total("created") + r.total("updated") for r in again.loads) == 0
    assert again.loads[0].unchanged == {"contacts": 3, "orders": 4}
    ledger = read_table(project.workspace(), load_ledger)
    assert set(ledger["status"]) == {"committed"} and ledger["run_id"].nunique() == 1


def test_rollback_of_wave1_deletes_what_it_created_and_restores_what_it_updated(staged):
    """The CRM already knew one of wave 1's customers; rollback puts that row back as it was."""
    known = golden_ids(staged, "first_name == 'Fay'")[0]
    reference_metadata().create_all(crm(staged))
    with crm(staged).begin() as conn:
        conn.execute(sa.text("INSERT INTO contacts (external_id, first_name, last_name, email) VALUES "
                             "(:k, 'Fay', 'Field-Old', 'old@field.net'), ('LEGACY-1', 'Kept', 'Apart', NULL)"),
                     {"k": known})
    before = rows(staged, "contacts")
    loaded = invoke("load", "-p", staged, "--phase", "wave1-erp")
    assert loaded.exit_code == 0, loaded.output
    after = rows(staged, "contacts").set_index("external_id")
    assert after.loc[known, "last_name"] == "Field" and len(after) == 4
    ws = Project.load(staged).workspace()
    assert read_table(ws, id_map).set_index("key").loc[known, "action"] == "updated"

    rolled = invoke("rollback", "-p", staged, "--phase", "wave1-erp", "--yes")
    assert rolled.exit_code == 0, rolled.output
    pd.testing.assert_frame_equal(rows(staged, "contacts"), before)
    assert rows(staged, "orders").empty
    assert read_table(ws, id_map).empty
    assert set(read_table(ws, load_ledger)["status"]) == {"rolled_back"}


def test_after_rollback_the_wave_loads_again_as_if_new(staged):
    project = Project.load(staged)
    load_phases(project, ["wave1-erp"])
    invoke("rollback", "-p", staged, "--phase", "wave1-erp", "--yes")
    again = load_phases(project, ["wave1-erp"])
    assert again.loads[0].created == {"contacts": 3, "orders": 4}


def test_a_golden_record_stays_in_the_wave_it_was_loaded_in(staged):
    load_phases(Project.load(staged), ["wave1-erp"])
    config = yaml.safe_load((staged / "migration.yaml").read_text())
    config["phases"] = [{"name": "wave1-erp", "where": "country == 'XX'"}, {"name": "wave2-rest"}]
    (staged / "migration.yaml").write_text(yaml.safe_dump(config))
    result = load_phases(Project.load(staged), ["wave2-rest"])
    assert result.loads[0].created == {"contacts": 2}
    phases = read_table(Project.load(staged).workspace(), id_map).groupby("phase").size().to_dict()
    assert phases == {"wave1-erp": 7, "wave2-rest": 2}


def test_a_wave_can_name_its_golden_records_or_their_sources(staged):
    chosen = golden_ids(staged, "first_name == 'Gus' or first_name == 'Zoë'")
    config = yaml.safe_load((staged / "migration.yaml").read_text())
    config["phases"] = [{"name": "vip", "where": f"golden_id in {chosen}"},
                        {"name": "address-book", "where": "sources.str.contains('contacts')"}, {"name": "rest"}]
    (staged / "migration.yaml").write_text(yaml.safe_dump(config))
    plans = {p["phase"]: p for p in json.loads(invoke("plan", "-p", staged, "--json").stdout)}
    assert plans["vip"]["created"] == {"contacts": 2}
    assert plans["address-book"]["created"] == {"contacts": 2, "orders": 3}  # Ann and Bob were merged with ERP rows
    assert plans["rest"]["created"] == {"contacts": 1, "orders": 1}


def test_a_predicate_on_an_unknown_field_stops_before_anything_is_written(staged):
    config = yaml.safe_load((staged / "migration.yaml").read_text())
    config["phases"][0]["where"] = "contry == 'GB'"
    (staged / "migration.yaml").write_text(yaml.safe_dump(config))
    result = invoke("load", "-p", staged, "--phase", "wave1-erp")
    assert result.exit_code == 2
    assert "unknown field 'contry'; did you mean 'country'?" in result.output
    assert sa.inspect(crm(staged)).get_table_names() == []


def test_reconciliation_reads_the_crm_back_and_catches_a_changed_value(tmp_path):
    root = make_project(tmp_path / "p")
    assert run(Project.load(root)).reconciliation["holds"]
    with crm(root).begin() as conn:
        key = conn.execute(sa.text("SELECT external_id FROM contacts ORDER BY external_id LIMIT 1")).scalar_one()
        conn.execute(sa.text("UPDATE contacts SET email = 'changed@crm.example' WHERE external_id = :k"), {"k": key})
        conn.execute(sa.text("DELETE FROM orders WHERE id = (SELECT MIN(id) FROM orders)"))
    result = invoke("reconcile", "-p", root, "--json")
    assert result.exit_code == 1
    back = json.loads(result.stdout)["read_back"]
    assert back["contacts"]["mismatched"] == 1 and back["contacts"]["examples"] == [key]
    assert back["orders"]["expected"] == 4 and back["orders"]["found"] == 3
    assert back["contacts"]["phases"]["all"] == {"expected": 5, "found": 5, "mismatched": 1}
