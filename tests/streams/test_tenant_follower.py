"""TenantFollower with an in-memory consumer: every partition from the beginning, followed, into its view."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from smsdispatch.schemas import ErrorCode, ErrorInfo
from smsdispatch.streams.tenant_view import TenantFollower
from smsdispatch.streams.tenants import ReadyTenant
from smsdispatch.streams.topics import TENANTS

from .test_tenant_view import KEYRING, record

pytestmark = pytest.mark.asyncio


@dataclass(frozen=True)
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


class FakeConsumer:
    """A consumer in no group over an in-memory topic; ``None`` in a partition's log is an offset compaction
    removed. It records what it was asked to do."""

    def __init__(self, partitions: int = 3, fail_starts: int = 0, stop_cancels: bool = False) -> None:
        self.logs: dict[int, list[Record | None]] = {p: [] for p in range(partitions)}
        self.positions: dict[TopicPartition, int] = {}
        self.assigned: list[TopicPartition] = []
        self.fail_starts = fail_starts
        self.starts = 0
        self.stopped = 0
        self.sought: list[TopicPartition] = []
        self.stop_cancels = stop_cancels

    def publish(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        log = self.logs[partition]
        log.append(Record(len(log), key, value))

    def compacted(self, partition: int) -> None:
        self.logs[partition].append(None)

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= self.fail_starts:
            raise KafkaConnectionError("Unable to bootstrap from 127.0.0.1:9")

    async def stop(self) -> None:
        self.stopped += 1
        if self.stop_cancels:  # as aiokafka does when stopped right after its start (aio-libs/aiokafka#647)
            raise asyncio.CancelledError

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(self.logs) if topic == TENANTS else None

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.sought = list(partitions)
        self.positions.update(dict.fromkeys(partitions, 0))

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.logs[tp.partition]) for tp in partitions}

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def getmany(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Record]]:
        batch: dict[TopicPartition, list[Record]] = {}
        for tp in self.assigned:
            log = self.logs[tp.partition]
            if self.positions[tp] < len(log):
                batch[tp] = [found for found in log[self.positions[tp] :] if found is not None]
                self.positions[tp] = len(log)
        if not batch:
            await asyncio.sleep(0.01)  # as a long poll finding nothing
        return batch


@pytest_asyncio.fixture
async def consumer() -> FakeConsumer:
    return FakeConsumer()


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
    consumer = FakeConsumer(fail_starts=2)
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
    consumer = FakeConsumer(fail_starts=1000)
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
    consumer = FakeConsumer(fail_starts=1, stop_cancels=True)
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
