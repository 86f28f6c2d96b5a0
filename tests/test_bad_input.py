"""Bad input gets one clear line and the right exit code, never a traceback."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from cli import main
from tests.projects import make_project


def invoke(*args):
    result = CliRunner().invoke(main, list(map(str, args)))
    assert "Traceback" not in result.output
    return result


def edit_config(root, change):
    path = root / "migration.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_every_config_problem_is_reported_together_with_file_line_and_key(tmp_path, monkeypatch):
    root = make_project(tmp_path)
    monkeypatch.delenv("CRM_URL", raising=False)
    (root / "migration.yaml").write_text((root / "migration.yaml").read_text()
                                         .replace("workspace:", "worksapce:")
                                         .replace("url: sqlite:///crm.db", "url: ${CRM_URL}")
                                         .replace("connector: csv", "connector: cvs")
                                         .replace("batch_size: 3", "batch_size: lots"))
    result = invoke("run", "-p", root)
    assert result.exit_code == 2
    out = result.output
    assert "problem(s)" in out
    assert "migration.yaml:1: worksapce: unknown key 'worksapce'; did you mean 'workspace'?" in out
    assert "sources.contacts.connector: unknown connector 'cvs'; did you mean 'csv'?" in out
    assert "target.url: environment variable ${CRM_URL} is not set" in out
    assert "target.batch_size:" in out and "'lots'" in out


def test_missing_file_and_dangling_mapping_are_config_errors(tmp_path):
    root = make_project(tmp_path)

    def change(c):
        c["sources"]["contacts"]["path"] = "data/nope.csv"
        c["sources"]["erp"]["mapping"] = "mappings/erp2.yaml"
    edit_config(root, change)
    result = invoke("run", "-p", root)
    assert result.exit_code == 2
    assert "sources.contacts.path: file not found" in result.output
    assert "nope.csv" in result.output
    assert "sources.erp.mapping: 'mappings/erp2.yaml' is neither a bundled template nor a file" in result.output


def test_mapped_column_missing_from_the_source_names_it(tmp_path):
    root = make_project(tmp_path)
    (root / "data" / "contacts.csv").write_text(
        (root / "data" / "contacts.csv").read_text().replace("Email,", "E-mail,", 1))
    result = invoke("run", "-p", root)
    assert result.exit_code == 2
    assert "reads column 'Email', which the source does not have; did you mean 'E-mail'?" in result.output


def test_unreachable_database_is_one_line_and_exit_1(tmp_path):
    root = make_project(tmp_path)
    edit_config(root, lambda c: c["target"].update(url="postgresql://crm:s3cret-pw@127.0.0.1:1/crm"))
    result = invoke("run", "-p", root)
    assert result.exit_code == 1
    assert "cannot connect to postgresql+psycopg://crm:***@127.0.0.1:1/crm" in result.output
    assert "s3cret-pw" not in result.output


def test_binary_file_is_not_taken_for_a_csv(tmp_path):
    root = make_project(tmp_path)
    (root / "data" / "contacts.csv").write_bytes(b"PK\x03\x04\x00\x00binary zip content\x00\x00")
    result = invoke("run", "-p", root)
    assert result.exit_code == 2
    assert "contacts.csv: not a text file" in result.output


def test_undecodable_line_is_quarantined_and_the_run_goes_on(tmp_path):
    root = make_project(tmp_path)
    csv_path = root / "data" / "contacts.csv"
    csv_path.write_bytes(csv_path.read_bytes() + "c9,Zoë,Ünal,zu@x.org,,DE,,,\n".encode("utf-8")
                         + b"c10,J\xe9r\xf4me,Bad,jb@x.org,,FR,,,\n")
    result = invoke("reconcile", "-p", root)  # nothing run yet: nothing holds, nothing crashes
    assert result.exit_code in (0, 1)
    result = invoke("run", "-p", root)
    assert result.exit_code == 0, result.output
    status = invoke("reconcile", "-p", root, "--json")
    import json

    report = json.loads(status.stdout)
    assert report["sources"]["contacts"]["in"] == 12
    assert report["quarantine_reasons"]["contacts"]["bad_encoding"] == 1
    assert report["sources"]["contacts"]["holds"] is True


def test_unknown_phase_is_a_usage_error(tmp_path):
    root = make_project(tmp_path)
    result = invoke("load", "-p", root, "--phase", "wave9")
    assert result.exit_code == 2
    assert "no phase 'wave9'" in result.output
