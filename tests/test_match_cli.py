"""A migration team checks matching from the command line: blocking counts, one pair explained, a file deduplicated."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.synthetic import generate, to_contacts_csv
from cli import main
from migrate.project import Project
from migrate.workspace import pairs, read_table
from tests.projects import make_project
from tests.test_review_stories import SMALL_CLUSTERS, migrate


def invoke(*args: object):
    # Wide enough that the blocking table never abbreviates a rule or a count.
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    """The test project matched probabilistically: Ann Lee three times, linked by name and e-mail."""
    return migrate(tmp_path_factory.mktemp("match"), match=SMALL_CLUSTERS)


def table_rows(text: str) -> dict[str, list[str]]:
    """The cells of a rich table's body rows, by their first cell."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]
    return {row[0]: row[1:] for row in rows}


def test_blocking_counts_candidate_pairs_per_rule_before_scoring(project):
    result = invoke("match", "blocking", "-p", project.dir)
    assert result.exit_code == 0 and result.stderr == ""
    rows = table_rows(result.stdout)
    # pairs, cumulative pairs, blocks: Lee (three records) and Stone (two) make four pairs by last
    # name; the e-mail rule adds none of its own (its pairs share a last name too).
    assert [rows[rule][:3] for rule in ("last_name", "email", "total")] == [["4", "4", "5"], ["0", "4", "4"],
                                                                            ["4", "4", "9"]]


def test_blocking_needs_the_probabilistic_matcher(tmp_path):
    result = invoke("match", "blocking", "-p", make_project(tmp_path))
    assert result.exit_code == 2 and "uses deterministic rules" in result.stderr


def test_explain_shows_each_comparison_and_ends_at_the_stored_score(project):
    result = invoke("explain", "-p", project.dir, "contacts:c1", "contacts:c3")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[1].split()[0] == "prior" and lines[-1].split()[0] == "final"
    steps = {tuple(line.split()[:2]) for line in lines[1:]}
    assert {("comparison", "first_name"), ("comparison", "email"), ("term", "frequency")} <= steps
    assert "missing" in next(line for line in lines if line.split()[:2] == ["comparison", "phone"])
    stored = read_table(project.workspace(), pairs).set_index(["record_key_l", "record_key_r"])
    assert float(lines[-1].split()[-1]) == pytest.approx(stored.loc[("contacts:c1", "contacts:c3"),
                                                                    "match_probability"], abs=1e-6)


def test_explain_names_a_record_key_it_does_not_know(project):
    result = invoke("explain", "-p", project.dir, "contacts:c1", "nope:1")
    assert result.exit_code == 2 and "no staged record 'nope:1'" in result.stderr and result.stdout == ""


def test_dedupe_writes_every_row_back_with_its_cluster(tmp_path):
    truth = generate(600, seed=5)
    to_contacts_csv(truth).to_csv(tmp_path / "contacts.csv", index=False)
    result = invoke("dedupe", tmp_path / "contacts.csv", "-o", tmp_path / "out.csv")
    assert result.exit_code == 0 and result.stdout.strip() == f"written {tmp_path / 'out.csv'}"
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == len(truth) and list(out.columns[-2:]) == ["cluster_id", "match_probability"]
    assert (out.groupby(truth["entity_id"].to_numpy())["cluster_id"].nunique() == 1).mean() > 0.85
    assert out["cluster_id"].nunique() < len(out)


def test_dedupe_of_a_missing_file_is_a_usage_error(tmp_path):
    result = invoke("dedupe", tmp_path / "nowhere.csv", "-o", tmp_path / "out.csv")
    assert result.exit_code == 2 and "file not found" in result.stderr
    assert not (tmp_path / "out.csv").exists()
