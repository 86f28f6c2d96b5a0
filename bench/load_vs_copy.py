"""Loading speed: the phased loader against raw COPY / LOAD DATA and dlt's merge load, same rows, same run.

For PostgreSQL and MariaDB, with N synthetic golden contacts in a SQLite workspace:

* ``raw``        — COPY (PostgreSQL) / LOAD DATA LOCAL INFILE (MariaDB) of the exact rows the
  loader sends, from a CSV prepared before the clock starts, into the empty reference table;
* ``first``      — ``load_phase`` into an empty CRM: golden records read from the workspace,
  rows built, checksummed, ledger written before and after every batch, ids mapped;
* ``exists``     — ``load_phase`` with an empty ledger into a CRM that already holds every
  row (each batch is compared with the CRM's rows, found identical, and nothing is written
  to the CRM);
* ``unchanged``  — ``load_phase`` again after a committed load: the ledger knows it is done;
* ``dlt``        — ``dlt`` ``write_disposition="merge"`` of the same rows into PostgreSQL (when dlt
  is installed: ``pip install -e '.[bench]'``; dlt has no MariaDB destination of its own).

Each is repeated (``--repeat``, default 3) and the median reported, with ratios to ``raw``.

    python bench/load_vs_copy.py --rows 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.crm_schema import reference_metadata  # noqa: E402
from migrate import Project  # noqa: E402
from migrate.loader import golden_frame, golden_rows, load_phase  # noqa: E402
from migrate.workspace import id_map, load_before, load_ledger, load_phases, load_results, stages  # noqa: E402

SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/{db}?charset=utf8mb4&local_infile=1",
}
ADMIN = {"postgresql": "postgres", "mariadb": "mysql"}
LEDGER_TABLES = (id_map, load_before, load_ledger, load_phases, load_results)


def synthetic_golden(n: int, seed: int = 3) -> pd.DataFrame:
    """N golden people with the attributes a real migration carries (names, e-mails, phones, address)."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    first = rng.choice(["Ann", "Bob", "Zoë", "Seán", "Priya", "Jürgen", "Li", "Olivia", "Noah"], n)
    last = np.char.add("Name", i.astype(str))
    emails = [json.dumps([f"person{k}@example.org"] + ([f"p{k}@work.example"] if k % 3 == 0 else []))
              for k in range(n)]
    phones = [json.dumps([f"+4420{7946000 + k % 999_999:07d}"]) for k in range(n)]
    return pd.DataFrame({
        "golden_id": np.char.add("G-", np.char.zfill(i.astype(str), 12)), "status": "active", "entity": "person",
        "first_name": first, "last_name": last, "emails": emails, "phones": phones,
        "street": np.char.add(i.astype(str), " High Street"), "city": rng.choice(["London", "Leeds", "Bath"], n),
        "postcode": rng.choice(["SW1A 1AA", "LS1 4AP", "BA1 1LZ"], n), "country": rng.choice(["GB", "IE"], n),
        "birth_date": "1980-03-02", "email_opt_in": rng.choice([True, False], n),
        "do_not_contact": False, "member_count": 1, "row_hash": "0", "created_run": "bench",
    })


