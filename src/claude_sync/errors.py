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


def no_space(exc: BaseException) -> str | None:
    """The message for a write that failed because a disk is full, wherever it happened
    (SQLite says `database or disk is full`, which reads like damage); None otherwise."""
    import errno
    import sqlite3

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" to write {exc.filename}" if exc.filename else ""
    elif isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == getattr(
        sqlite3, "SQLITE_FULL", 13
    ):
        where = " for this machine's state database"
    else:
        return None
    return f"no space left on the disk{where}: free some space and run the command again"
