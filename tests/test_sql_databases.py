"""Back-office databases as sources, and the new CRM as a target, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
import yaml

from connectors import open_source
from connectors.target_sql import SqlTarget
from migrate import Project, run
from tests.databases import with_databases
from tests.projects import CUSTOMERS, ORDERS, make_project


def fill(url: str, rows: int = 0) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        CUSTOMERS.to_sql("customers", conn, index=False, if_exists="replace")
        ORDERS.to_sql("orders", conn, index=False, if_exists="replace")
        if rows:
            big = pd.DataFrame({"customer_id": range(1, rows + 1), "last_nm": [f"N{i}" for i in range(rows)]})
            big.to_sql("big", conn, index=False, if_exists="replace", chunksize=5_000)
    engine.dispose()


@with_databases("sqlite", "postgresql", "mariadb")
def test_erp_table_streams_in_chunks_with_primary_keys_as_references(db_url, tmp_path):
    fill(db_url, rows=2_500)
    source = open_source("erp", {"connector": "sql", "url": db_url, "table": "big", "id_column": "customer_id"},
                         tmp_path)
    sizes = [len(c.rows) for c in source.chunks(chunk_size=1_000)]
    assert sizes == [1_000, 1_000, 500]
    first = next(source.chunks(chunk_size=10)).rows
    assert first["_source_ref"].iloc[0] == "customer_id=1"


@with_databases("sqlite", "postgresql", "mariadb")
def test_related_orders_carry_their_parent_key(db_url, tmp_path):
    fill(db_url)
    source = open_source("erp", {"connector": "sql", "url": db_url, "table": "customers", "id_column": "customer_id",
                                 "related": {"orders": {"table": "orders", "id_column": "order_id",
                                                        "parent_key": "customer_id"}}}, tmp_path)
    rows = pd.concat(c.rows for c in source.related_chunks("orders"))
    assert sorted(rows["_parent_id"].astype(int)) == sorted(ORDERS["customer_id"])


@with_databases("sqlite", "postgresql", "mariadb")
def test_query_source_reads_what_the_query_selects(db_url, tmp_path):
    fill(db_url)
    source = open_source("erp", {"connector": "sql", "url": db_url,
                                 "query": "SELECT customer_id, last_nm FROM customers WHERE country = 'GB'"}, tmp_path)
    rows = pd.concat(c.rows for c in source.chunks())
    assert sorted(rows["last_nm"]) == ["Field", "Lee", "Stone"]


@with_databases("sqlite", "postgresql", "mariadb")
def test_migration_from_erp_into_crm_on_the_same_server_kind(db_url, tmp_path):
    """ERP source and CRM target on one database kind; a rerun changes nothing."""
    root = make_project(tmp_path / "p", erp_url=db_url, target_url=db_url)
    project = Project.load(root)
    first = run(project)
    assert first.reconciliation["holds"], first.reconciliation
    target = SqlTarget(db_url, root)
    contacts = target.read("contacts")
    orders = target.read("orders")
    assert len(contacts) == 5 and contacts["external_id"].is_unique
    assert len(orders) == 4 and set(orders["contact_id"]) <= set(contacts["id"])
    second = run(project)
    assert sum(sum(r.created.values()) + sum(r.updated.values()) for r in second.loads) == 0
    pd.testing.assert_frame_equal(target.read("contacts"), contacts)


@with_databases("sqlite", "postgresql")
def test_workspace_on_a_server_records_its_schema_version(db_url, tmp_path):
    from migrate.workspace import SCHEMA_VERSION, Workspace

    ws = Workspace(db_url, tmp_path)
    assert ws.schema_version() == SCHEMA_VERSION
    with ws.begin() as conn:
        conn.execute(sa.text("UPDATE meta SET value = '999' WHERE key = 'schema_version'"))
    from migrate.errors import WorkspaceError

    try:
        Workspace(db_url, tmp_path)
    except WorkspaceError as exc:
        assert "newer crm-migrate" in str(exc)
    else:
        raise AssertionError("a workspace from a newer release must be refused")


@with_databases("postgresql")
def test_a_team_workspace_on_postgresql_migrates_what_a_sqlite_one_does(db_url, tmp_path):
    """The loader reads golden records through the workspace database's own JSON functions."""
    loaded = {}
    for kind, workspace in (("sqlite", "sqlite:///.crm-migrate/workspace.db"), ("postgresql", db_url)):
        root = make_project(tmp_path / kind)
        config = yaml.safe_load((root / "migration.yaml").read_text())
        config["workspace"] = workspace
        (root / "migration.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        result = run(Project.load(root))
        assert result.reconciliation["holds"], result.reconciliation
        loaded[kind] = SqlTarget("sqlite:///crm.db", root).read("contacts").drop(columns=["id", "updated_at"])
    assert len(loaded["postgresql"]) == 5
    pd.testing.assert_frame_equal(loaded["postgresql"], loaded["sqlite"])
