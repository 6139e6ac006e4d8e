"""The ledger's behaviour on both of its stores: RocksDB files by partition (the default) and memory."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rocksdict import Options, Rdict

from smsdispatch.core.ledger import Ledger, LedgerEntry, ledger_key
from smsdispatch.core.ledger_store import FAUST_OFFSET_KEY, LedgerStore, MappingStore, RocksStore
from smsdispatch.tools.testing.ledger import InMemoryChangelog

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=7)


class RocksPartitions:
    """One rocksdict database per partition under a directory, as Faust's RocksDB store keeps them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dbs: dict[int, Rdict] = {}
        self.persisted: dict[int, int] = {}

    def db(self, partition: int) -> Rdict:
        if partition not in self.dbs:
            self.dbs[partition] = Rdict(str(self.root / f"ledger-{partition}.db"), Options(raw_mode=True))
        return self.dbs[partition]

    def persist(self, partition: int, offset: int) -> None:
        self.db(partition).put(FAUST_OFFSET_KEY, str(offset).encode())
        self.persisted[partition] = offset

    def store(self) -> RocksStore:
        return RocksStore(self.db, lambda: list(self.dbs), self.persist)

    def close(self) -> None:
        for db in self.dbs.values():
            db.close()


@dataclass
class Backend:
    store: LedgerStore
    rocks: RocksPartitions | None


