"""The project's producer against a real broker: a topic it writes never falls out of its metadata, and metadata
refreshes for a partition without a leader stay one per retry backoff (issue 22: a worker stopped publishing
outcomes while its producer asked for metadata about 470 times a second).

The stall is made deterministic by holding the first write in the producer (a long linger) while the producer
writes, for the first time, to a topic created after its metadata was fetched whole.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from smsdispatch.adapters.kafka import TopicTrackingProducer

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]

#: Long enough for the second write's metadata answer to land while the first write still lingers.
HELD_MS = 1500


async def create_topics(bootstrap: str, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1) for name in names])
    finally:
        await admin.close()


def metadata_requests(producer: Any) -> Callable[[], int]:
    """Counts the metadata requests ``producer`` sends from now on (its client's one sending method, wrapped)."""
    sent = 0
    update: Callable[..., Awaitable[Any]] = producer.client._metadata_update

    async def counted(*args: Any) -> Any:
        nonlocal sent
        sent += 1
        return await update(*args)

    producer.client._metadata_update = counted
    return lambda: sent


@pytest_asyncio.fixture
async def known_topic(kafka_bootstrap: str) -> str:
    name = f"known-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, name)
    return name


async def started(producer: Any, kafka_bootstrap: str) -> str:
    """Start ``producer``, fetch its metadata whole (as Faust's create_topic does, faust #499), then create a topic
    it has not seen; returns that topic's name."""
    await producer.start()
    await producer.client.force_metadata_update()
    later = f"later-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, later)
    return later


@pytest_asyncio.fixture
async def plain(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    # Expires the held write soon after the test looked, so that stopping does not wait a minute for it.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=HELD_MS, request_timeout_ms=10_000)
    try:
        yield producer
    finally:
        await producer.stop()


@pytest_asyncio.fixture
async def tracking(kafka_bootstrap: str) -> AsyncIterator[TopicTrackingProducer]:
    producer = TopicTrackingProducer(bootstrap_servers=kafka_bootstrap, linger_ms=HELD_MS, request_timeout_ms=10_000)
    try:
        yield producer
    finally:
        await producer.stop()


async def test_aiokafkas_producer_loses_a_written_topic_from_its_metadata_and_its_write_waits_asking_without_pause(
    plain: AIOKafkaProducer, kafka_bootstrap: str, known_topic: str
) -> None:
    """The cause of issue 22, in aiokafka 0.14.0 itself. If this starts failing, aiokafka fixed it: drop the
    workaround in smsdispatch/adapters/kafka/_producer.py."""
    later = await started(plain, kafka_bootstrap)
    held = await plain.send(known_topic, b"outcome", partition=0)
    await (await plain.send(later, b"first write to a new topic", partition=0))
    requests = metadata_requests(plain)

    done, _ = await asyncio.wait([held], timeout=HELD_MS / 1000 + 3)

    assert not done, "the held write went out"
    assert plain.client.cluster.partitions_for_topic(known_topic) is None
    assert requests() > 200, "asked again at once, each time"


async def test_a_write_held_while_a_new_topic_is_first_written_is_delivered(
    tracking: TopicTrackingProducer, kafka_bootstrap: str, known_topic: str
) -> None:
    later = await started(tracking, kafka_bootstrap)
    held = await tracking.send(known_topic, b"outcome", partition=0)
    await (await tracking.send(later, b"first write to a new topic", partition=0))

    metadata = await asyncio.wait_for(held, HELD_MS / 1000 + 3)

    assert (metadata.topic, metadata.partition) == (known_topic, 0)
    assert tracking.client.cluster.partitions_for_topic(known_topic) is not None
    assert len(tracking.pending) == 0


async def test_a_partition_without_leader_is_asked_about_once_per_retry_backoff_and_its_write_waits_visibly(
    kafka_bootstrap: str, known_topic: str
) -> None:
    producer = TopicTrackingProducer(bootstrap_servers=kafka_bootstrap, linger_ms=HELD_MS, retry_backoff_ms=100)
    await producer.start()
    try:
        await (await producer.send(known_topic, b"first", partition=1))
        other = f"other-{uuid.uuid4().hex[:8]}"
        await create_topics(kafka_bootstrap, other)
        held = await producer.send(known_topic, b"second", partition=1)
        # Whatever makes a topic leave the producer's metadata while a write to it is queued (here: the tracked
        # set replaced by hand), that write finds no leader until the topic is tracked again.
        await producer.client.set_topics([other])
        requests = metadata_requests(producer)

        await asyncio.sleep(HELD_MS / 1000 + 2.0)

        assert not held.done()
        assert requests() <= (HELD_MS / 1000 + 2.0) / 0.1 + 3, f"{requests()} metadata requests in 3.5 s"
        assert requests() >= 5, "it keeps asking"
        assert producer.waiting_for(known_topic, 1) == "the topic's metadata (not in the producer's metadata)"
        assert producer.pending.oldest_age() >= 3.5
        producer.client.add_topic(known_topic)
        assert (await asyncio.wait_for(held, 5)).partition == 1
        assert producer.waiting_for(known_topic, 1) == "an answer from broker 1"
    finally:
        await producer.stop()
