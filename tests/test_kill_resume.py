"""A load killed with SIGKILL at any moment, then rerun, leaves exactly what a clean load leaves.

The project has a few thousand golden customers and their orders, loaded in two waves with
small batches. A real ``crm-migrate load`` process is killed with ``kill -9`` over and over:
at named points between the ledger, the target commit and the workspace commit
(``CRM_MIGRATE_KILL_AT``, which makes the process SIGKILL itself), and after random delays.
Then the same command runs to the end, and the CRM is compared row for row with a clean load
into another database.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from migrate import Project, load_phases, run
from migrate.lock import project_lock
from tests.databases import fresh_database, with_databases

PEOPLE = 1_500
PHASES = [{"name": "wave1", "where": "country == 'GB'"}, {"name": "rest"}]
LOAD = ["load", "--phase", "wave1", "--phase", "rest"]
#: (point, pass) pairs: each run dies the n-th time it passes the point, so consecutive runs
#: die in different windows and at different depths of the load.
KILLS = [("before-record", 1), ("recorded", 1), ("target-committed", 1), ("ledger-committed", 1),
         ("target-committed", 2), ("recorded", 2), ("before-record", 2), ("target-committed", 3),
         ("ledger-committed", 2), ("recorded", 3), ("target-committed", 1)]
EXE = shutil.which("crm-migrate") or str(Path(sys.executable).parent / "crm-migrate")


def big_project(root: Path, target_url: str, seed: int = 11) -> Path:
    """Contacts CSV and an ERP with customers (half of them also in the CSV) and their orders."""
    rng = np.random.default_rng(seed)
    (root / "data").mkdir(parents=True)
    n = PEOPLE
    first = rng.choice(["Ann", "Bob", "Zoë", "Sean", "Priya", "Jürgen", "Li"], n)
    last = np.array([f"Name{i}" for i in range(n)])
    country = rng.choice(["GB", "US", "DE"], n, p=[0.5, 0.3, 0.2])
    emails = np.array([f"person{i}@example.org" for i in range(n)])
    pd.DataFrame({"Id": [f"c{i}" for i in range(n)], "First": first, "Last": last, "Email": emails,
                  "Country": country}).to_csv(root / "data" / "contacts.csv", index=False)
    erp = np.arange(n // 2, n + n // 4)
    customers = pd.DataFrame({"customer_id": erp, "first_nm": [f"F{i}" for i in erp], "last_nm": [f"Name{i}" for i in erp],
                              "email": [f"person{i}@example.org" for i in erp],
                              "country": rng.choice(["GB", "US"], len(erp))})
    orders = pd.DataFrame({"order_id": np.arange(2 * len(erp)), "customer_id": np.repeat(erp, 2),
                           "order_date": "2024-01-05", "amount": rng.integers(100, 99_999, 2 * len(erp)) / 100,
                           "currency": "GBP", "status": rng.choice(["paid", "open"], 2 * len(erp))})
    engine = sa.create_engine(f"sqlite:///{root / 'data' / 'erp.db'}")
    with engine.begin() as conn:
        customers.to_sql("customers", conn, index=False)
        orders.to_sql("orders", conn, index=False)
    engine.dispose()
    config = {
        "sources": {
            "contacts": {"connector": "csv", "path": "data/contacts.csv", "mapping": "mappings/contacts.yaml"},
            "erp": {"connector": "sql", "url": "sqlite:///data/erp.db", "table": "customers",
                    "id_column": "customer_id", "mapping": "mappings/erp.yaml",
                    "related": {"orders": {"table": "orders", "id_column": "order_id", "parent_key": "customer_id",
                                           "fields": {"occurred_on": "order_date"}}}},
        },
        "target": {"url": target_url, "batch_size": 150},
        "phases": PHASES,
    }
    (root / "mappings").mkdir()
    (root / "mappings" / "contacts.yaml").write_text(yaml.safe_dump({"id": "Id", "fields": {
        "first_name": "First", "last_name": "Last", "emails": ["Email"], "country": "Country"}}))
    (root / "mappings" / "erp.yaml").write_text(yaml.safe_dump({"id": "customer_id", "fields": {
        "first_name": "first_nm", "last_name": "last_nm", "emails": ["email"], "country": "country"}}))
    (root / "migration.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def with_target(src: Path, dst: Path, target_url: str) -> Path:
    """A copy of a staged project (workspace included) that loads into ``target_url``."""
    shutil.copytree(src, dst)
    config = yaml.safe_load((dst / "migration.yaml").read_text())
    config["target"]["url"] = target_url
    (dst / "migration.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dst


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    """The project after `run --no-load`: golden records and orders staged, nothing loaded."""
    root = big_project(tmp_path_factory.mktemp("staged") / "p", "sqlite:///crm.db")
    run(Project.load(root), load=False)
    return root


def crm_load(root: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CRM_MIGRATE_KILL_AT"}
    if kill_at:
        env["CRM_MIGRATE_KILL_AT"] = kill_at
    return subprocess.run([EXE, *LOAD, "-p", str(root)], env=env, capture_output=True, text=True, timeout=120)


def crm_tables(url: str) -> dict[str, pd.DataFrame]:
    """Contacts, accounts and orders with surrogate ids dropped and foreign keys as external ids."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        tables = {t: pd.read_sql(sa.text(f"SELECT * FROM {t} ORDER BY external_id"), conn)
                  for t in ("accounts", "contacts", "orders")}
    engine.dispose()
    ext = {t: tables[t].set_index("id")["external_id"] for t in ("accounts", "contacts")}
    orders = tables["orders"]
    orders["contact_id"] = orders["contact_id"].map(ext["contacts"])
    orders["account_id"] = orders["account_id"].map(ext["accounts"])
    return {t: f.drop(columns=["id"]).reset_index(drop=True) for t, f in tables.items()}


