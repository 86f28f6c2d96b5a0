"""One run at a time per project: a second `run` or `load` is refused with a clear message."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from migrate.errors import MigrateError


class LockedError(MigrateError):
    """Another crm-migrate process holds the project's lock."""

    exit_code = 1


@contextmanager
def project_lock(state_dir: Path, what: str) -> Iterator[None]:
    """Hold the project's lock for the duration of a run (released even on kill -9, by the OS)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text(encoding="utf-8").strip() or "another process"
            raise LockedError(f"the project is busy: {holder} is running; wait for it to finish "
                              f"(a crashed run leaves no lock behind)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{what} (pid {os.getpid()})".encode())
        yield
    finally:
        os.close(fd)
