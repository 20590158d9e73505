"""Typed errors. Each carries its exit code and a one-line message; the CLI catches them once."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a check or an operation failed
EXIT_USAGE = 2  # invalid input or usage
EXIT_CHANGES = 3  # changes found (only with --detailed-exitcode)
EXIT_INTERRUPTED = 130  # Ctrl-C


class KestraOpsError(Exception):
    """Base error: ``str(err)`` is the one line shown to the user."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class InvalidInput(KestraOpsError):
    """Bad input: malformed file, unknown environment, bad flag value."""

    exit_code = EXIT_USAGE


class ConfigError(InvalidInput):
    """kestra-ops.yaml or an environment variable is wrong."""


class ToolMissing(KestraOpsError):
    """An outside binary (helm, pg_dump) is not installed."""

    exit_code = EXIT_FAILED


class OperationFailed(KestraOpsError):
    """An operation ran and failed (helm lint, a deploy, a check)."""

    exit_code = EXIT_FAILED


class Unreachable(OperationFailed):
    """A server (Kubernetes API, Kestra, MinIO, PostgreSQL) cannot be reached."""


class NotFound(OperationFailed):
    """A resource that must exist does not."""


class Conflict(OperationFailed):
    """Someone else changed the resource, or holds the lock."""


class PermissionDenied(OperationFailed):
    """The caller lacks a permission (RBAC, credentials)."""


class Aborted(KestraOpsError):
    """The user declined a confirmation; nothing was changed."""

    exit_code = EXIT_FAILED


class PackagedDataMissing(InvalidInput):
    """The project has no chart or values of its own and this install ships none."""
