"""Database failures are split into 'retry later' (StorageUnavailable) and 'will not fix itself'."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc

from smsdispatch.adapters.storage import DispatchLog, StorageError, StorageUnavailable
from smsdispatch.adapters.storage.errors import classify, is_database_error

from .factories import dispatched, receipt


class FakePostgresError(Exception):
    """Shaped like asyncpg's errors (and SQLAlchemy's adaptation of them): a message and a SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def wrapped(original: Exception, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("INSERT …", {}, original, connection_invalidated=invalidated)


def sqlite_error(message: str, errorname: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorname = errorname
    return error


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        wrapped(FakePostgresError("connection was closed in the middle of operation", "08003")),
        wrapped(FakePostgresError("terminating connection due to administrator command", "57P01")),
        wrapped(FakePostgresError("the database system is starting up", "57P03")),
        wrapped(FakePostgresError("sorry, too many clients already", "53300")),
        wrapped(FakePostgresError("could not serialize access", "40001")),
        wrapped(Exception("connection is closed"), invalidated=True),
        wrapped(sqlite_error("database is locked", "SQLITE_BUSY")),
        sa_exc.TimeoutError("QueuePool limit reached"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_connection_and_server_state_failures_are_retryable(error: Exception) -> None:
    classified = classify(error, "recording 1 outcome(s)")

    assert isinstance(classified, StorageUnavailable)
    assert classified.retryable is True
    assert "recording 1 outcome(s)" in str(classified)


@pytest.mark.parametrize(
    "error",
    [
        wrapped(FakePostgresError('relation "nope" does not exist', "42P01")),
        wrapped(FakePostgresError("value out of range for type integer", "22003")),
        wrapped(FakePostgresError('password authentication failed for user "sms"', "28P01")),
        wrapped(sqlite_error("no such table: nope", "SQLITE_ERROR")),
        sa_exc.ArgumentError("bad argument"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_bugs_and_configuration_errors_are_not_retryable(error: Exception) -> None:
    classified = classify(error, "reading the dispatch log")

    assert type(classified) is StorageError
    assert classified.retryable is False


def test_only_database_errors_are_classified() -> None:
    assert is_database_error(wrapped(FakePostgresError("x", "08006")))
    assert is_database_error(FakePostgresError("raw asyncpg error", "57P01"))
    assert is_database_error(sqlite3.OperationalError("x"))
    assert not is_database_error(KeyError("a bug of ours"))


@pytest.mark.asyncio
async def test_sqlite_write_lock_held_elsewhere_is_retryable_and_clears(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    log = await DispatchLog.open(f"sqlite+aiosqlite:///{path}?timeout=0.2")
    other_process = sqlite3.connect(path, isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageUnavailable, match="locked"):
            await log.record([dispatched()])
        other_process.execute("ROLLBACK")

        await log.record([dispatched()])

        assert await log.get("req-1") is not None
    finally:
        other_process.close()
        await log.close()


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_postgres_outage_raises_retryable_then_recovers_after_restart(
    postgres_url: str, postgres_server: Any
) -> None:
    from .conftest import drop_storage_tables

    await drop_storage_tables(postgres_url)
    log = await DispatchLog.open(postgres_url)
    try:
        await log.record([dispatched("before")])
        postgres_server.stop()
        try:
            with pytest.raises(StorageUnavailable) as raised:
                await log.record([dispatched("during"), receipt("sent", 3, request_id="during", sid="SMduring")])
            assert raised.value.retryable is True
            with pytest.raises(StorageUnavailable):
                await DispatchLog.open(postgres_url)
        finally:
            postgres_server.start()

        await log.record([dispatched("during"), receipt("sent", 3, request_id="during", sid="SMduring")])

        row = await log.get("during")
        assert row is not None
        assert row.status == "sent"
        assert (await log.summary()).total == 2
    finally:
        await log.close()
        await drop_storage_tables(postgres_url)
