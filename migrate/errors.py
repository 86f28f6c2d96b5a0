"""Errors a user can act on. Each carries the exit code the CLI returns.

Exit codes are part of the contract nightly jobs depend on: 0 ok, 1 failed (data or
runtime), 2 usage or configuration.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class MigrateError(Exception):
    """Base class: a one-line message for the user, and an exit code."""

    exit_code = EXIT_FAILED
    #: Transient errors (a database restarting, a lock timeout) may be retried.
    transient = False


class ConfigError(MigrateError):
    """One or more problems in migration.yaml or a mapping; every problem is listed."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class InputError(MigrateError):
    """A source cannot be read at all: missing, unreadable, not the declared format."""

    exit_code = EXIT_USAGE


class UnreachableError(MigrateError):
    """A database server does not answer; worth retrying later."""

    exit_code = EXIT_FAILED
    transient = True


class SourceReadError(MigrateError):
    """A source failed while being read (a database went away mid-stream)."""

    exit_code = EXIT_FAILED


class TargetError(MigrateError):
    """The new CRM cannot be reached or refused the load as a whole."""

    exit_code = EXIT_FAILED


class ReconciliationError(MigrateError):
    """The reconciliation does not balance."""

    exit_code = EXIT_FAILED


class WorkspaceError(MigrateError):
    """The workspace is missing, locked, or from a newer release."""

    exit_code = EXIT_USAGE
