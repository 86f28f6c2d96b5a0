"""Crash testing only: SIGKILL this very process at a named point of a load.

``CRM_MIGRATE_KILL_AT=recorded:3`` kills the process with SIGKILL the 3rd time the loader
passes the point ``recorded``. It exists so tests/test_kill_resume.py can hit every crash
window deterministically (between ledger, target commit and workspace commit) with a
real ``kill -9``; unset, :func:`kill_point` does nothing.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("CRM_MIGRATE_KILL_AT", "")
_NAME, _, _NTH = _SPEC.partition(":")
_passes = 0


def kill_point(name: str) -> None:
    """SIGKILL the process if ``CRM_MIGRATE_KILL_AT`` names this point and its pass count is reached."""
    global _passes
    if name != _NAME:
        return
    _passes += 1
    if _passes == int(_NTH or 1):
        os.kill(os.getpid(), signal.SIGKILL)
