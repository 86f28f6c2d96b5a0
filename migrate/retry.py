"""Retry transient failures (a database restarting, a deadlock, a lock timeout) with exponential backoff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from migrate.errors import MigrateError

log = logging.getLogger("crm_migrate")
T = TypeVar("T")


def with_retry(action: Callable[[], T], what: str, attempts: int = 5, first_delay: float = 0.5) -> T:
    """Run ``action``; on a transient :class:`MigrateError`, wait 0.5 s, 1 s, 2 s... and try again.

    A terminal error, or the last transient one, is raised as it is.

    Example:
        >>> with_retry(lambda: 42, "answer")
        42
    """
    for attempt in range(attempts):
        try:
            return action()
        except MigrateError as exc:
            if not exc.transient or attempt == attempts - 1:
                raise
            delay = first_delay * 2 ** attempt
            log.warning("%s: %s; retrying in %.1fs (attempt %d of %d)", what, exc, delay, attempt + 2, attempts)
            time.sleep(delay)
    raise AssertionError("unreachable")
