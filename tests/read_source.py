"""Reading a whole source in tests: every chunk, all rows and all rejects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from connectors import Chunk, open_source

DATA = Path(__file__).parent / "data"


def read_chunks(spec: dict[str, Any], chunk_size: int = 50_000, base_dir: Path = DATA) -> list[Chunk]:
    """Every chunk of the source ``spec`` describes (paths relative to tests/data)."""
    return list(open_source("test", spec, base_dir).chunks(chunk_size))


def read_all(spec: dict[str, Any], base_dir: Path = DATA) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All rows and all rejects of a source, each concatenated over its chunks."""
    chunks = read_chunks(spec, base_dir=base_dir)
    rows = pd.concat([c.rows for c in chunks], ignore_index=True)
    rejects = pd.concat([c.rejects for c in chunks], ignore_index=True)
    return rows, rejects
