"""The ledger's behaviour on each of its stores: the worker's changelog table over RocksDB files by partition (the
default) or over memory, and a plain mapping (tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smsdispatch.adapters.partitions import MemoryPartitions, PartitionStore, RocksPartitions
from smsdispatch.core.changelog_table import ChangelogTable
from smsdispatch.core.ledger import Ledger, LedgerEntry, ledger_key
from smsdispatch.core.ledger_store import LedgerStore, MappingStore
from smsdispatch.tools.testing.ledger import InMemoryChangelog

pytestmark = pytest.mark.asyncio

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=7)


@dataclass
class Backend:
    store: LedgerStore
    partitions: PartitionStore | None
    changelog: InMemoryChangelog


@pytest.fixture(params=["rocksdb", "memory", "mapping"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    changelog = InMemoryChangelog()
    if request.param == "mapping":
        yield Backend(MappingStore({}, changelog), None, changelog)
        return
    partitions: PartitionStore = (
        RocksPartitions(tmp_path, "ledger") if request.param == "rocksdb" else MemoryPartitions()
    )
    try:
        yield Backend(ChangelogTable("ledger", partitions, changelog), partitions, changelog)
    finally:
        partitions.close()


def entry(at: datetime = T0, partition: int = 3, state: str = "done") -> LedgerEntry:
    return LedgerEntry.model_validate({"state": state, "partition": partition, "at": at})


async def test_a_marked_entry_reads_back_equal_and_a_later_mark_replaces_it(backend: Backend) -> None:
    ledger = Ledger(backend.store)
    key = ledger_key("acme", "r-1")

    await ledger.mark(key, entry(state="sending"))
    await ledger.mark(key, entry())

    assert ledger.get(key) == entry()
    ledger.checkpoint()
    assert ledger.get(key) == entry(), "and from the store, once checkpointed"
    assert ledger.get(ledger_key("acme", "r-unknown")) is None


async def test_entries_of_different_partitions_are_found_wherever_they_live(backend: Backend) -> None:
    ledger = Ledger(backend.store)
    for partition in range(4):
        await ledger.mark(ledger_key("acme", f"r-{partition}"), entry(partition=partition))
    ledger.checkpoint()

    assert [ledger.get(ledger_key("acme", f"r-{p}")) for p in range(4)] == [entry(partition=p) for p in range(4)]
    if backend.partitions is not None:
        assert backend.partitions.partitions() == [0, 1, 2, 3], "each entry is in its own partition's store"


async def test_an_entry_is_found_in_the_partition_it_was_written_to_when_the_caller_names_it(backend: Backend) -> None:
    ledger = Ledger(backend.store)
    key = ledger_key("acme", "r-1")
    await ledger.mark(key, entry(partition=2))
    await ledger.mark(ledger_key("acme", "r-0"), entry(partition=1))
    ledger.checkpoint()

    assert ledger.get(key, 2) == entry(partition=2)
    assert ledger.get(ledger_key("acme", "r-unknown"), 2) is None
    if backend.partitions is not None:  # a mapping has one namespace; a partitioned store looks where it is told
        assert ledger.get(key, 1) is None


async def test_expiry_drops_old_entries_with_tombstones_and_keeps_young_ones(backend: Backend) -> None:
    ledger = Ledger(backend.store)
    old, young = ledger_key("acme", "r-old"), ledger_key("acme", "r-young")
    await ledger.mark(old, entry(at=T0, partition=5))
    await ledger.mark(young, entry(at=T0 + timedelta(days=2), partition=1))
    ledger.checkpoint()  # a scan finds what the store holds
    before = len(backend.changelog.writes)

    tombstones = ledger.expire(RETENTION, now=T0 + RETENTION + timedelta(seconds=1))
    await asyncio.gather(*(write() for write in tombstones))

    assert ledger.get(old) is None
    assert ledger.get(young) is not None
    assert backend.changelog.writes[before:] == [(old, None, 5)]
    assert ledger.swept


async def test_expiry_examines_at_most_limit_entries_per_call_and_goes_on_where_it_stopped(backend: Backend) -> None:
    ledger = Ledger(backend.store)
    for n in range(25):
        await ledger.mark(ledger_key("acme", f"r-{n:02d}"), entry(at=T0, partition=n % 3))
    ledger.checkpoint()
    later = T0 + RETENTION * 2

    rounds = []
    while True:
        rounds.append(len(ledger.expire(RETENTION, now=later, limit=10)))
        if ledger.swept:
            break

    assert rounds == [10, 10, 5]
    assert all(ledger.get(ledger_key("acme", f"r-{n:02d}")) is None for n in range(25))


async def test_expiry_leaves_entries_of_partitions_this_worker_does_not_own(backend: Backend) -> None:
    ledger = Ledger(backend.store)
    await ledger.mark(ledger_key("acme", "r-mine"), entry(partition=1))
    await ledger.mark(ledger_key("acme", "r-theirs"), entry(partition=2))
    ledger.checkpoint()

    tombstones = ledger.expire(RETENTION, now=T0 + RETENTION * 2, owned={1}.__contains__)

    assert len(tombstones) == 1
    assert ledger.get(ledger_key("acme", "r-theirs")) is not None


async def test_an_unreadable_entry_is_kept_and_reads_as_sending(backend: Backend) -> None:
    ledger = Ledger(backend.store)
    corrupt = ledger_key("acme", "r-corrupt")
    await backend.store.put(0, corrupt, b"not a ledger entry")()
    await ledger.mark(ledger_key("acme", "r-old"), entry(at=T0, partition=0))
    ledger.checkpoint()

    tombstones = ledger.expire(RETENTION, now=T0 + RETENTION * 2)

    assert len(tombstones) == 1
    found = ledger.get(corrupt)
    assert found is not None
    assert found.state == "sending"


async def test_the_changelog_offset_of_the_last_write_is_stored_with_the_entries(backend: Backend) -> None:
    ledger = Ledger(backend.store)
    for n in range(3):
        await ledger.mark(ledger_key("acme", f"r-{n}"), entry(partition=2))
    await ledger.mark(ledger_key("acme", "r-other"), entry(partition=6))
    ledger.checkpoint()

    if backend.partitions is not None:
        assert (backend.partitions.offset(2), backend.partitions.offset(6)) == (2, 0)
    expired = ledger.expire(RETENTION, now=T0 + RETENTION * 2)
    assert len(expired) == 4, "the offset is never taken for an entry"


async def test_the_size_is_known_without_reading_every_entry(backend: Backend) -> None:
    ledger = Ledger(backend.store)
    for n in range(20):
        await ledger.mark(ledger_key("acme", f"r-{n}"), entry(partition=n % 2))
    ledger.checkpoint()

    assert 15 <= len(ledger) <= 25  # RocksDB estimates
