"""Progress on long stages: a rich bar with counts and ETA on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import TracebackType

log = logging.getLogger("crm_migrate")

Advance = Callable[[int], None]


@contextmanager
def progress(description: str, total: int | None = None, unit: str = "rows") -> Iterator[Advance]:
    """Report progress of one long step; yields ``advance(n)``.

    On a terminal this is a rich progress bar with counts and ETA; otherwise (cron,
    CI, a pipe) a plain log line at most every 5 seconds and one at the end.
    """
    if sys.stderr.isatty():
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn(unit), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                      transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)
        return
    start = last = time.monotonic()
    done = 0

    def advance(n: int) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last >= 5:
            last = now
            log.info("%s: %s", description, _status(done, total, now - start, unit))

    yield advance
    log.info("%s: %s", description, _status(done, total, time.monotonic() - start, unit, final=True))


class StageProgress:
    """:func:`progress` for a call that reports ``report(stage, done, total)`` as it goes (the matcher).

    Each stage gets its own bar or log lines, closed when the next stage starts or the block ends.

    Example:
        >>> with StageProgress() as report:
        ...     report("score", 50, 100)
        ...     report("score", 100, 100)
    """

    def __init__(self, unit: str = "pairs"):
        self.unit = unit
        self._stage: str | None = None
        self._done = 0
        self._open = ExitStack()
        self._advance: Advance = lambda n: None

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if stage != self._stage:
            self._open.close()
            self._stage, self._done = stage, 0
            self._advance = self._open.enter_context(progress(stage, total, self.unit))
        self._advance(done - self._done)
        self._done = done

    def __enter__(self) -> StageProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._open.close()


def _status(done: int, total: int | None, elapsed: float, unit: str, final: bool = False) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    text = f"{done:,} {unit}" + (f" of ~{total:,}" if total and not final else "")
    if final:
        return f"{text} in {elapsed:.1f}s ({rate:,.0f}/s)"
    if total and rate > 0 and done < total:
        text += f", ETA {(total - done) / rate:.0f}s"
    return text
