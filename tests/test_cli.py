"""The command line a new user and a nightly job see."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cli import main
from tests.projects import make_project


def invoke(*args):
    result = CliRunner().invoke(main, list(map(str, args)))
    assert "Traceback" not in result.output
    return result


def test_init_scaffolds_a_project_that_validates_once_data_is_there(tmp_path):
    result = invoke("init", tmp_path / "acme")
    assert result.exit_code == 0
    root = tmp_path / "acme"
    assert (root / "migration.yaml").read_text().startswith("# crm-migrate project file")
    assert (root / "data").is_dir() and (root / "mappings").is_dir()
    again = invoke("init", root)
    assert again.exit_code == 2 and "already exists" in again.output


def test_status_and_reconcile_speak_json_for_jobs(tmp_path):
    root = make_project(tmp_path)
    assert invoke("run", "-p", root).exit_code == 0
    status = json.loads(invoke("status", "-p", root, "--json").stdout)
    last = status["runs"][0]
    assert last["status"] == "ok"
    assert [s["stage"] for s in last["stages"]] == ["extract", "link", "match", "golden", "load:all", "reconcile"]
    assert all(s["status"] == "done" for s in last["stages"])
    assert Path(last["log_path"]).is_file()
    report = json.loads(invoke("reconcile", "-p", root, "--json").stdout)
    for row in [*report["sources"].values(), report["total"]]:
        assert {"in", "loaded", "merged", "quarantined", "holds"} <= set(row)
    assert report["total"]["holds"] is True


def test_reconcile_fails_with_exit_1_when_rows_are_unaccounted(tmp_path):
    root = make_project(tmp_path)
    assert invoke("run", "-p", root, "--no-load").exit_code == 0
    result = invoke("reconcile", "-p", root)
    assert result.exit_code == 1
    assert "does NOT hold" in result.output


def test_report_writes_html_markdown_and_json(tmp_path):
    root = make_project(tmp_path)
    invoke("run", "-p", root)
    for fmt in ("html", "md", "json"):
        out = tmp_path / f"report.{fmt}"
        assert invoke("report", "-p", root, "--format", fmt, "-o", out).exit_code == 0
        assert out.stat().st_size > 100
    assert "in = loaded + merged + quarantined" in (tmp_path / "report.md").read_text()


def test_secrets_never_reach_output_logs_or_reports(tmp_path, monkeypatch):
    root = make_project(tmp_path)
    cfg = root / "migration.yaml"
    cfg.write_text(cfg.read_text().replace("url: sqlite:///crm.db", "url: sqlite:///${CRM_DB_FILE}")
                   .replace("path: data/contacts.csv", "path: ${EXPORTS}/contacts.csv"))
    monkeypatch.setenv("CRM_DB_FILE", "crm-s3cr3t-name.db")
    monkeypatch.setenv("EXPORTS", str(root / "data"))
    result = invoke("-v", "run", "-p", root)
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("EXPORTS", str(root / "gone-s3cr3t-dir"))
    failed = invoke("run", "-p", root)
    assert failed.exit_code == 2 and "file not found: ***/contacts.csv" in failed.output
    written = "".join(p.read_text(errors="replace") for p in (root / ".crm-migrate").rglob("*")
                      if p.is_file() and p.suffix in (".log", ".json", ".md", ".html"))
    for text in (result.output, failed.output, written):
        assert "s3cr3t" not in text


def test_lock_refuses_a_concurrent_run(tmp_path):
    from migrate.lock import LockedError, project_lock

    with project_lock(tmp_path, "crm-migrate load"):
        try:
            with project_lock(tmp_path, "crm-migrate run"):
                raise AssertionError("a second holder must be refused")
        except LockedError as exc:
            assert "crm-migrate load" in str(exc)


def test_crm_migrate_runs_from_any_directory_without_a_traceback(tmp_path):
    exe = shutil.which("crm-migrate") or str(Path(sys.executable).parent / "crm-migrate")
    root = make_project(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([exe, "run", "-p", str(root)], cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "holds" in done.stdout
    bad = subprocess.run([exe, "run", "-p", str(tmp_path / "missing")], cwd=elsewhere, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "no migration project here" in bad.stderr


def test_demo_migrates_the_bundled_data_and_every_source_balances(tmp_path):
    exe = shutil.which("crm-migrate") or str(Path(sys.executable).parent / "crm-migrate")
    done = subprocess.run([exe, "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "in = loaded + merged + quarantined holds" in done.stdout
    root = tmp_path / "crm-migrate-demo"
    assert (root / ".crm-migrate" / "reports" / "reconciliation.html").is_file()
    report = json.loads((root / ".crm-migrate" / "reports" / "reconciliation.json").read_text())
    for name in ("contacts", "erp", "erp.orders"):
        row = report["sources"][name]
        assert row["holds"] and row["in"] > 0
    assert report["total"]["in"] == 2000
    assert report["total"]["merged"] > 100          # duplicates across and within sources were merged
    assert 40 <= report["total"]["quarantined"] <= 80  # ~3% bad rows
    again = subprocess.run([exe, "run", "-p", str(root)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    second = json.loads((root / ".crm-migrate" / "reports" / "reconciliation.json").read_text())
    assert second["read_back"] == report["read_back"]
    import sqlite3

    with sqlite3.connect(root / ".crm-migrate" / "workspace.db") as con:
        runs = con.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()
        touched = con.execute("SELECT COUNT(*) FROM load_results WHERE run_id = ?", runs[-1]).fetchone()[0]
    assert len(runs) == 2 and touched == 0  # the second run sent nothing to the CRM
