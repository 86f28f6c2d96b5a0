"""The reconciliation report an IT lead forwards: one HTML file with charts that opens anywhere, plus the JSON."""

from __future__ import annotations

import doctest
import json
import re
import sqlite3

import pytest
import sqlalchemy as sa

from migrate import charts
from migrate.pipeline import run
from migrate.project import Project
from migrate.reconcile import reconcile
from migrate.report import chart_data, to_html
from migrate.workspace import pairs
from tests.projects import make_project


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project.load(make_project(tmp_path_factory.mktemp("report") / "project"))
    run(project)
    return project


def test_the_html_report_is_one_self_contained_file_with_every_chart(migrated):
    page = (migrated.state_dir / "reports" / "reconciliation.html").read_text(encoding="utf-8")
    # Nothing to fetch: no scripts, stylesheets, images or fonts from anywhere.
    assert not re.search(r"<script|<link|<img|<iframe|url\(|@import", page)
    assert set(re.findall(r"https?://[^\s'\"]+", page)) == {"http://www.w3.org/2000/svg"}  # a namespace, not a fetch
    assert "<style>" in page and "svg.chart" in page
    for chart in ("per-source funnel", "quarantined rows per reason", "golden records by size",
                  "load results per phase"):
        assert f"aria-label='{chart}'" in page, chart
    assert "No scored pairs: matching was deterministic." in page
    assert "invalid_email" in page and "Read-back from the target" in page


def test_the_charts_count_what_the_workspace_holds(migrated):
    report = json.loads((migrated.state_dir / "reports" / "reconciliation.json").read_text())
    data = report["charts"]
    with sqlite3.connect(migrated.state_dir / "workspace.db") as con:
        golden = con.execute("SELECT COUNT(DISTINCT golden_id) FROM xref").fetchone()[0]
        biggest = con.execute("SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM xref GROUP BY golden_id)").fetchone()[0]
        loaded = dict(con.execute("SELECT action, COUNT(*) FROM id_map GROUP BY action").fetchall())
    assert sum(n for _, n in data["cluster_sizes"]) == golden
    assert data["cluster_sizes"][-1][0] == str(biggest)  # Ann Lee: two contacts and the ERP customer
    assert data["loads"] == {"all": {"created": loaded["created"], "updated": 0, "failed": 0}}
    assert data["match_weights"] is None


def test_scored_pairs_make_a_weight_histogram(migrated):
    ws = migrated.workspace()
    weights = [-3.0, 1.5, 2.0, 7.25, 12.0]
    with ws.begin() as conn:
        saved = ws.frame(sa.select(pairs), conn)
        conn.execute(sa.delete(pairs))
        conn.execute(sa.insert(pairs), [{"record_key_l": f"a:{i}", "record_key_r": f"b:{i}", "match_weight": w,
                                         "match_probability": 0.5} for i, w in enumerate(weights)])
    try:
        histogram = chart_data(migrated, ws)["match_weights"]
    finally:
        with ws.begin() as conn:
            conn.execute(sa.delete(pairs))
            ws.insert(conn, pairs, saved.to_dict("records"))
    assert histogram["pairs"] == 5 and sum(histogram["counts"]) == 5
    assert histogram["edges"][0] <= -3.0 and histogram["edges"][-1] >= 12.0
    page = to_html({**reconcile(migrated, ws, read_back=False), "charts": {"match_weights": histogram}})
    assert "aria-label='match weight histogram'" in page and "5 scored pairs" in page


def test_a_histogram_marks_the_thresholds_where_they_fall():
    svg = charts.histogram([2, 0, 5, 1], [0.0, 2.5, 5.0, 7.5, 10.0], label="weights",
                           markers={"review": 0.58, "link": 4.25, "beyond": 99.0})
    lines = re.findall(r"<line x1='([\d.]+)'[^>]*class='marker'", svg)
    assert len(lines) == 2 and float(lines[0]) < float(lines[1])  # review left of link; 99 is off the axis
    assert ">review<" in svg and ">link<" in svg and ">beyond<" not in svg


def test_chart_text_is_escaped():
    svg = charts.bar_chart([("<script>alert(1)</script>", 3)], label="x & y")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "x &amp; y" in svg


@pytest.mark.parametrize("module", ["migrate.charts", "migrate.web.app", "migrate.web.security"])
def test_the_docstring_examples_run(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
