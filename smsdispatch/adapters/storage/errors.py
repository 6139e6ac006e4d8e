"""What can go wrong with the database, split the way a caller has to act on it.

The log sink commits Kafka offsets only after :meth:`DispatchLog.record` returns, so it needs one question
answered for every failure: wait and try the same batch again, or stop because retrying cannot help?
Like aiokafka's errors, every exception here carries a ``retryable`` attribute that answers it.

- :class:`StorageUnavailable` (``retryable = True``): the server is unreachable, shutting down, restarting,
  out of connections, or the transaction lost a serialization race. Nothing was committed; the same batch
  can be written again once the database is back (the upsert rules make a re-write harmless).
- :class:`StorageError` (``retryable = False``): anything else: a bad URL, a schema newer than this code, a
  constraint or SQL error. Retrying would fail the same way; it is a configuration problem or a bug.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html) that mean "try later".
_RETRYABLE_SQLSTATE_PREFIXES = (
    "08",  # connection_exception: refused, lost, failed to establish
    "53",  # insufficient_resources: too many connections, disk full, out of memory
    "57",  # operator_intervention: admin/crash shutdown, cannot connect now (starting up), query canceled
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available
)
# SQLite result codes that clear by themselves: another process holds the write lock, or the disk is full.
_RETRYABLE_SQLITE_ERRORS = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR"})


class StorageError(Exception):
    """A database failure that retrying will not fix (configuration problem or bug)."""

    retryable: bool = False


class StorageUnavailable(StorageError):
    """The database cannot be reached right now; nothing was committed, retry the same work later."""

    retryable = True


class SchemaTooNew(StorageError):
    """The database was migrated by a newer smsdispatch than this one; refuse rather than guess."""


def classify(error: BaseException, action: str) -> StorageError:
    """Turn a driver or SQLAlchemy exception into a :class:`StorageError` that says whether to retry.

    ``action`` says what we were doing ("recording 12 outcomes") so the message is one useful sentence.
    Messages carry the driver's reason but never the URL, which may hold a password.
    """
    if isinstance(error, StorageError):
        return error
    reason = _reason(error)
    if _is_retryable(error):
        return StorageUnavailable(f"The database is unavailable while {action}: {reason}.")
    return StorageError(f"The database refused {action}: {reason}.")


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True  # DisconnectionError: pre-ping gave up; TimeoutError: no pooled connection came free
    original = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(_RETRYABLE_SQLSTATE_PREFIXES)
    if isinstance(original, sqlite3.Error):
        return getattr(original, "sqlite_errorname", None) in _RETRYABLE_SQLITE_ERRORS
    # Raised by the driver before any SQL ran: connection refused or reset, DNS hiccup, connect timeout.
    return isinstance(original, OSError | TimeoutError)


def is_database_error(error: BaseException) -> bool:
    """Whether ``error`` came from the database layer (and should be classified) rather than from a bug.

    asyncpg errors are recognised by their ``sqlstate`` so this module need not import asyncpg.
    """
    return isinstance(error, sa_exc.SQLAlchemyError | OSError | TimeoutError | sqlite3.Error) or isinstance(
        getattr(error, "sqlstate", None), str
    )


def _reason(error: BaseException) -> str:
    original = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig is not None else error
    text = str(original).strip().splitlines()[0] if str(original).strip() else ""
    name = type(original).__name__
    return f"{name}: {text}" if text else name
