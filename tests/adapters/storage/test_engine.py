"""Database URLs: async drivers chosen for the user, clear errors that never echo a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsdispatch.adapters.storage import DispatchLog, StorageError
from smsdispatch.adapters.storage.engine import create_engine, parse_database_url


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///smsdispatch.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///smsdispatch.db", "sqlite+aiosqlite"),
        ("postgresql://sms:pw@127.0.0.1/sms", "postgresql+asyncpg"),
        ("postgres://sms:pw@127.0.0.1/sms", "postgresql+asyncpg"),
        ("postgresql+asyncpg://sms:pw@127.0.0.1/sms", "postgresql+asyncpg"),
    ],
)
def test_common_url_forms_get_the_async_driver(given: str, driver: str) -> None:
    assert parse_database_url(given).drivername == driver


@pytest.mark.parametrize(
    "url",
    [
        "not a url at all s3cret-password",
        "mysql://sms:s3cret-password@127.0.0.1/sms",
        "postgresql+psycopg2://sms:s3cret-password@127.0.0.1/sms",
    ],
)
def test_unusable_url_is_a_clear_error_without_the_password(url: str) -> None:
    with pytest.raises(StorageError) as raised:
        parse_database_url(url)

    assert raised.value.retryable is False
    assert "s3cret-password" not in str(raised.value)
    assert "sqlite+aiosqlite:///" in str(raised.value)


def test_sqlite_file_in_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        parse_database_url(f"sqlite+aiosqlite:///{tmp_path}/missing/dispatch.db")


@pytest.mark.asyncio
async def test_log_url_and_repr_mask_the_password() -> None:
    url = parse_database_url("postgresql://sms:s3cret-password@127.0.0.1:9/sms")
    log = DispatchLog(create_engine(url), url)  # creating an engine does not connect
    try:
        assert log.url == "postgresql+asyncpg://sms:***@127.0.0.1:9/sms"
        assert "s3cret-password" not in repr(log)
        assert log.dialect == "postgresql"
    finally:
        await log.close()


@pytest.mark.asyncio
async def test_unreachable_postgres_at_open_is_retryable() -> None:
    # Port 9 (discard) on loopback: nothing listens there, so the connection is refused at once.
    with pytest.raises(StorageError) as raised:
        await DispatchLog.open("postgresql+asyncpg://sms:s3cret-password@127.0.0.1:9/sms")

    assert raised.value.retryable is True
    assert "s3cret-password" not in str(raised.value)
