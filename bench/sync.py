"""Nightly sync cost: a sync after a small change, and after none, against a full run, same project, same run.

On the demo migration generated at ``--size`` rows (contacts export + ERP customers with
orders, SQLite workspace and CRM), it times:

* ``first``     — the first ``run`` (everything extracted, matched, loaded);
* ``rerun``     — a full ``run`` again with nothing changed;
* ``sync-0``    — ``sync`` with nothing changed (cursor read, export rows hashed, match skipped);
* ``sync-k``    — ``sync`` after ``--changed`` (default 0.1 %) of the ERP customers were edited
  at the source (a new e-mail, a later ``updated_at``), so matching, golden records and the
  loader's checksum pass run, on everything, with the saved model.

Each sync is checked: the reconciliation holds and the edited e-mails are in the CRM.

    python bench/sync.py --size 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from migrate import Project, run, sync  # noqa: E402
from migrate.demo import write_demo  # noqa: E402


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def edit_erp(root: Path, share: float, night: int) -> list[str]:
    """Edit ``share`` of the ERP customers the way the ERP would: new e-mail, later updated_at."""
    with sqlite3.connect(root / "data" / "erp.db") as conn:
        ids = [r[0] for r in conn.execute("SELECT customer_id FROM customers ORDER BY customer_id")]
        step = max(1, round(1 / share))
        picked = ids[::step]
        emails = [f"night{night}.{i}@changed.example" for i in picked]
        conn.executemany("UPDATE customers SET email = ?, updated_at = ? WHERE customer_id = ?",
                         [(e, f"2030-01-{night:02d}T00:00:00", i) for e, i in zip(emails, picked)])
    return emails


def crm_emails(root: Path) -> set[str]:
    with sqlite3.connect(root / "crm.db") as conn:
        return {r[0] for r in conn.execute("SELECT email FROM contacts")}


def one_repetition(size: int, share: float) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        write_demo(root, size=size)
        project = Project.load(root)
        times = {}
        times["first"], _ = timed(lambda: run(project))
        times["rerun"], _ = timed(lambda: run(project))
        times["sync-0"], quiet = timed(lambda: sync(project))
        assert quiet.reconciliation["holds"], "quiet sync: reconciliation does not hold"
        emails = edit_erp(root, share, night=1)
        times["sync-k"], busy = timed(lambda: sync(project))
        assert busy.reconciliation["holds"], "sync after changes: reconciliation does not hold"
        missing = set(emails) - crm_emails(root)
        assert not missing, f"{len(missing)} edited e-mails did not reach the CRM"
        times["edited"] = len(emails)
        return times
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=200_000, help="source rows of the demo migration")
    parser.add_argument("--changed", type=float, default=0.001, help="share of ERP customers edited before sync-k")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, size {args.size:,}, "
          f"changed {args.changed:.2%}, {args.repeat} repetitions")
    runs = []
    for i in range(args.repeat):
        runs.append(one_repetition(args.size, args.changed))
        print(f"  run {i + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in runs[-1].items()), flush=True)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"\nmedians (s): first {med['first']:.1f}, rerun {med['rerun']:.1f}, "
          f"sync nothing changed {med['sync-0']:.1f}, sync {int(med['edited']):,} ERP rows changed {med['sync-k']:.1f}")
    print(f"ratios to the first run: rerun {med['rerun'] / med['first']:.2f}, sync-0 {med['sync-0'] / med['first']:.2f}, "
          f"sync-k {med['sync-k'] / med['first']:.2f}")


if __name__ == "__main__":
    main()
