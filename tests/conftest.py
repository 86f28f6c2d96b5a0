"""Shared fixtures: fresh databases, small projects built from tests/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.databases import fresh_database
from tests.review_queue import built_queue, queue  # noqa: F401  (fixtures: a project with a review queue)

DATA = Path(__file__).parent / "data"


@pytest.fixture
def db_url(request, tmp_path):
    """A fresh empty database URL of the kind named by ``@with_databases``."""
    with fresh_database(request.param, tmp_path) as url:
        yield url
