"""A changelog table: reads see every change at once; the store gets a change, with its offset, only once Kafka
acknowledged it, and only at a checkpoint, one batch per partition."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from smsdispatch.adapters.partitions import MemoryPartitions, Records
from smsdispatch.core.changelog_table import ChangelogTable

pytestmark = pytest.mark.asyncio


@dataclass
class Metadata:
    offset: int


@dataclass
class Changelog:
    """A changelog whose writes complete when the test says so, with offsets in the order they complete."""

    sent: list[tuple[bytes, bytes | None, int]] = field(default_factory=list)
    held: list[asyncio.Future[Metadata]] = field(default_factory=list)
    next_offset: int = 100

    def __call__(self, key: bytes, value: bytes | None, partition: int) -> asyncio.Future[Metadata]:
        self.sent.append((key, value, partition))
        done: asyncio.Future[Metadata] = asyncio.get_running_loop().create_future()
        self.held.append(done)
        return done

    def acknowledge(self, n: int = 1) -> None:
        for done in [future for future in self.held if not future.done()][:n]:
            done.set_result(Metadata(self.next_offset))
            self.next_offset += 1


class Batches(MemoryPartitions):
    """Memory partitions that remember each write (batch) they were given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[int, list[tuple[bytes, bytes | None]], int]] = []

    def write(self, partition: int, records: Records, offset: int) -> None:
        records = list(records)
        self.batches.append((partition, records, offset))
        super().write(partition, records, offset)


def table() -> tuple[ChangelogTable, Changelog, Batches]:
    changelog, store = Changelog(), Batches()
    return ChangelogTable("ledger", store, changelog), changelog, store


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_change_is_read_at_once_and_reaches_the_store_only_after_its_ack_and_a_checkpoint() -> None:
    ledger, changelog, store = table()
    write = ledger.put(2, b"k", b"v1")

    assert ledger.get(b"k", 2) == b"v1"
    sending = asyncio.ensure_future(write())
    await settle()
    ledger.checkpoint()
    assert store.batches == [], "not acknowledged: not in the store"

    changelog.acknowledge()
    assert (await sending).offset == 100
    ledger.checkpoint()

    assert store.batches == [(2, [(b"k", b"v1")], 100)]
    assert (store.offset(2), store.get(2, b"k"), ledger.get(b"k", 2)) == (100, b"v1", b"v1")


async def test_acknowledged_changes_of_a_partition_land_in_one_batch_with_the_last_offset() -> None:
    ledger, changelog, store = table()
    writes = [
        ledger.put(0, b"a", b"1"),
        ledger.put(0, b"b", b"2"),
        ledger.put(1, b"c", b"3"),
        ledger.put(0, b"a", None),
    ]
    sending = [asyncio.ensure_future(write()) for write in writes]
    await settle()
    changelog.acknowledge(4)
    await asyncio.gather(*sending)

    ledger.checkpoint()

    assert sorted(store.batches) == [(0, [(b"a", b"1"), (b"b", b"2"), (b"a", None)], 103), (1, [(b"c", b"3")], 102)]
    assert (ledger.get(b"a", 0), ledger.get(b"b", 0)) == (None, b"2")


async def test_a_newer_change_still_in_flight_is_what_reads_see_after_the_older_one_is_stored() -> None:
    ledger, changelog, store = table()
    first = asyncio.ensure_future(ledger.put(0, b"k", b"old")())
    await settle()
    changelog.acknowledge()
    await first
    newer = asyncio.ensure_future(ledger.put(0, b"k", b"new")())
    await settle()

    ledger.checkpoint()

    assert store.get(0, b"k") == b"old"
    assert ledger.get(b"k", 0) == b"new"
    changelog.acknowledge()
    await newer
    ledger.checkpoint()
    assert store.get(0, b"k") == b"new"


async def test_a_failed_write_can_be_called_again_and_lands_once() -> None:
    ledger, changelog, store = table()
    write = ledger.put(0, b"k", b"v")
    attempt = asyncio.ensure_future(write())
    await settle()
    changelog.held[0].set_exception(ConnectionError("Kafka away"))
    with pytest.raises(ConnectionError):
        await attempt

    again = asyncio.ensure_future(write())
    await settle()
    changelog.acknowledge()
    await again
    ledger.checkpoint()

    assert len(changelog.sent) == 2
    assert store.batches == [(0, [(b"k", b"v")], 100)]


async def test_a_released_partition_keeps_what_was_acknowledged_and_forgets_the_rest() -> None:
    ledger, changelog, store = table()
    acked = asyncio.ensure_future(ledger.put(4, b"acked", b"1")())
    await settle()
    changelog.acknowledge()
    await acked
    late = asyncio.ensure_future(ledger.put(4, b"late", b"2")())
    await settle()

    ledger.release(4)
    changelog.acknowledge()
    await late
    ledger.checkpoint()

    assert store.batches == [(4, [(b"acked", b"1")], 100)]
    assert ledger.get(b"late", 4) is None, "the next owner restores it from the changelog"


async def test_a_scan_walks_the_store_with_the_changes_made_since_in_place() -> None:
    ledger, _, store = table()
    store.write(0, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")], offset=5)
    store.write(1, [(b"d", b"4")], offset=6)
    ledger.put(0, b"b", None)
    ledger.put(0, b"c", b"changed")
    ledger.put(1, b"e", b"new")  # not in the store yet: found after the next checkpoint

    first, cursor = ledger.scan(None, 2)
    rest, end = ledger.scan(cursor, 10)

    assert first == [(b"a", b"1"), (b"c", b"changed")]
    assert rest == [(b"d", b"4")]
    assert end is None


async def test_get_without_a_partition_looks_in_every_partition_held() -> None:
    ledger, _, store = table()
    store.write(6, [(b"k", b"stored")], offset=1)
    ledger.put(3, b"m", b"in memory")

    assert (ledger.get(b"k"), ledger.get(b"m"), ledger.get(b"x")) == (b"stored", b"in memory", None)
