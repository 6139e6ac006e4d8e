"""SuppressionFollower: feeds a SuppressionView from sms.suppressions, and loaded() waits for what was there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from aiokafka import TopicPartition

from smsdispatch.contract.topics import SUPPRESSIONS
from smsdispatch.core.suppressions import OptOut
from smsdispatch.runtime.followers import SuppressionFollower
from tests.core.test_suppressions import NUMBER, OTHER, opted_in, opted_out

from .fake_consumer import FakeConsumer


@pytest_asyncio.fixture
async def consumer() -> FakeConsumer:
    return FakeConsumer(topic=SUPPRESSIONS)


def publish(consumer: FakeConsumer, partition: int, change: tuple[bytes, bytes | None]) -> None:
    consumer.publish(partition, *change)


@pytest_asyncio.fixture
async def follower(consumer: FakeConsumer) -> AsyncIterator[SuppressionFollower]:
    service = SuppressionFollower("kafka://unused:9", partitions=3, consumer_factory=lambda: consumer)
    await service.start()
    try:
        yield service
    finally:
        await asyncio.wait_for(service.stop(), 5)


@pytest.mark.asyncio
async def test_loaded_returns_once_every_opt_out_already_on_the_topic_is_held(consumer: FakeConsumer) -> None:
    publish(consumer, 0, opted_out("acme", NUMBER))
    publish(consumer, 2, opted_out("globex", OTHER))
    publish(consumer, 2, opted_out("globex", NUMBER))
    publish(consumer, 2, opted_in("globex", NUMBER))
    consumer.flowing.clear()  # the first poll is slow: loaded() must wait for it
    service = SuppressionFollower("kafka://unused:9", partitions=3, consumer_factory=lambda: consumer)

    await service.start()
    try:
        loading = asyncio.create_task(service.view.loaded())
        await asyncio.sleep(0.1)
        waited_for_the_records = not loading.done()
        consumer.flowing.set()
        await asyncio.wait_for(loading, 5)
        entries = service.view.entries()
    finally:
        await asyncio.wait_for(service.stop(), 5)

    assert waited_for_the_records
    assert entries == [OptOut("acme", NUMBER), OptOut("globex", OTHER)]
    assert consumer.assigned == consumer.sought == [TopicPartition(SUPPRESSIONS, p) for p in range(3)]


@pytest.mark.asyncio
async def test_opt_outs_and_opt_ins_published_later_are_followed(
    consumer: FakeConsumer, follower: SuppressionFollower
) -> None:
    await asyncio.wait_for(follower.view.loaded(), 5)

    publish(consumer, 1, opted_out("acme", NUMBER))
    added = await eventually(lambda: follower.view.is_suppressed("acme", NUMBER))
    publish(consumer, 1, opted_in("acme", NUMBER))
    removed = await eventually(lambda: not follower.view.is_suppressed("acme", NUMBER))

    assert added
    assert removed


@pytest.mark.asyncio
async def test_while_kafka_is_away_at_start_loaded_does_not_return() -> None:
    consumer = FakeConsumer(fail_starts=1000, topic=SUPPRESSIONS)
    service = SuppressionFollower(
        "kafka://unused:9", partitions=3, consumer_factory=lambda: consumer, retry_seconds=0.02
    )
    await asyncio.wait_for(service.start(), 1)  # the app's start does not wait for Kafka
    try:
        loading = asyncio.create_task(service.view.loaded())
        await asyncio.sleep(0.2)
        still_loading = not loading.done()
        loading.cancel()
    finally:
        await asyncio.wait_for(service.stop(), 5)

    assert still_loading
    assert consumer.starts > 1


async def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.01)):
        if check():
            return True
        await asyncio.sleep(0.01)
    return False
