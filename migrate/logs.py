"""Logging: one log file per run in the workspace folder; secrets never reach it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from migrate.config import Secrets

log = logging.getLogger("crm_migrate")


class _Redact(logging.Filter):
    def __init__(self, secrets: Secrets):
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.secrets.redact(record.getMessage())
        record.args = ()
        return True


def setup_console(verbose: bool = False) -> None:
    """Log INFO (or DEBUG) to stderr: short lines for people, no tracebacks."""
    log.setLevel(logging.DEBUG)
    if not any(getattr(h, "_crm_console", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._crm_console = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    for h in log.handlers:
        if getattr(h, "_crm_console", False):
            h.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def open_run_log(path: Path, secrets: Secrets) -> logging.Handler:
    """Start writing this run's log file; returns the handler to close at the end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for h in [handler, *log.handlers]:
        if not any(isinstance(f, _Redact) for f in h.filters):
            h.addFilter(_Redact(secrets))
    log.addHandler(handler)
    return handler


def close_run_log(handler: logging.Handler) -> None:
    """Stop writing a run's log file."""
    log.removeHandler(handler)
    handler.close()
