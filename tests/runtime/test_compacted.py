"""CompactedFollower with an in-memory consumer: what it hands its sink, and when loading is over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from smsdispatch.runtime.compacted import CompactedFollower

from .fake_consumer import FakeConsumer

pytestmark = pytest.mark.asyncio

TOPIC = "t.compacted"


class Sink:
    """Records what it is given: the applied records and the furthest position per partition."""

    def __init__(self) -> None:
        self.applied: list[tuple[int, int, bytes | None, bytes | None]] = []
        self.positions: dict[int, int] = {}

    def apply(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        self.applied.append((partition, offset, key, value))

    def reached(self, partition: int, position: int) -> None:
        self.positions[partition] = max(position, self.positions.get(partition, 0))

    def __len__(self) -> int:
        return len(self.applied)


@asynccontextmanager
async def following(consumer: FakeConsumer, sink: Sink) -> AsyncIterator[CompactedFollower]:
    follower = CompactedFollower(
        "kafka://unused:9",
        sink,
        topic=TOPIC,
        partitions=len(consumer.logs),
        label="the test view",
        consumer_factory=lambda: consumer,
        retry_seconds=0.05,
    )
    await follower.start()
    try:
        yield follower
    finally:
        await asyncio.wait_for(follower.stop(), 5)


async def test_records_reach_the_sink_in_partition_order_tombstones_included() -> None:
    consumer, sink = FakeConsumer(topic=TOPIC), Sink()
    consumer.publish(0, b"a", b"1")
    consumer.publish(0, b"a", None)
    consumer.publish(2, b"b", b"2")

    async with following(consumer, sink) as follower:
        await asyncio.wait_for(follower.loaded(), 5)

    assert [entry for entry in sink.applied if entry[0] == 0] == [(0, 0, b"a", b"1"), (0, 1, b"a", None)]
    assert (2, 0, b"b", b"2") in sink.applied
    assert sink.positions == {0: 2, 1: 0, 2: 1}


async def test_an_empty_topic_is_loaded_as_soon_as_it_is_open() -> None:
    async with following(FakeConsumer(topic=TOPIC), Sink()) as follower:
        await asyncio.wait_for(follower.loaded(), 1)

        assert follower.is_loaded


async def test_loading_is_not_over_until_every_record_on_the_topic_at_the_start_is_applied() -> None:
    consumer, sink = FakeConsumer(topic=TOPIC), Sink()
    consumer.publish(1, b"a", b"1")
    consumer.flowing.clear()  # the broker is slow to answer the first poll

    async with following(consumer, sink) as follower:
        loading = asyncio.create_task(follower.loaded())
        await asyncio.sleep(0.1)
        waited = not loading.done()
        consumer.flowing.set()
        await asyncio.wait_for(loading, 5)

    assert waited
    assert sink.applied == [(1, 0, b"a", b"1")]


async def test_records_published_after_the_start_are_followed_but_not_waited_for() -> None:
    consumer, sink = FakeConsumer(topic=TOPIC), Sink()

    async with following(consumer, sink) as follower:
        await asyncio.wait_for(follower.loaded(), 5)
        consumer.publish(0, b"late", b"1")
        for _ in range(100):
            if sink.applied:
                break
            await asyncio.sleep(0.01)

    assert sink.applied == [(0, 0, b"late", b"1")]


async def test_a_partition_whose_records_are_all_gone_is_read_to_its_end_while_loading() -> None:
    consumer, sink = FakeConsumer(topic=TOPIC), Sink()
    consumer.deleted_up_to(1, 5)  # no record left to return, yet its end is offset 5

    async with following(consumer, sink) as follower:
        await asyncio.wait_for(follower.loaded(), 2)

    assert sink.positions[1] == 5


async def test_while_kafka_is_away_loading_is_not_over_and_it_is_once_kafka_answers() -> None:
    consumer, sink = FakeConsumer(fail_starts=3, topic=TOPIC), Sink()
    consumer.publish(0, b"a", b"1")

    async with following(consumer, sink) as follower:
        early = asyncio.create_task(follower.loaded())
        await asyncio.sleep(0.02)
        not_yet = not early.done()
        await asyncio.wait_for(early, 5)

    assert not_yet
    assert consumer.starts == 4
    assert sink.applied == [(0, 0, b"a", b"1")]


async def test_a_follower_stopped_before_loading_never_says_it_loaded() -> None:
    consumer = FakeConsumer(fail_starts=1000, topic=TOPIC)

    async with following(consumer, Sink()) as follower:
        await asyncio.sleep(0.05)
    loading = asyncio.create_task(follower.loaded())
    await asyncio.sleep(0.05)

    assert not loading.done()  # a caller acting on "loaded" would act on a partial view
    loading.cancel()