def make_project(root: Path, target_url: str, n: int) -> Project:
    """A project whose workspace holds N golden contacts, as if `run --no-load` had made them."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "contacts.csv").write_text("Id,Last\n1,Lee\n", encoding="utf-8")
    config = {"sources": {"contacts": {"connector": "csv", "path": "data/contacts.csv",
                                       "mapping": {"id": "Id", "fields": {"last_name": "Last"}}}},
              "target": {"url": target_url, "batch_size": 50_000}, "phases": [{"name": "all"}]}
    (root / "mapping.yaml").write_text(yaml.safe_dump(config["sources"]["contacts"].pop("mapping")))
    config["sources"]["contacts"]["mapping"] = "mapping.yaml"
    (root / "migration.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    project = Project.load(root)
    ws = project.workspace()
    frame = synthetic_golden(n)
    cols = list(frame.columns)
    insert = f"INSERT INTO golden ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    with ws.begin() as conn:
        conn.exec_driver_sql(insert, list(frame.astype(object).itertuples(index=False, name=None)))
        conn.execute(sa.insert(stages).values(run_id="bench", stage="golden", status="done"))
    return project


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def fresh_crm(kind: str, name: str) -> str:
    admin = sa.create_engine(SERVERS[kind].format(db=ADMIN[kind]), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return SERVERS[kind].format(db=name)


def reset_tables(url: str) -> None:
    engine = sa.create_engine(url)
    md = reference_metadata()
    md.drop_all(engine)
    md.create_all(engine)
    engine.dispose()


def forget_ledger(project: Project) -> None:
    with project.workspace().begin() as conn:
        for table in LEDGER_TABLES:
            conn.execute(sa.delete(table))


def raw_bulk(kind: str, url: str, csv_path: Path, columns: list[str]) -> float:
    """COPY / LOAD DATA of a ready CSV into the empty reference table: the database's own speed."""
    reset_tables(url)
    engine = sa.create_engine(url, connect_args={"local_infile": True} if kind == "mariadb" else {})
    cols = ", ".join(columns)
    start = time.perf_counter()
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        if kind == "postgresql":
            with raw.cursor().copy(f"COPY contacts ({cols}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy, \
                    csv_path.open("rb") as fh:
                while block := fh.read(1 << 20):
                    copy.write(block)
        else:
            raw.cursor().execute(
                f"LOAD DATA LOCAL INFILE %s INTO TABLE contacts CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' "
                f"OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' ({cols})", (str(csv_path),))
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def dlt_merge(kind: str, url: str, rows: pd.DataFrame, work: Path) -> float | None:
    """dlt's merge load of the same rows into a fresh dataset (None when dlt is not installed)."""
    try:
        import dlt
    except ImportError:
        return None
    if kind != "postgresql":  # dlt has no MariaDB destination; its generic SQLAlchemy one is ~100x slower
        return None
    # dlt insists on a password; the local server trusts loopback connections and ignores it.
    destination = dlt.destinations.postgres(credentials=url.replace("+psycopg", "").replace(
        "postgres@", "postgres:unused@"))
    shutil.rmtree(work, ignore_errors=True)
    pipeline = dlt.pipeline(pipeline_name=f"bench_{kind}", destination=destination, dataset_name="dlt_bench",
                            pipelines_dir=str(work))
    table = rows.reset_index(drop=True)
    return timed(lambda: pipeline.run(table, table_name="contacts", write_disposition="merge",
                                      primary_key="external_id"))


def bench(kind: str, n: int, repeat: int, work: Path) -> dict[str, list[float]]:
    url = fresh_crm(kind, "crm_load_bench")
    project = make_project(work / kind, url, n)
    ws = project.workspace()
    rows = golden_rows(golden_frame(ws))["contacts"]
    csv_path = work / f"{kind}.csv"
    export = rows.copy()
    if kind == "mariadb":  # LOAD DATA reads booleans as integers
        for col in ("email_opt_in", "do_not_contact"):
            export[col] = export[col].astype("Int64")
    export.to_csv(csv_path, index=False, header=False, quoting=csv.QUOTE_MINIMAL,
                  na_rep="\\N" if kind == "postgresql" else "NULL", lineterminator="\n")
    times: dict[str, list[float]] = {k: [] for k in ("raw", "first", "exists", "unchanged", "dlt")}
    for rep in range(repeat):
        times["raw"].append(raw_bulk(kind, url, csv_path, list(rows.columns)))
        reset_tables(url)
        forget_ledger(project)
        times["first"].append(timed(lambda: load_phase(project, ws, f"bench-{rep}-1", "all")))
        times["unchanged"].append(timed(lambda: load_phase(project, ws, f"bench-{rep}-2", "all")))
        forget_ledger(project)
        times["exists"].append(timed(lambda: load_phase(project, ws, f"bench-{rep}-3", "all")))
        took = dlt_merge(kind, url, rows, work / "dlt")
        if took is not None:
            times["dlt"].append(took)
        print(f"{kind} rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items() if v), flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--databases", nargs="+", default=["postgresql", "mariadb"])
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}; rows: {args.rows:,}; repeats: {args.repeat}")
    work = Path(tempfile.mkdtemp(prefix="crm-load-bench-"))
    try:
        for kind in args.databases:
            times = bench(kind, args.rows, args.repeat, work)
            raw = statistics.median(times["raw"])
            print(f"\n{kind}: median seconds (ratio to raw bulk)")
            for name, values in times.items():
                if values:
                    med = statistics.median(values)
                    print(f"  {name:<10} {med:8.2f}s  {med / raw:5.2f}x  ({', '.join(f'{v:.2f}' for v in values)})")
            first = statistics.median(times["first"])
            print(f"  unchanged rerun = {statistics.median(times['unchanged']) / first:.1%} of a first load")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
