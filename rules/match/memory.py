"""Handing freed memory back to the system between the steps of a large match.

A user sees the peak RSS of a run, and freed blocks that Arrow's pool and the C allocator keep
for reuse count in it as much as live ones: each step of the match frees what the next does
not need, then calls :func:`release`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import pyarrow as pa

#: glibc's ``malloc_trim``, which returns freed heap pages to the system (None where the C library has none).
_TRIM = getattr(ctypes.CDLL(ctypes.util.find_library("c")), "malloc_trim", None) \
    if sys.platform.startswith("linux") else None


def release() -> None:
    """Return what Arrow and the C allocator hold for freed buffers to the system (a few ms)."""
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)
