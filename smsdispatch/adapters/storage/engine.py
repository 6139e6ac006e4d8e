"""Turning a database URL into an async engine that behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from smsdispatch.adapters.storage.errors import StorageError

# Synchronous or bare driver names people write out of habit, and the async driver we use for each.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
_EXAMPLES = "sqlite+aiosqlite:///smsdispatch.db or postgresql+asyncpg://user:password@host:5432/dbname"
_PG_CONNECT_TIMEOUT_SECONDS = 10


def parse_database_url(url: str | URL) -> URL:
    """Read a database URL, accepting ``sqlite://``/``postgresql://`` for their async drivers.

    Error messages never repeat the URL: it may hold a password.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StorageError(f"The database URL is not valid; expected something like {_EXAMPLES}.") from None
    drivername = _ASYNC_DRIVERS.get(parsed.drivername)
    if drivername is None:
        raise StorageError(
            f"The database URL uses {parsed.drivername!r}, which smsdispatch does not support; use {_EXAMPLES}."
        )
    parsed = parsed.set(drivername=drivername)
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_directory(parsed)
    return parsed


def _check_sqlite_directory(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    directory = Path(database).expanduser().resolve().parent
    if not directory.is_dir():
        raise StorageError(f"Cannot create the SQLite database {database}: directory {directory} does not exist.")


def create_engine(url: URL) -> AsyncEngine:
    """An async engine that survives server restarts and gives SQLite real transactions."""
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["timeout"] = _PG_CONNECT_TIMEOUT_SECONDS
    # pool_pre_ping: after a PostgreSQL restart every pooled connection is dead; test each one as it is
    # checked out and replace it, so the first record() after the outage works instead of failing once more.
    engine = create_async_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if url.get_backend_name() == "sqlite":
        _take_over_sqlite_transactions(engine, in_memory=url.database in (None, "", ":memory:"))
    return engine


def _take_over_sqlite_transactions(engine: AsyncEngine, *, in_memory: bool) -> None:
    """Make every SQLite transaction a real one that holds the write lock from its first statement.

    Python's sqlite3 (3.11) does not emit BEGIN before DDL or SELECT, so migrations would autocommit statement
    by statement. We switch its transaction handling off and emit ``BEGIN IMMEDIATE`` ourselves: two processes
    migrating or upserting at once then queue on the lock (up to the busy timeout) instead of interleaving.
    WAL journaling lets readers (``smsdispatch demo`` printing a summary) run while the sink writes.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        if not in_memory:
            _use_wal(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _use_wal(dbapi_connection: Any, attempts: int = 50) -> None:
    """Switch the file to WAL journaling (it stays switched). The switch needs the database to itself and,
    unlike ordinary statements, does not wait on the busy timeout: when another connection is mid-transaction
    it fails at once with "database is locked", so it is retried for a while; a file already in WAL is done."""
    cursor = dbapi_connection.cursor()
    try:
        for attempt in range(attempts):
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError:
                if _journal_mode(cursor) == "wal" or attempt == attempts - 1:
                    return  # another connection switched it; or give up and run in the default journal mode
                time.sleep(0.1)
    finally:
        cursor.close()


def _journal_mode(cursor: Any) -> str | None:
    try:
        cursor.execute("PRAGMA journal_mode")
        row = cursor.fetchone()
    except sqlite3.OperationalError:
        return None
    return str(row[0]).lower() if row else None