@with_databases("postgresql", "mariadb")
def test_rerun_after_kill_loads_nothing_twice_and_misses_nothing(db_url, tmp_path, request, staged):
    root = with_target(staged, tmp_path / "killed", db_url)
    with fresh_database(request.node.callspec.params["db_url"], tmp_path) as clean_url:
        clean = with_target(staged, tmp_path / "clean", clean_url)
        reference = load_phases(Project.load(clean), [p["name"] for p in PHASES])
        assert reference.reconciliation["holds"], reference.reconciliation
        expected = crm_tables(clean_url)

    for point, nth in KILLS:
        done = crm_load(root, f"{point}:{nth}")
        assert done.returncode == -signal.SIGKILL, (point, nth, done.returncode, done.stderr[-2000:])
    # And at a moment nobody chose: mid-COPY, mid-commit, mid-anything.
    proc = subprocess.Popen([EXE, *LOAD, "-p", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.Random(5).uniform(2.5, 4.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)

    final = crm_load(root)
    assert final.returncode == 0, final.stderr[-3000:]
    got = crm_tables(db_url)
    for table, frame in expected.items():
        assert got[table]["external_id"].is_unique
        pd.testing.assert_frame_equal(got[table], frame, check_dtype=False, obj=table)
    assert len(got["contacts"]) > PEOPLE // 2 and len(got["orders"]) > PEOPLE


def test_a_second_load_of_the_same_project_is_refused_with_a_lock_message(tmp_path):
    root = big_project(tmp_path / "p", "sqlite:///crm.db")
    project = Project.load(root)
    with project_lock(project.state_dir, "crm-migrate load wave1"):
        done = crm_load(root)
    assert done.returncode == 1
    assert f"the project is busy: crm-migrate load wave1 (pid {os.getpid()}) is running" in done.stderr
    assert not (root / "crm.db").exists()


def test_rollback_after_a_kill_between_target_and_ledger_deletes_what_the_lost_batch_created(tmp_path, staged):
    root = with_target(staged, tmp_path / "p", "sqlite:///crm.db")
    assert crm_load(root, "target-committed:3").returncode == -signal.SIGKILL
    url = f"sqlite:///{root / 'crm.db'}"
    assert len(crm_tables(url)["contacts"]) == 3 * 150  # the third batch is in the CRM, not in the id_map
    rolled = subprocess.run([EXE, "rollback", "--yes", "--phase", "wave1", "-p", str(root)], capture_output=True,
                            text=True, timeout=120)
    assert rolled.returncode == 0, rolled.stderr
    assert crm_tables(url)["contacts"].empty
