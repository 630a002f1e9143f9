"""Exceptions that reach the user as one `error:` line and an exit code (docs/CLI.md)."""

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFLICTS = 3


class SyncError(Exception):
    """A failure the user can understand; the message is printed after `error:`."""

    exit_code = EXIT_FAILED


class ConfigError(SyncError):
    """Bad usage or configuration: missing setup, bad remote, missing passphrase."""

    exit_code = EXIT_USAGE


class CorruptionError(SyncError):
    """An object failed authentication or could not be decoded."""


class HistoryError(CorruptionError):
    """The remote history does not continue the one this machine has seen (rollback, fork)."""


class WrongKeyError(SyncError):
    """The passphrase or recovery key does not open this repository."""


class BackendError(SyncError):
    """The storage backend could not be reached or refused a request."""


class ObjectNotFoundError(BackendError):
    """A named object is missing from the backend."""


class RevokedError(WrongKeyError):
    """This machine's key no longer opens the repository's current key epoch."""
