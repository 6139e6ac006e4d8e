"""DurableMap: every change in the store at once and, through the returned write, in the changelog."""

from __future__ import annotations

import pytest

from smsdispatch.core.durable_map import DurableMap
from smsdispatch.core.ledger_store import MappingStore
from smsdispatch.tools.testing.ledger import InMemoryChangelog


@pytest.mark.asyncio
async def test_a_put_is_in_the_store_at_once_and_in_the_changelog_once_its_write_is_awaited() -> None:
    changelog = InMemoryChangelog()
    durable = DurableMap({}, changelog)

    write = durable.put(3, b"k", b"v")

    assert durable.get(b"k") == b"v"
    assert changelog.writes == []
    await write()
    assert changelog.writes == [(b"k", b"v", 3)]


@pytest.mark.asyncio
async def test_a_retried_changelog_write_repeats_the_same_record() -> None:
    changelog = InMemoryChangelog()
    durable = DurableMap({}, changelog)
    write = durable.add_if_absent(1, b"k", b"v")
    assert write is not None

    await write()
    await write()  # as a retry after an unacknowledged send would

    assert changelog.writes == [(b"k", b"v", 1), (b"k", b"v", 1)]


@pytest.mark.asyncio
async def test_add_if_absent_never_replaces_what_is_held() -> None:
    durable = DurableMap({b"k": b"old"}, InMemoryChangelog())

    assert durable.add_if_absent(0, b"k", b"new") is None
    assert durable.get(b"k") == b"old"


@pytest.mark.asyncio
async def test_replace_writes_only_while_the_store_holds_what_was_read() -> None:
    changelog = InMemoryChangelog()
    durable = DurableMap({b"k": b"v1"}, changelog)

    stale = durable.replace(0, b"k", b"v0", b"late")
    current = durable.replace(0, b"k", b"v1", None)

    assert stale is None
    assert current is not None
    await current()
    assert durable.get(b"k") is None
    assert changelog.writes == [(b"k", None, 0)]


def test_discard_of_an_absent_key_writes_nothing() -> None:
    assert DurableMap({}, InMemoryChangelog()).discard(0, b"k") is None


def test_scan_goes_on_from_where_it_stopped_and_wraps_around() -> None:
    durable = DurableMap({bytes([n]): b"v" for n in range(5)}, InMemoryChangelog())

    seen = [durable.scan(2), durable.scan(2), durable.scan(2), durable.scan(2)]

    assert [[key[0] for key, _ in batch] for batch in seen] == [[0, 1], [2, 3], [4], [0, 1]]


class PartitionsSpy(MappingStore):
    """A store that records in which partition each look-up was asked to look."""

    def __init__(self) -> None:
        super().__init__({}, InMemoryChangelog())
        self.looked_in: list[int | None] = []

    def get(self, key: bytes, partition: int | None = None) -> bytes | None:
        self.looked_in.append(partition)
        return super().get(key, partition)


def test_the_checks_before_a_write_look_only_in_the_partition_written_to() -> None:
    spy = PartitionsSpy()
    durable = DurableMap(spy)

    durable.add_if_absent(5, b"k", b"v")
    durable.replace(5, b"k", b"v", b"w")
    durable.discard(5, b"k")

    assert spy.looked_in == [5, 5, 5]
