"""SuppressionFollower against the real broker: opt-outs before its start are loaded, later changes followed."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from smsdispatch.contract import SuppressionSource, suppression_change
from smsdispatch.contract.settings import bootstrap_servers
from smsdispatch.contract.topics import SUPPRESSIONS
from smsdispatch.runtime.followers import SuppressionFollower
from smsdispatch.runtime.topics import ensure_topics

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]


async def test_opt_outs_published_before_the_start_are_held_once_loaded_and_later_changes_followed(
    kafka_broker_url: str,
) -> None:
    await ensure_topics(kafka_broker_url, 8)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    # Enough numbers to land on most partitions (the key, tenant/number, decides the partition).
    numbers = [f"+1415555{n:04d}" for n in range(16)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(kafka_broker_url), acks="all")
    await producer.start()
    follower = SuppressionFollower(kafka_broker_url, partitions=8)
    try:
        for number in numbers:
            key, value = suppression_change(tenant, number, True, SuppressionSource.PROVIDER_21610)
            await producer.send_and_wait(SUPPRESSIONS, value, key=key)
        key, value = suppression_change(tenant, numbers[0], False)
        await producer.send_and_wait(SUPPRESSIONS, value, key=key)
        await follower.start()
        await asyncio.wait_for(follower.view.loaded(), 30)
        loaded = [number for _, number in follower.view.entries(tenant)]

        key, value = suppression_change(tenant, numbers[0], True, SuppressionSource.OPERATOR)
        await producer.send_and_wait(SUPPRESSIONS, value, key=key)
        for _ in range(500):
            if follower.view.is_suppressed(tenant, numbers[0]):
                break
            await asyncio.sleep(0.01)
        followed = follower.view.is_suppressed(tenant, numbers[0])
    finally:
        await asyncio.wait_for(follower.stop(), 10)
        await producer.stop()

    assert loaded == sorted(numbers[1:])
    assert followed
