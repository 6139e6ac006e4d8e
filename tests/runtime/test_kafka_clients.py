"""The worker's Kafka clients: the lean producer send against a real broker, and the fetch loop's delivery race.

The fetch loop itself (``RewindingConsumer._drain_messages``) carries every record of every Kafka test; the
rebalance tests (tests/test_scale_out*.py) prove records survive its cancellations. Here is the race it waits
with, on its own.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.exceptions import ProducerSendError

from smsdispatch.contract.settings import Settings
from smsdispatch.runtime.app import create_app
from smsdispatch.runtime.kafka_clients import _Interruption

pytestmark = pytest.mark.asyncio


async def blocked_until_cancelled(cancelled: asyncio.Event) -> None:
    """A delivery that never finishes by itself; sets ``cancelled`` when it is cancelled."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.set()
        raise


async def test_a_delivery_that_finishes_is_waited_for_and_the_events_waiter_is_kept_for_the_next() -> None:
    interruption = _Interruption((asyncio.Event(), asyncio.Event()))
    delivered: list[int] = []

    async def deliver(n: int) -> None:
        await asyncio.sleep(0)
        delivered.append(n)

    await interruption.race(deliver(1))
    waiter = interruption._waiter
    await interruption.race(deliver(2))

    assert delivered == [1, 2]
    assert waiter is not None
    assert interruption._waiter is waiter  # one waiter, not one per delivery
    interruption.close()


async def test_a_blocked_delivery_is_cancelled_when_one_of_the_events_is_set() -> None:
    suspended = asyncio.Event()
    interruption = _Interruption((suspended, asyncio.Event()))
    cancelled = asyncio.Event()
    racing = asyncio.create_task(interruption.race(blocked_until_cancelled(cancelled)))
    await asyncio.sleep(0.01)
    assert not racing.done()
    suspended.set()
    await asyncio.wait_for(racing, 1.0)

    await asyncio.wait_for(cancelled.wait(), 1.0)
    interruption.close()


async def test_after_the_event_is_cleared_a_new_waiter_lets_blocked_deliveries_wait_again() -> None:
    suspended = asyncio.Event()
    interruption = _Interruption((suspended,))
    suspended.set()
    await interruption.race(asyncio.Event().wait())  # cancelled at once: the event is set
    suspended.clear()
    release = asyncio.Event()
    racing = asyncio.create_task(interruption.race(release.wait()))
    await asyncio.sleep(0.01)

    assert not racing.done()  # waits for the delivery again, not for the event that fired before
    release.set()
    await asyncio.wait_for(racing, 1.0)
    interruption.close()


async def test_a_deliverys_error_is_raised_to_the_fetch_loop() -> None:
    interruption = _Interruption((asyncio.Event(),))

    async def broken() -> None:
        raise ValueError("bad delivery")

    with pytest.raises(ValueError, match="bad delivery"):
        await interruption.race(broken())
    interruption.close()


async def test_cancelling_the_fetch_loop_cancels_the_delivery_it_waits_for() -> None:
    interruption = _Interruption((asyncio.Event(),))
    cancelled = asyncio.Event()
    racing = asyncio.create_task(interruption.race(blocked_until_cancelled(cancelled)))
    await asyncio.sleep(0.01)
    racing.cancel()

    with pytest.raises(asyncio.CancelledError):
        await racing
    await asyncio.wait_for(cancelled.wait(), 1.0)
    interruption.close()


@pytest_asyncio.fixture
async def producer(kafka_broker_url: str, tmp_path: Path) -> Any:
    """The app's Faust producer over a started aiokafka producer, as the worker sends with it."""
    app = create_app(Settings(broker=kafka_broker_url, data_dir=str(tmp_path))).app
    faust_producer = app.producer
    kafka_producer = faust_producer._producer = faust_producer._new_producer()
    await kafka_producer.start()
    try:
        yield faust_producer
    finally:
        await kafka_producer.stop()


@pytest_asyncio.fixture
async def topic(kafka_bootstrap: str) -> str:
    name = f"clients-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    return name


@pytest.mark.kafka
async def test_the_producers_send_lands_the_record_in_the_partition_asked_for(producer: Any, topic: str) -> None:
    first = await (await producer.send(topic, b"key", b"one", 1, None, None))
    second = await (await producer.send(topic, b"key", b"two", 1, None, None))

    assert (first.topic, first.partition, first.offset) == (topic, 1, 0)
    assert (second.partition, second.offset) == (1, 1)


@pytest.mark.kafka
async def test_the_producers_send_still_tells_listeners_of_on_produce_message(producer: Any, topic: str) -> None:
    heard: list[dict[str, Any]] = []

    def listener(sender: Any, **kwargs: Any) -> None:
        heard.append(kwargs)

    producer.app.on_produce_message.connect(listener)
    try:
        metadata = await (await producer.send(topic, b"key", b"value", 0, None, None))
    finally:
        producer.app.on_produce_message.disconnect(listener)

    assert metadata.offset == 0
    assert [(call["key"], call["value"], call["partition"]) for call in heard] == [(b"key", b"value", 0)]


@pytest.mark.kafka
async def test_a_record_kafka_refuses_to_send_is_a_producer_send_error_as_in_faust(producer: Any, topic: str) -> None:
    too_large = b"x" * (2 * 1024 * 1024)  # over the producer's max_request_size

    with pytest.raises(ProducerSendError, match="MessageSizeTooLarge"):
        await producer.send(topic, b"key", too_large, 0, None, None)
