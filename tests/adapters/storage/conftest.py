"""Storage fixtures: every behaviour test runs against SQLite (a temp file) and the real PostgreSQL.

PostgreSQL comes from the session fixture ``postgres_url`` in tests/conftest.py: one empty database shared
by the whole run. Each test here drops the storage tables before and after itself, so every test starts from
an empty database (which also exercises the migrations every time) and leaves it empty for the next one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from smsdispatch.adapters.storage import DispatchLog

STORAGE_TABLES = (
    "notification_dispatch_log",
    "notification_dispatch_pending_receipt",
    "smsdispatch_schema_version",
    "test_migration_extra",
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


async def drop_storage_tables(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for table in STORAGE_TABLES:
                await connection.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """An empty database on each backend, as a URL DispatchLog.open accepts."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'dispatch.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    await drop_storage_tables(url)
    yield url
    await drop_storage_tables(url)


@pytest_asyncio.fixture
async def dispatch_log(database_url: str) -> AsyncIterator[DispatchLog]:
    log = await DispatchLog.open(database_url)
    yield log
    await log.close()
