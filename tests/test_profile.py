"""A steward profiles the sources before migrating them, and the workspace stays untouched."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli import main
from tests.projects import make_project


def test_profile_reports_fill_rates_shapes_and_problems_without_writing_the_workspace(tmp_path):
    root = make_project(tmp_path)
    result = CliRunner().invoke(main, ["profile", "-p", str(root), "--json", "--source", "contacts"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["sources"]["contacts"]
    assert data["rows"] == 10
    assert data["unreadable_rows"] == {"wrong_column_count": 1}
    assert data["duplicate_source_ids"] == 1
    assert data["would_quarantine"]["invalid_email"] == 1
    email = data["columns"]["Email"]
    assert 0.6 < email["fill_rate"] < 0.8
    assert ["Aa.Aa@Aa.a", 1] in email["shapes"]
    assert not (root / ".crm-migrate" / "workspace.db").exists()
    html = (root / ".crm-migrate" / "reports" / "profile.html").read_text()
    assert "Source profile" in html and "invalid_email" in html
