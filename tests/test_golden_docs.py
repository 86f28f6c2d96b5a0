"""The examples in docs/golden-records.md run as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from cli import main
from migrate.config import SurviveConfig
from migrate.project import Project
from migrate.workspace import golden, read_table, xref

DOC = (Path(__file__).parent.parent / "docs" / "golden-records.md").read_text(encoding="utf-8")
COMMANDS = [shlex.split(line, comments=True)[1:] for block in re.findall(r"```bash\n(.*?)```", DOC, re.DOTALL)
            for line in block.splitlines() if line.startswith("crm-migrate ")]


def test_the_survivorship_example_is_a_valid_configuration():
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOC, re.DOTALL)]
    survive = [SurviveConfig.model_validate(b["rules"]["survive"]) for b in blocks]
    assert survive and survive[0].rules_for("phones")[-1] == "union"


@pytest.mark.slow
def test_the_stewards_session_runs_on_the_demo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in COMMANDS:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, f"crm-migrate {' '.join(args)}:\n{result.output}"
    ws = Project.load(tmp_path / "crm-migrate-demo").workspace()
    schmidt = read_table(ws, golden, where=golden.c.golden_id == "G-44f3ffc81069").iloc[0]
    assert schmidt["phones"] == ["+49897377015"]
    assert schmidt["lineage"]["phones"]["rule"] == "steward_override"
    together = ws.frame(sa.select(xref.c.golden_id).where(xref.c.record_key.in_(
        ["contacts:line744", "contacts:line967"])))["golden_id"]
    assert set(together) == {"G-44f3ffc81069"}
    assert (tmp_path / "review.csv").is_file()
