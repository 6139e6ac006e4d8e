"""Schema migrations: applied once, in order, atomically, and safe when several processes open at once; and
version 2 (rows keyed by tenant) converts a version-1 database without losing a row."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import JSON, Connection, DateTime, column, insert, inspect, select, table, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from smsdispatch.adapters.storage import MIGRATIONS, DispatchLog, Migration, SchemaTooNew
from smsdispatch.adapters.storage.engine import create_engine, parse_database_url
from smsdispatch.adapters.storage.migrations import migrate, schema_version
from smsdispatch.adapters.storage.tables import metadata

from .factories import T0, dispatched, receipt

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


Schema = dict[str, tuple[list[tuple[str, bool]], list[str], list[tuple[str | None, list[str | None]]]]]


def describe_schema(connection: Connection) -> Schema:
    """Per table of tables.py: (columns in order with nullability, primary key in order, named indexes)."""
    inspector = inspect(connection)
    return {
        name: (
            [(column["name"], column["nullable"]) for column in inspector.get_columns(name)],
            inspector.get_pk_constraint(name)["constrained_columns"],
            sorted((index["name"], index["column_names"]) for index in inspector.get_indexes(name)),
        )
        for name in metadata.tables
    }


def expected_schema() -> Schema:
    return {
        table.name: (
            [(column.name, column.nullable) for column in table.columns],
            [column.name for column in table.primary_key.columns],
            sorted((index.name, [column.name for column in index.columns]) for index in table.indexes),
        )
        for table in metadata.tables.values()
    }


async def test_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    """tables.py (what queries use) and the migration steps (what creates the schema) must not drift."""
    log = await DispatchLog.open(database_url)
    await log.close()
    engine = create_engine(parse_database_url(database_url))
    try:
        async with engine.connect() as connection:
            migrated = await connection.run_sync(describe_schema)
    finally:
        await engine.dispose()
    assert migrated == expected_schema()


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


# Version 1's tables as plain column lists (not tables.py, which describes the latest version), typed where a
# value needs converting on the way in.
V1_LOG = table(
    "notification_dispatch_log",
    *(column(name) for name in ("request_id", "tenant_id", "provider", "provider_message_id", "to_number")),
    *(column(name) for name in ("status", "error_code", "provider_code", "segments", "attempts", "error_message")),
    column("updated_at", DateTime(timezone=True)),
    column("metadata", JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")),
)
V1_PENDING = table(
    "notification_dispatch_pending_receipt",
    *(column(name) for name in ("provider_message_id", "status", "tenant_id", "provider_code")),
    column("received_at", DateTime(timezone=True)),
)
V1_ROWS = [
    {
        "request_id": "req-1",
        "tenant_id": "acme",
        "provider": "twilio",
        "provider_message_id": "SMreq-1",
        "to_number": "+14155552671",
        "status": "sent",
        "error_code": None,
        "provider_code": None,
        "segments": 1,
        "attempts": 1,
        "error_message": None,
        "updated_at": T0,
        "metadata": {"campaign": "spring"},
    },
    {
        "request_id": "unreadable:0123",
        "tenant_id": None,
        "provider": None,
        "provider_message_id": None,
        "to_number": None,
        "status": "failed",
        "error_code": "invalid_request",
        "provider_code": None,
        "segments": None,
        "attempts": None,
        "error_message": "not JSON",
        "updated_at": T0 + timedelta(seconds=1),
        "metadata": None,
    },
    {
        "request_id": "req-2",
        "tenant_id": "globex",
        "provider": "twilio",
        "provider_message_id": "SMreq-2",
        "to_number": "+14155552672",
        "status": "queued",
        "error_code": None,
        "provider_code": None,
        "segments": 2,
        "attempts": 1,
        "error_message": None,
        "updated_at": T0 + timedelta(seconds=2),
        "metadata": None,
    },
]
V1_PARKED = [
    # Overtook the sms.dispatched of acme's req-3, which arrives after the upgrade.
    {"provider_message_id": "SMreq-3", "status": "delivered", "tenant_id": "acme", "provider_code": None},
    {"provider_message_id": "SMorphan", "status": "sent", "tenant_id": None, "provider_code": 30003},
]


async def _rows_of(engine: AsyncEngine) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    async with engine.connect() as connection:
        log = await connection.execute(select(V1_LOG).order_by(V1_LOG.c.request_id))
        parked = await connection.execute(select(V1_PENDING).order_by(V1_PENDING.c.provider_message_id))
        return [dict(row) for row in log.mappings()], [dict(row) for row in parked.mappings()]


def _with_empty_tenant(row: dict[str, Any]) -> dict[str, Any]:
    return row | {"tenant_id": row["tenant_id"] if row["tenant_id"] is not None else ""}


async def test_migrating_a_version_1_database_with_rows_keeps_them_all_under_the_tenant_keys(
    database_url: str,
) -> None:
    engine = create_engine(parse_database_url(database_url))
    try:
        await migrate(engine, MIGRATIONS[:1])
        async with engine.begin() as connection:
            await connection.execute(insert(V1_LOG), V1_ROWS)
            await connection.execute(insert(V1_PENDING), [row | {"received_at": T0} for row in V1_PARKED])
        rows_before, parked_before = await _rows_of(engine)

        log = await DispatchLog.open(database_url)
        await log.close()

        assert await applied_versions(engine) == [1, 2]
        rows_after, parked_after = await _rows_of(engine)
        assert rows_after == [_with_empty_tenant(row) for row in rows_before]
        assert parked_after == [_with_empty_tenant(row) for row in parked_before]
        async with engine.connect() as connection:
            assert await connection.run_sync(describe_schema) == expected_schema()
    finally:
        await engine.dispose()
    assert [row["tenant_id"] for row in rows_after] == ["acme", "globex", ""]
    assert {(row["provider_message_id"], row["tenant_id"]) for row in parked_after} == {
        ("SMorphan", ""),
        ("SMreq-3", "acme"),
    }


async def test_a_version_1_database_works_under_the_new_keys_once_migrated(database_url: str) -> None:
    engine = create_engine(parse_database_url(database_url))
    try:
        await migrate(engine, MIGRATIONS[:1])
        async with engine.begin() as connection:
            await connection.execute(insert(V1_LOG), V1_ROWS)
            await connection.execute(insert(V1_PENDING), [row | {"received_at": T0} for row in V1_PARKED])
    finally:
        await engine.dispose()

    log = await DispatchLog.open(database_url)
    try:
        # The receipt parked before the upgrade lands when its outcome arrives.
        await log.record([dispatched("req-3")])
        # Another tenant may now use the same request_id, and cannot touch acme's row.
        await log.record([dispatched("req-1", tenant_id="globex", provider_message_id="SMglobex-1")])
        await log.record([receipt("failed", 9, request_id="req-1", sid="SMreq-1", tenant_id="globex")])
        req_3 = await log.get("req-3", tenant_id="acme")
        acme = await log.get("req-1", tenant_id="acme")
        globex = await log.get("req-1", tenant_id="globex")
        unreadable = await log.get("unreadable:0123", tenant_id="")
    finally:
        await log.close()
    assert req_3 is not None
    assert req_3.status == "delivered"
    assert acme is not None
    assert (acme.tenant_id, acme.status, acme.provider_message_id, acme.metadata) == (
        "acme",
        "sent",
        "SMreq-1",
        {"campaign": "spring"},
    )
    assert globex is not None
    assert (globex.provider_message_id, globex.status) == ("SMglobex-1", "queued")
    assert unreadable is not None
    assert (unreadable.status, unreadable.error_code) == ("failed", "invalid_request")
