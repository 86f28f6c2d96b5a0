"""Extract speed and memory: our connectors and map stage against chunked pandas, same data, same run.

Generates (seeded, from ``bench/synthetic.py``) a contacts CSV of ``--size-gb`` and a PostgreSQL
table of ``--rows`` rows with the same columns, then reads each in four sides, every one in a
fresh child process so that its peak RSS is its own:

* ``csv-ours``   — the ``csv`` connector's chunks through ``mappings.apply_mapping``: what
  ``crm-migrate run`` does to a source before standardisation (no workspace writes);
* ``csv-pandas`` — ``pandas.read_csv(chunksize=…, dtype=str, keep_default_na=False)``, told to
  skip bad lines and replace bad bytes so that it gets through the file at all;
* ``sql-ours``   — the ``sql`` connector's chunks (server-side cursor) through ``apply_mapping``;
* ``sql-pandas`` — ``pandas.read_sql(chunksize=…)`` on a server-side cursor.

The CSV holds what real exports hold: quoted values, values with a line break, and a few bad
lines (a line with an extra field, a line in Windows-1252 among UTF-8 ones) every 2,500,000
rows. The file is cached in ``--workdir`` and the table in the database, so reruns read the
same data without generating it again.

    python bench/extract.py --size-gb 5 --rows 10000000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synthetic import generate, to_contacts_csv  # noqa: E402
from connectors import open_source  # noqa: E402
from mappings import MappingSpec, apply_mapping  # noqa: E402

#: The mapping both sources are read through: the unmapped columns end up in ``extra``.
MAPPING = {"id": "Customer ID", "fields": {
    "first_name": "First Name", "last_name": "Last Name", "emails": ["E-mail Address"], "phones": ["Mobile Phone"],
    "birth_date": "Birthday", "street": "Street", "city": "City", "postcode": "Postal Code", "country": "Country"}}
SIDES = ("csv-pandas", "csv-ours", "sql-pandas", "sql-ours")
BAD_EVERY = 2_500_000
_BLOCK_ROWS = 500_000
_NOTES = np.array(["", 'Prefers "Mr", call after 6pm', "Moved house\nnew address to follow"], dtype=object)


def contact_blocks(seed: int) -> Iterator[pd.DataFrame]:
    """Endless blocks of contacts with unique ids, drawn from a pool of synthetic people."""
    rng = np.random.default_rng(seed)
    pool = to_contacts_csv(generate(200_000, seed=seed), seed=seed).fillna("")
    start = 1
    while True:
        frame = pool.iloc[rng.integers(0, len(pool), _BLOCK_ROWS)].reset_index(drop=True)
        frame.insert(0, "Customer ID", np.arange(start, start + _BLOCK_ROWS))
        frame["Segment"] = rng.choice(["retail", "trade", "vip", "lapsed"], _BLOCK_ROWS)
        since = np.datetime64("2005-01-01") + rng.integers(0, 7000, _BLOCK_ROWS).astype("timedelta64[D]")
        frame["Customer Since"] = since.astype(str)
        frame["Notes"] = _NOTES[np.searchsorted([0.997, 0.9998], rng.random(_BLOCK_ROWS))]
        yield frame
        start += _BLOCK_ROWS


def make_csv(path: Path, size_gb: float, seed: int) -> dict[str, int]:
    """Write the contacts CSV (unless cached); returns its data lines and bad lines."""
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        return json.loads(meta.read_text())
    partial = path.with_suffix(".partial")
    rows = bad = 0
    with partial.open("wb") as fh:
        for frame in contact_blocks(seed):
            for part in (frame.iloc[: _BLOCK_ROWS // 2], frame.iloc[_BLOCK_ROWS // 2:]):
                fh.write(part.to_csv(index=False, header=rows == 0, lineterminator="\n").encode("utf-8"))
                rows += len(part)
                if rows % BAD_EVERY == 0:
                    fh.write(b"0,Too,many,fields,,,,,,,,,,,,\n")
                    fh.write(f"{rows}x,J\xe9r\xf4me,Bad,jb@example.org,,,,,,UK,,,\n".encode("cp1252"))
                    bad += 2
            if fh.tell() >= size_gb * 1e9:
                break
    partial.rename(path)
    figures = {"lines": rows + bad, "bad_lines": bad, "bytes": path.stat().st_size}
    meta.write_text(json.dumps(figures))
    return figures


def make_table(url: str, rows: int, seed: int) -> str:
    """Create and fill the contacts table (unless it is there already); returns its name."""
    name = f"bench_contacts_{rows}_s{seed}"
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        if sa.inspect(conn).has_table(name):
            return name
    columns = next(contact_blocks(seed)).columns
    quoted = ", ".join(f'"{c}" {"bigint" if c == "Customer ID" else "text"}' for c in columns)
    with engine.begin() as conn:  # one transaction: a run killed half-way leaves no table behind
        conn.exec_driver_sql(f'CREATE TABLE "{name}_new" ({quoted})')
        cursor = conn.connection.driver_connection.cursor()
        done = 0
        with cursor.copy(f'COPY "{name}_new" FROM STDIN (FORMAT csv)') as copy:
            for frame in contact_blocks(seed):
                frame = frame.iloc[: rows - done]
                copy.write(frame.to_csv(index=False, header=False, lineterminator="\n"))
                done += len(frame)
                if done >= rows:
                    break
        conn.exec_driver_sql(f'ALTER TABLE "{name}_new" RENAME TO "{name}"')
    return name


def read_ours_csv(params: dict) -> tuple[int, int]:
    source = open_source("contacts", {"connector": "csv", "path": params["path"]})
    return _map_all(source.chunks(params["chunk_size"]), "contacts")


def read_pandas_csv(params: dict) -> tuple[int, int]:
    rows = 0
    for frame in pd.read_csv(params["path"], chunksize=params["chunk_size"], dtype=str, keep_default_na=False,
                             on_bad_lines="skip", encoding_errors="replace"):
        rows += len(frame)
    return rows, 0


def read_ours_sql(params: dict) -> tuple[int, int]:
    source = open_source("erp", {"connector": "sql", "url": params["url"], "table": params["table"],
                                 "id_column": "Customer ID"})
    return _map_all(source.chunks(params["chunk_size"]), "erp")


def read_pandas_sql(params: dict) -> tuple[int, int]:
    rows = 0
    with sa.create_engine(params["url"]).connect() as conn:
        streamed = conn.execution_options(stream_results=True)
        for frame in pd.read_sql(sa.text(f'SELECT * FROM "{params["table"]}"'), streamed,
                                 chunksize=params["chunk_size"]):
            rows += len(frame)
    return rows, 0


def _map_all(chunks: Iterator, source: str) -> tuple[int, int]:
    spec = MappingSpec.model_validate(MAPPING)
    rows = rejects = 0
    for chunk in chunks:
        rows += len(apply_mapping(chunk.rows, spec, source))
        rejects += len(chunk.rejects)
    return rows, rejects


READERS = {"csv-ours": read_ours_csv, "csv-pandas": read_pandas_csv,
           "sql-ours": read_ours_sql, "sql-pandas": read_pandas_sql}


def worker(side: str, params: dict) -> dict:
    """Child process: read one side; its rows, rejects, wall and CPU seconds and peak RSS."""
    rss_start = _rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    rows, rejects = READERS[side](params)
    seconds = time.perf_counter() - start
    return {"side": side, "rows": rows, "rejects": rejects, "seconds": seconds,
            "cpu_seconds": time.process_time() - cpu, "rows_per_s": (rows + rejects) / seconds,
            "rss_start_mib": rss_start, "peak_rss_mib": _rss_mib("VmHWM"), "load_average": os.getloadavg()[0]}


def _rss_mib(field: str = "VmRSS") -> float:
    """A memory figure of this process in MiB; ``VmHWM`` is the peak RSS since exec (getrusage's
    ``ru_maxrss`` would carry the parent's peak across fork and exec)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def machine() -> str:
    """A one-line description of this machine."""
    with open("/proc/meminfo") as fh:
        mem = int(fh.readline().split()[1]) / 2**20
    return (f"{os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}, pandas {pd.__version__}, "
            f"pyarrow {__import__('pyarrow').__version__}, {platform.system()} {platform.release()}")


def summary(runs: list[dict]) -> str:
    """Medians per side, every run's seconds, and the ratios ours ÷ pandas, as Markdown."""
    lines = ["| side | rows read | rejects | median s (runs) | rows/s | CPU s | peak RSS MiB (runs) |",
             "|---|---:|---:|---|---:|---:|---|"]
    medians = {}
    for side in SIDES:
        mine = [r for r in runs if r["side"] == side]
        if not mine:
            continue
        med = {k: statistics.median(r[k] for r in mine) for k in ("seconds", "cpu_seconds", "peak_rss_mib")}
        medians[side] = med
        each = ", ".join(f"{r['seconds']:.1f}" for r in mine)
        rss = ", ".join(f"{r['peak_rss_mib']:.0f}" for r in mine)
        lines.append(f"| {side} | {mine[0]['rows']:,} | {mine[0]['rejects']:,} | {med['seconds']:.1f} ({each}) | "
                     f"{(mine[0]['rows'] + mine[0]['rejects']) / med['seconds']:,.0f} | {med['cpu_seconds']:.1f} | "
                     f"{med['peak_rss_mib']:.0f} ({rss}) |")
    for kind in ("csv", "sql"):
        if f"{kind}-ours" in medians and f"{kind}-pandas" in medians:
            ours, theirs = medians[f"{kind}-ours"], medians[f"{kind}-pandas"]
            lines.append(f"\n{kind}: ours ÷ pandas wall time {ours['seconds'] / theirs['seconds']:.2f}, "
                         f"CPU time {ours['cpu_seconds'] / theirs['cpu_seconds']:.2f}, "
                         f"peak RSS {ours['peak_rss_mib'] / theirs['peak_rss_mib']:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Generate or reuse the data, run every side --repeat times, print each run and the medians."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=5.0, help="size of the CSV in GB (10^9 bytes)")
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the PostgreSQL table")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side; the table shows medians")
    parser.add_argument("--only", nargs="+", choices=["csv", "sql", "ours", "pandas", *SIDES],
                        help="run only these sides (csv, sql, ours, pandas or a side name)")
    parser.add_argument("--json", type=Path, help="also write every run's figures to this file")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
                        / "crm-migrate-bench", help="where the generated CSV is cached")
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--worker", nargs=2, metavar=("SIDE", "PARAMS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], json.loads(args.worker[1]))))
        return
    sides = [s for s in SIDES if not args.only or any(o in (s, *s.split("-")) for o in args.only)]
    print(f"machine: {machine()}", flush=True)
    params: dict = {"chunk_size": args.chunk_size}
    if any(s.startswith("csv") for s in sides):
        args.workdir.mkdir(parents=True, exist_ok=True)
        path = args.workdir / f"contacts-{args.size_gb:g}gb-s{args.seed}.csv"
        figures = make_csv(path, args.size_gb, args.seed)
        params["path"] = str(path)
        print(f"csv: {path} {figures['bytes'] / 1e9:.2f} GB, {figures['lines']:,} data lines "
              f"({figures['bad_lines']} bad)", flush=True)
    if any(s.startswith("sql") for s in sides):
        params.update(url=args.url, table=make_table(args.url, args.rows, args.seed))
        print(f"sql: table {params['table']}", flush=True)
    runs = []
    for i in range(args.repeat):
        for side in sides:
            out = subprocess.run([sys.executable, __file__, "--worker", side, json.dumps(params)],
                                 check=True, capture_output=True, text=True).stdout
            run = {"repeat": i + 1, **json.loads(out.strip().splitlines()[-1])}
            runs.append(run)
            print(f"{side:<10} run {i + 1}: {run['rows'] + run['rejects']:,} rows in {run['seconds']:.1f} s "
                  f"({run['rows_per_s']:,.0f} rows/s, CPU {run['cpu_seconds']:.1f} s), {run['rejects']} rejects, "
                  f"peak RSS {run['peak_rss_mib']:.0f} MiB (at start {run['rss_start_mib']:.0f}), "
                  f"load {run['load_average']:.1f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    print(summary(runs))


if __name__ == "__main__":
    main()