@pytest.fixture(params=["rocksdb", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend(MappingStore({}), None)
        return
    rocks = RocksPartitions(tmp_path)
    try:
        yield Backend(rocks.store(), rocks)
    finally:
        rocks.close()


class OffsetChangelog(InMemoryChangelog):
    """Acknowledges each write with its offset in its partition, as Kafka's RecordMetadata does."""

    @dataclass
    class Metadata:
        offset: int

    def __call__(self, key: bytes, value: bytes | None, partition: int) -> asyncio.Future[Metadata]:  # type: ignore[override]
        self.writes.append((key, value, partition))
        future: asyncio.Future[OffsetChangelog.Metadata] = asyncio.get_running_loop().create_future()
        future.set_result(self.Metadata(sum(1 for *_, p in self.writes if p == partition) - 1))
        return future


def entry(at: datetime = T0, partition: int = 3, state: str = "done") -> LedgerEntry:
    return LedgerEntry.model_validate({"state": state, "partition": partition, "at": at})


@pytest.mark.asyncio
async def test_a_marked_entry_reads_back_equal_and_a_later_mark_replaces_it(backend: Backend) -> None:
    ledger = Ledger(backend.store, InMemoryChangelog())
    key = ledger_key("acme", "r-1")

    await ledger.mark(key, entry(state="sending"))
    await ledger.mark(key, entry())

    assert ledger.get(key) == entry()
    assert ledger.get(ledger_key("acme", "r-unknown")) is None


@pytest.mark.asyncio
async def test_entries_of_different_partitions_are_found_wherever_they_live(backend: Backend) -> None:
    ledger = Ledger(backend.store, InMemoryChangelog())
    for partition in range(4):
        await ledger.mark(ledger_key("acme", f"r-{partition}"), entry(partition=partition))

    assert [ledger.get(ledger_key("acme", f"r-{p}")) for p in range(4)] == [entry(partition=p) for p in range(4)]
    if backend.rocks is not None:
        assert sorted(backend.rocks.dbs) == [0, 1, 2, 3], "each entry is in its own partition's database"


@pytest.mark.asyncio
async def test_an_entry_is_found_in_the_partition_it_was_written_to_when_the_caller_names_it(backend: Backend) -> None:
    ledger = Ledger(backend.store, InMemoryChangelog())
    key = ledger_key("acme", "r-1")
    await ledger.mark(key, entry(partition=2))
    await ledger.mark(ledger_key("acme", "r-0"), entry(partition=1))

    assert ledger.get(key, 2) == entry(partition=2)
    assert ledger.get(ledger_key("acme", "r-unknown"), 2) is None
    if backend.rocks is not None:  # the memory store has one namespace; RocksDB looks in the named partition only
        assert ledger.get(key, 1) is None
        # A partition whose database is not open here is not opened by a look-up: the open ones are searched.
        assert ledger.get(key, 7) == entry(partition=2)
        assert sorted(backend.rocks.dbs) == [1, 2]


@pytest.mark.asyncio
async def test_expiry_drops_old_entries_with_tombstones_and_keeps_young_ones(backend: Backend) -> None:
    changelog = InMemoryChangelog()
    ledger = Ledger(backend.store, changelog)
    old, young = ledger_key("acme", "r-old"), ledger_key("acme", "r-young")
    await ledger.mark(old, entry(at=T0, partition=5))
    await ledger.mark(young, entry(at=T0 + timedelta(days=2), partition=1))
    before = len(changelog.writes)

    tombstones = ledger.expire(RETENTION, now=T0 + RETENTION + timedelta(seconds=1))
    await asyncio.gather(*(write() for write in tombstones))

    assert ledger.get(old) is None
    assert ledger.get(young) is not None
    assert changelog.writes[before:] == [(old, None, 5)]
    assert ledger.swept


@pytest.mark.asyncio
async def test_expiry_examines_at_most_limit_entries_per_call_and_goes_on_where_it_stopped(backend: Backend) -> None:
    ledger = Ledger(backend.store, InMemoryChangelog())
    for n in range(25):
        await ledger.mark(ledger_key("acme", f"r-{n:02d}"), entry(at=T0, partition=n % 3))
    later = T0 + RETENTION * 2

    rounds = []
    while True:
        rounds.append(len(ledger.expire(RETENTION, now=later, limit=10)))
        if ledger.swept:
            break

    assert rounds == [10, 10, 5]
    assert all(ledger.get(ledger_key("acme", f"r-{n:02d}")) is None for n in range(25))


@pytest.mark.asyncio
async def test_expiry_leaves_entries_of_partitions_this_worker_does_not_own(backend: Backend) -> None:
    ledger = Ledger(backend.store, InMemoryChangelog())
    await ledger.mark(ledger_key("acme", "r-mine"), entry(partition=1))
    await ledger.mark(ledger_key("acme", "r-theirs"), entry(partition=2))

    tombstones = ledger.expire(RETENTION, now=T0 + RETENTION * 2, owned={1}.__contains__)

    assert len(tombstones) == 1
    assert ledger.get(ledger_key("acme", "r-theirs")) is not None


@pytest.mark.asyncio
async def test_an_unreadable_entry_is_kept_and_reads_as_sending(backend: Backend) -> None:
    ledger = Ledger(backend.store, InMemoryChangelog())
    corrupt = ledger_key("acme", "r-corrupt")
    backend.store.put(0, corrupt, b"not a ledger entry")
    await ledger.mark(ledger_key("acme", "r-old"), entry(at=T0, partition=0))

    tombstones = ledger.expire(RETENTION, now=T0 + RETENTION * 2)

    assert len(tombstones) == 1
    found = ledger.get(corrupt)
    assert found is not None
    assert found.state == "sending"


@pytest.mark.asyncio
async def test_the_changelog_offset_each_write_reached_is_remembered_for_a_warm_restart(backend: Backend) -> None:
    ledger = Ledger(backend.store, OffsetChangelog())
    for n in range(3):
        await ledger.mark(ledger_key("acme", f"r-{n}"), entry(partition=2))
    await ledger.mark(ledger_key("acme", "r-other"), entry(partition=6))
    ledger.checkpoint()  # positions are written at most once a second, and at every checkpoint

    if backend.rocks is not None:
        assert backend.rocks.persisted == {2: 2, 6: 0}
    expired = ledger.expire(RETENTION, now=T0 + RETENTION * 2)
    assert len(expired) == 4, "Faust's offset key is never taken for an entry"


@pytest.mark.asyncio
async def test_the_size_is_known_without_reading_every_entry(backend: Backend) -> None:
    ledger = Ledger(backend.store, InMemoryChangelog())
    for n in range(20):
        await ledger.mark(ledger_key("acme", f"r-{n}"), entry(partition=n % 2))

    assert 15 <= len(ledger) <= 25  # RocksDB estimates
