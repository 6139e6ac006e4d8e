"""Restoring a partition of the worker's tables from their changelogs, against the real broker: from the offset
the store holds to the end taken at the start, bounded, cancellable, and starting over when the store is ahead."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from smsdispatch.adapters.partitions import MemoryPartitions, RocksPartitions
from smsdispatch.runtime.restore import RestoreFailed, restore_partition
from smsdispatch.runtime.state import WorkerState, changelog_topic

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]

PARTITION = 2


async def changelog(bootstrap: str, records: list[tuple[bytes, bytes | None]], name: str | None = None) -> str:
    """A new 4-partition changelog topic holding ``records`` in partition 2; returns its name."""
    topic = name or f"restore-{uuid.uuid4().hex[:8]}-ledger-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    await produce(bootstrap, topic, records)
    return topic


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key, partition=PARTITION) for key, value in records]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def consumers(bootstrap: str) -> Callable[[], AIOKafkaConsumer]:
    return lambda: AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)


def entries(n: int) -> list[tuple[bytes, bytes | None]]:
    return [(b"k%04d" % i, b"v%04d" % i) for i in range(n)]


class Starved:
    """A consumer whose reads return nothing after the first ``batches`` that held records (or, with ``hold``,
    block until cancelled)."""

    def __init__(self, consumer: AIOKafkaConsumer, batches: int = 0, hold: asyncio.Event | None = None) -> None:
        self._consumer = consumer
        self._left = batches
        self._hold = hold

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)

    async def getmany(self, *partitions: Any, **kwargs: Any) -> dict[Any, list[Any]]:
        if self._left > 0:
            got = dict(await self._consumer.getmany(*partitions, **kwargs))
            self._left -= any(got.values())  # a batch counts once it held records
            return got
        if self._hold is not None:
            self._hold.set()
            await asyncio.Event().wait()
        await asyncio.sleep(0.1)
        return {}


async def test_an_empty_store_is_restored_to_the_latest_value_of_every_key(kafka_bootstrap: str) -> None:
    records = [*entries(300), (b"k0001", b"changed"), (b"k0002", None)]
    topic = await changelog(kafka_bootstrap, records)
    store = MemoryPartitions()

    restored = await restore_partition(consumers(kafka_bootstrap), {topic: store}, PARTITION, max_records=100)

    assert restored.records == {topic: 302}
    assert store.offset(PARTITION) == 301
    assert store.get(PARTITION, b"k0001") == b"changed"
    assert store.get(PARTITION, b"k0002") is None
    assert store.get(PARTITION, b"k0299") == b"v0299"


async def test_a_store_holding_an_offset_reads_only_what_came_after_it(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = await changelog(kafka_bootstrap, entries(100))
    store = RocksPartitions(tmp_path, "ledger")
    store.write(PARTITION, entries(60), offset=59)
    try:
        restored = await restore_partition(consumers(kafka_bootstrap), {topic: store}, PARTITION)
        assert restored.records == {topic: 40}
        assert (store.offset(PARTITION), store.get(PARTITION, b"k0099")) == (99, b"v0099")
        again = await restore_partition(consumers(kafka_bootstrap), {topic: store}, PARTITION)
        assert again.records == {topic: 0}, "up to date: nothing to read"
    finally:
        store.close()


async def test_a_store_ahead_of_its_changelog_is_wiped_and_restored_from_the_beginning(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = await changelog(kafka_bootstrap, entries(10))
    store = MemoryPartitions()
    store.write(PARTITION, [(b"stale", b"from another changelog")], offset=5_000)

    restored = await restore_partition(consumers(kafka_bootstrap), {topic: store}, PARTITION)

    assert restored.records == {topic: 10}
    assert store.get(PARTITION, b"stale") is None
    assert store.offset(PARTITION) == 9
    assert "past the changelog's end 10" in caplog.text


async def test_a_restore_that_reads_nothing_fails_naming_the_changelog_partition(kafka_bootstrap: str) -> None:
    topic = await changelog(kafka_bootstrap, entries(50))
    starved = consumers(kafka_bootstrap)

    with pytest.raises(RestoreFailed, match=rf"nothing read for 1 s: {topic}\[{PARTITION}\] at offset 0 of 50"):
        await restore_partition(lambda: Starved(starved()), {topic: MemoryPartitions()}, PARTITION, stall_seconds=1)


async def test_a_cancelled_restore_keeps_what_it_wrote_and_the_next_goes_on_from_there(kafka_bootstrap: str) -> None:
    topic = await changelog(kafka_bootstrap, entries(500))
    store, holding = MemoryPartitions(), asyncio.Event()
    fresh = consumers(kafka_bootstrap)
    restoring = asyncio.ensure_future(
        restore_partition(lambda: Starved(fresh(), batches=1, hold=holding), {topic: store}, PARTITION, max_records=100)
    )
    await asyncio.wait_for(holding.wait(), 30)

    restoring.cancel()
    with pytest.raises(asyncio.CancelledError):
        await restoring
    kept = store.offset(PARTITION)
    rest = await restore_partition(fresh, {topic: store}, PARTITION)

    assert kept is not None
    assert 0 <= kept < 499
    assert rest.records == {topic: 499 - kept}
    assert store.get(PARTITION, b"k0499") == b"v0499"


async def test_the_worker_state_restores_what_it_gains_and_a_record_waits_only_for_its_own_partition(
    kafka_bootstrap: str,
) -> None:
    app_id = f"state-{uuid.uuid4().hex[:8]}"
    for table in ("ledger", "polls", "webhooks"):
        await changelog(kafka_bootstrap, entries(20) if table == "ledger" else [], changelog_topic(app_id, table))
    gate = asyncio.Event()
    fresh = consumers(kafka_bootstrap)
    calls = 0

    def new_consumer() -> Any:
        nonlocal calls
        calls += 1
        consumer = fresh()
        return Starved(consumer, batches=10**6) if calls > 1 else _Gated(consumer, gate)

    state = WorkerState(app_id, _no_writes, new_consumer, data_dir=None)
    state.assigned([PARTITION, 3])
    await asyncio.wait_for(state.ready(3), 30)
    waiting = asyncio.ensure_future(state.ready(PARTITION))
    await asyncio.sleep(0.2)

    assert not waiting.done(), "partition 2's restore is held"
    assert state.restored() == {3}
    gate.set()
    await asyncio.wait_for(waiting, 30)
    assert state.table("ledger").get(b"k0019", PARTITION) == b"v0019"
    state.assigned([3])
    assert state.restored() == {3}
    await state.close()


class _Gated(Starved):
    """A consumer that starts only once ``gate`` is set."""

    def __init__(self, consumer: AIOKafkaConsumer, gate: asyncio.Event) -> None:
        super().__init__(consumer, batches=10**6)
        self._gate = gate

    async def start(self) -> None:
        await self._gate.wait()
        await self._consumer.start()


def _no_writes(topic: str) -> Callable[[bytes, bytes | None, int], Awaitable[Any]]:
    async def write(key: bytes, value: bytes | None, partition: int) -> Any:
        raise AssertionError(f"nothing is written to {topic} here")

    return write
