"""Smoke tests: the real broker and the real PostgreSQL server that every other suite relies on work."""

from __future__ import annotations

import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import create_async_engine


@pytest.mark.kafka
@pytest.mark.asyncio
async def test_json_record_produced_with_aiokafka_is_consumed_back_from_the_real_broker(
    kafka_bootstrap: str,
) -> None:
    topic = f"smoke.{uuid.uuid4().hex}"
    sent = {"request_id": "smoke-1", "tenant_id": "acme", "body": "héllo ✓"}
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        # The broker auto-creates the fresh topic on this first produce.
        await producer.send_and_wait(topic, json.dumps(sent).encode(), key=b"acme")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"smoke-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=30_000, max_records=10)
    finally:
        await consumer.stop()

    records = [record for batch in batches.values() for record in batch]
    assert [(r.key, json.loads(r.value)) for r in records if r.value is not None] == [(b"acme", sent)]


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_row_written_through_sqlalchemy_async_reads_back_from_postgres(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://")
    table = Table(
        f"smoke_{uuid.uuid4().hex[:12]}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("body", String(200), nullable=False),
    )
    engine = create_async_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(table.create)
            await connection.execute(insert(table).values(id=1, body="héllo ✓"))
        async with engine.connect() as connection:
            rows = (await connection.execute(select(table.c.id, table.c.body))).all()
            dialect = connection.dialect.name
        async with engine.begin() as connection:
            await connection.run_sync(table.drop)
    finally:
        await engine.dispose()

    assert dialect == "postgresql"
    assert [tuple(row) for row in rows] == [(1, "héllo ✓")]
