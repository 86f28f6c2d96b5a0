"""A migrated test project with a review queue: two uncertain pairs and one attribute conflict.

The deterministic matcher of the small test project leaves nothing uncertain, so the items
are raised through the review API, the way the match and golden stages raise them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from migrate.pipeline import run
from migrate.project import Project
from migrate.review import item_id, list_items, refresh_queue
from migrate.workspace import records, review_items, xref
from tests.projects import make_project

#: Weights of rules.match.explain() rows for the pair items: prior, comparisons, final total.
WATERFALL = [
    {"step": "prior", "weight": -6.64},
    {"step": "comparison", "comparison": "first_name", "level": "nickname", "weight": 2.91},
    {"step": "comparison", "comparison": "last_name", "level": "exact", "weight": 5.83},
    {"step": "comparison", "comparison": "email", "level": "exact", "weight": 4.01},
    {"step": "comparison", "comparison": "birth_date", "level": "missing", "weight": 0.0},
    {"step": "comparison", "comparison": "phone", "level": "different", "weight": -3.37},
    {"step": "final", "level": "probabilistic", "weight": None},
]


@dataclass
class Queue:
    """The project and the ids of its review items."""

    project: Project
    strong_pair: str      # Bob Stone (contacts) vs Robert Stone (erp), p = 0.87
    weak_pair: str        # Zoë Øster (contacts) vs Fay Field (erp), p = 0.64
    conflict: str         # the Ann Lee golden record: two cities


def review_queue(root: Path) -> Queue:
    """Build, run and queue the project in ``root``."""
    project = Project.load(make_project(root))
    result = run(project, load=False)
    ws = project.workspace()
    pairs = pd.DataFrame({"record_key_l": ["contacts:c2", "contacts:c4"], "record_key_r": ["erp:102", "erp:103"],
                          "match_probability": [0.87, 0.64], "match_weight": [2.74, 0.83],
                          "levels": [{"first_name": "nickname", "last_name": "exact", "email": "exact"},
                                     {"first_name": "different", "last_name": "different", "email": "different"}]})
    ann = ws.scalar(sa.select(xref.c.golden_id).where(xref.c.record_key == "erp:101"))
    conflicts = pd.DataFrame({"golden_id": [ann, ann], "attribute": ["city", "city"],
                              "record_key": ["erp:101", "contacts:c1"], "source": ["erp", "contacts"],
                              "value": ["London", "Londres"]})
    refresh_queue(project, ws, result.run_id, pairs, None, conflicts)
    queue = Queue(project, item_id("pair", "contacts:c2", "erp:102"), item_id("pair", "contacts:c4", "erp:103"),
                  item_id("conflict", ann, "city"))
    # The match stage will store each pair's explanation with it; until then the test adds it.
    with ws.begin() as conn:
        for pair in (queue.strong_pair, queue.weak_pair):
            evidence = json.loads(conn.execute(sa.select(review_items.c.evidence)
                                               .where(review_items.c.item_id == pair)).scalar_one())
            conn.execute(sa.update(review_items).where(review_items.c.item_id == pair)
                         .values(evidence=json.dumps({**evidence, "waterfall": WATERFALL})))
    assert set(list_items(ws)["item_id"]) == {queue.strong_pair, queue.weak_pair, queue.conflict}
    return queue


def change_record(project: Project, record_key: str, **values: str) -> None:
    """Change a staged record as a new extract would: new values, new row hash."""
    with project.workspace().begin() as conn:
        conn.execute(sa.update(records).where(records.c.record_key == record_key)
                     .values(**values, row_hash=f"changed-{len(values)}"))


@pytest.fixture(scope="session")
def built_queue(tmp_path_factory: pytest.TempPathFactory) -> Queue:
    """The queued project, built once per test session (a run takes seconds)."""
    queue = review_queue(tmp_path_factory.mktemp("review") / "project")
    queue.project.workspace().engine.dispose()  # closes SQLite's WAL, so the folder copies whole
    return queue


@pytest.fixture
def queue(built_queue: Queue, tmp_path: Path) -> Queue:
    """A fresh copy of the queued project, for a test that decides."""
    root = shutil.copytree(built_queue.project.dir, tmp_path / "project")
    return replace(built_queue, project=Project.load(root))
