"""Progress lines with counts and an ETA, for the ``progress`` callback of :func:`rules.match.link`."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressPrinter:
    """Prints ``stage: done / total (percent), ETA`` at most every ``interval`` seconds.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> p = ProgressPrinter(out, interval=0)
        >>> p("score", 50, 100)
        >>> "score: 50 / 100 (50%)" in out.getvalue()
        True
    """

    def __init__(self, stream: TextIO | None = None, interval: float = 1.0):
        self.stream = stream or sys.stderr
        self.interval = interval
        self._stage: str | None = None
        self._started = self._printed = 0.0

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if stage != self._stage:
            self._stage, self._started, self._printed = stage, now, 0.0
        finished = total is not None and done >= total
        if not finished and now - self._printed < self.interval:
            return
        self._printed = now
        line = f"{stage}: {done:,}"
        if total:
            line += f" / {total:,} ({100 * done / total:.0f}%)"
            if 0 < done < total:
                line += f", ETA {(now - self._started) * (total - done) / done:.0f}s"
        print(line, file=self.stream, flush=True)
