"""TenantFollower with an in-memory consumer: every partition from the beginning, followed, into its view."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiokafka import TopicPartition

from smsdispatch.contract import ErrorCode, ErrorInfo
from smsdispatch.contract.topics import TENANTS
from smsdispatch.core.tenants import ReadyTenant
from smsdispatch.runtime.followers import TenantFollower
from tests.core.test_tenant_view import KEYRING, record

from .fake_consumer import FakeConsumer

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def consumer() -> FakeConsumer:
    return FakeConsumer(topic=TENANTS)


@pytest_asyncio.fixture
async def follower(consumer: FakeConsumer) -> AsyncIterator[TenantFollower]:
    service = TenantFollower(
        "kafka://unused:9", KEYRING.unseal, partitions=3, wait=5, consumer_factory=lambda: consumer
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def lookup(follower: TenantFollower, tenant_id: str) -> ReadyTenant | ErrorInfo:
    return await asyncio.wait_for(follower.view.lookup(tenant_id), 5)


async def test_every_partition_is_read_from_its_beginning_without_a_group(consumer: FakeConsumer) -> None:
    consumer.publish(0, b"acme", record("acme"))
    consumer.publish(2, b"globex", record("globex"))
    service = TenantFollower("kafka://unused:9", KEYRING.unseal, partitions=3, consumer_factory=lambda: consumer)

    await service.start()
    try:
        answers = [await lookup(service, name) for name in ("acme", "globex")]
    finally:
        await service.stop()

    expected = [TopicPartition(TENANTS, p) for p in range(3)]
    assert consumer.assigned == expected
    assert consumer.sought == expected
    assert all(isinstance(answer, ReadyTenant) for answer in answers), answers


async def test_records_published_later_are_followed(consumer: FakeConsumer, follower: TenantFollower) -> None:
    assert isinstance(await lookup(follower, "ghost"), ErrorInfo)

    consumer.publish(1, b"acme", record("acme", creds="first"))
    first = await lookup(follower, "acme")
    consumer.publish(1, b"acme", record("acme", creds="second"))
    await asyncio.wait_for(follower.view.caught_up(), 5)
    second = await lookup(follower, "acme")

    assert isinstance(first, ReadyTenant)
    assert isinstance(second, ReadyTenant)
    assert (first.config.signing_token, second.config.signing_token) == ("first", "second")


async def test_a_tombstone_removes_the_tenant(consumer: FakeConsumer, follower: TenantFollower) -> None:
    consumer.publish(1, b"acme", record("acme"))
    assert isinstance(await lookup(follower, "acme"), ReadyTenant)

    consumer.publish(1, b"acme", None)
    await asyncio.wait_for(follower.view.caught_up(), 5)
    answer = await lookup(follower, "acme")

    assert isinstance(answer, ErrorInfo)
    assert answer.code is ErrorCode.UNKNOWN_TENANT


async def test_a_partition_ending_in_compacted_offsets_is_caught_up(consumer: FakeConsumer) -> None:
    consumer.publish(0, b"acme", record("acme"))
    consumer.compacted(0)
    consumer.compacted(0)
    service = TenantFollower(
        "kafka://unused:9", KEYRING.unseal, partitions=3, wait=5, consumer_factory=lambda: consumer
    )

    await service.start()
    try:
        caught_up = await asyncio.wait_for(service.view.caught_up(), 5)
    finally:
        await service.stop()

    assert caught_up


async def test_a_broker_away_at_start_is_retried_and_the_app_start_does_not_wait_for_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = FakeConsumer(fail_starts=2, topic=TENANTS)
    consumer.publish(0, b"acme", record("acme"))
    service = TenantFollower(
        "kafka://unused:9", KEYRING.unseal, partitions=3, wait=5, consumer_factory=lambda: consumer, retry_seconds=0.05
    )

    await asyncio.wait_for(service.start(), 1)
    try:
        answer = await lookup(service, "acme")
    finally:
        await service.stop()

    assert isinstance(answer, ReadyTenant)
    assert consumer.starts == 3
    assert consumer.stopped == 3  # each consumer that failed to open, and the one that ran
    assert "following sms.tenants failed (KafkaConnectionError)" in caplog.text


async def test_stopping_stops_the_consumer_and_the_view_stops_asking_it(consumer: FakeConsumer) -> None:
    service = TenantFollower("kafka://unused:9", KEYRING.unseal, partitions=3, consumer_factory=lambda: consumer)
    await service.start()
    await asyncio.wait_for(service.view.caught_up(), 5)

    await asyncio.wait_for(service.stop(), 5)

    assert consumer.stopped == 1
    # Answered at once (well within its 2 s bound), without asking the closed consumer anything.
    assert not await asyncio.wait_for(service.view.caught_up(), 1)


async def test_until_the_consumer_is_open_a_lookup_waits_no_longer_than_the_bound() -> None:
    consumer = FakeConsumer(fail_starts=1000, topic=TENANTS)
    service = TenantFollower(
        "kafka://unused:9",
        KEYRING.unseal,
        partitions=3,
        wait=0.2,
        consumer_factory=lambda: consumer,
        retry_seconds=0.05,
    )
    await service.start()
    try:
        answer = await asyncio.wait_for(service.view.lookup("acme"), 2)
    finally:
        await service.stop()

    assert isinstance(answer, ErrorInfo)


async def test_the_cancellation_aiokafka_raises_from_a_stop_after_a_failed_start_does_not_end_the_follower() -> None:
    consumer = FakeConsumer(fail_starts=1, stop_cancels=True, topic=TENANTS)
    consumer.publish(0, b"acme", record("acme"))
    service = TenantFollower(
        "kafka://unused:9", KEYRING.unseal, partitions=3, wait=5, consumer_factory=lambda: consumer, retry_seconds=0.05
    )
    await service.start()
    try:
        answer = await lookup(service, "acme")
    finally:
        await asyncio.wait_for(service.stop(), 5)

    assert isinstance(answer, ReadyTenant)
    assert consumer.starts == 2
