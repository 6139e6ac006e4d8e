"""Schema migrations: applied once, in order, atomically, and safe when several processes open at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from smsdispatch.storage import MIGRATIONS, DispatchLog, Migration, SchemaTooNew
from smsdispatch.storage.engine import create_engine, parse_database_url
from smsdispatch.storage.migrations import migrate, schema_version
from smsdispatch.storage.tables import metadata

pytestmark = pytest.mark.asyncio


async def applied_versions(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        result = await connection.execute(select(schema_version.c.version).order_by(schema_version.c.version))
        return list(result.scalars())


def _add_extra_table(connection: Connection) -> None:
    connection.execute(text("CREATE TABLE test_migration_extra (id INTEGER PRIMARY KEY)"))


def _add_table_then_fail(connection: Connection) -> None:
    _add_extra_table(connection)
    raise RuntimeError("step 2 is broken")


async def test_opening_twice_applies_each_migration_once(database_url: str) -> None:
    first = await DispatchLog.open(database_url)
    await first.close()
    second = await DispatchLog.open(database_url)
    await second.close()

    engine = create_engine(parse_database_url(database_url))
    try:
        assert await applied_versions(engine) == [step.version for step in MIGRATIONS]
    finally:
        await engine.dispose()


async def test_concurrent_opens_migrate_once(database_url: str) -> None:
    logs = await asyncio.gather(*(DispatchLog.open(database_url) for _ in range(4)))
    for log in logs:
        await log.close()

    engine = create_engine(parse_database_url(database_url))
    try:
        assert await applied_versions(engine) == [step.version for step in MIGRATIONS]
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    """tables.py (what queries use) and the migration steps (what creates the schema) must not drift."""
    log = await DispatchLog.open(database_url)
    await log.close()
    engine = create_engine(parse_database_url(database_url))

    def describe(connection: Connection) -> dict[str, tuple[list[tuple[str, bool]], list[list[str | None]]]]:
        inspector = inspect(connection)
        return {
            name: (
                [(column["name"], column["nullable"]) for column in inspector.get_columns(name)],
                sorted(index["column_names"] for index in inspector.get_indexes(name)),
            )
            for name in metadata.tables
        }

    try:
        async with engine.connect() as connection:
            migrated = await connection.run_sync(describe)
    finally:
        await engine.dispose()
    expected = {
        table.name: (
            [(column.name, column.nullable) for column in table.columns],
            sorted([column.name for column in index.columns] for index in table.indexes),
        )
        for table in metadata.tables.values()
    }
    assert migrated == expected


async def test_a_new_step_runs_once_on_the_next_open(database_url: str) -> None:
    engine = create_engine(parse_database_url(database_url))
    steps = [*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "add test table", _add_extra_table)]
    try:
        await migrate(engine)
        assert await migrate(engine, steps) == len(steps)
        assert await migrate(engine, steps) == len(steps)

        assert await applied_versions(engine) == [step.version for step in steps]
        async with engine.connect() as connection:
            assert await connection.run_sync(lambda sync: inspect(sync).has_table("test_migration_extra"))
    finally:
        await engine.dispose()


async def test_a_failing_step_rolls_back_every_step_of_the_run(database_url: str) -> None:
    engine = create_engine(parse_database_url(database_url))
    steps = [*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "broken", _add_table_then_fail)]
    try:
        with pytest.raises(RuntimeError, match="step 2 is broken"):
            await migrate(engine, steps)

        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert "notification_dispatch_log" not in tables
        assert "test_migration_extra" not in tables
    finally:
        await engine.dispose()


async def test_a_database_migrated_by_a_newer_release_is_refused(database_url: str) -> None:
    engine = create_engine(parse_database_url(database_url))
    try:
        await migrate(engine)
        async with engine.begin() as connection:
            await connection.execute(
                insert(schema_version).values(version=99, description="future", applied_at=datetime.now(UTC))
            )
    finally:
        await engine.dispose()

    with pytest.raises(SchemaTooNew, match="version 99") as raised:
        await DispatchLog.open(database_url)
    assert raised.value.retryable is False


async def test_migration_versions_must_count_up_from_one(tmp_path: object) -> None:
    engine = create_engine(parse_database_url(f"sqlite+aiosqlite:///{tmp_path}/gap.db"))
    try:
        with pytest.raises(ValueError, match="no gaps"):
            await migrate(engine, [Migration(1, "one", _add_extra_table), Migration(3, "three", _add_extra_table)])
    finally:
        await engine.dispose()
