"""The examples in docs/connectors.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from connectors import source_class

ROOT = Path(__file__).parent.parent
DOC = (ROOT / "docs" / "connectors.md").read_text()
PYTHON = re.findall(r"```python\n(.*?)```", DOC, re.DOTALL)
SOURCES = [
    (name, spec)
    for block in re.findall(r"```yaml\n(.*?)```", DOC, re.DOTALL)
    for name, spec in (yaml.safe_load(block).get("sources") or {}).items()
]


@pytest.mark.parametrize("code", PYTHON, ids=[f"python-{i}" for i in range(len(PYTHON))])
def test_python_example_runs_against_the_fixtures(code, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    exec(compile(code, "docs/connectors.md", "exec"), {})
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("name, spec", SOURCES, ids=[name for name, _ in SOURCES])
def test_yaml_example_is_a_valid_source(name, spec):
    source_class(spec["connector"]).Options.model_validate(spec)


def test_every_file_connector_has_an_example():
    assert {spec["connector"] for _, spec in SOURCES} >= {"excel", "json", "jsonl", "vcard", "ldif", "fixed_width"}
    assert len(PYTHON) >= 5
