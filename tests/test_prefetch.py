"""Chunks read one ahead on a thread: same chunks, same errors, nothing left open."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.prefetch import prefetched


def test_a_read_error_reaches_the_caller_after_the_chunks_read_before_it():
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for chunk in prefetched(source()):
            got.append(chunk)
    assert got == [1, 2]


def test_a_caller_that_stops_early_closes_the_source_and_reads_at_most_one_chunk_more():
    read, closed = [], []

    def source() -> Iterator[int]:
        try:
            for i in range(100):
                read.append(i)
                yield i
        finally:
            closed.append(True)

    chunks = prefetched(source())
    assert next(chunks) == 0
    chunks.close()
    assert closed == [True] and len(read) <= 2
