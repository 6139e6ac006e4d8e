"""RangeReader against the real broker: exactly the records of a range of offsets, in order."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from smsdispatch.contract.settings import bootstrap_servers
from smsdispatch.runtime.range_reader import RangeReader

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]


async def test_a_range_of_offsets_reads_exactly_its_records_in_order(kafka_broker_url: str) -> None:
    topic = f"range-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(kafka_broker_url))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(kafka_broker_url))
    await producer.start()
    try:
        for n in range(6):
            await producer.send_and_wait(topic, f"v{n}".encode(), key=b"k", partition=1)
    finally:
        await producer.stop()
    reader = RangeReader(kafka_broker_url)
    try:
        middle = await reader.read(topic, 1, 2, 5)
        empty = await reader.read(topic, 0, 0, 0)
        again = await reader.read(topic, 1, 0, 1)
    finally:
        await reader.close()

    assert [(record.offset, record.value) for record in middle] == [(2, b"v2"), (3, b"v3"), (4, b"v4")]
    assert empty == []
    assert [record.value for record in again] == [b"v0"]
