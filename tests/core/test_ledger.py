"""The idempotency ledger: entries in the local store, every change written to the changelog partition."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from smsdispatch.core.ledger import Ledger, LedgerEntry, ledger_key
from smsdispatch.tools.testing.ledger import InMemoryChangelog

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=7)


def done_entry(at: datetime = T0, partition: int = 3) -> LedgerEntry:
    return LedgerEntry(
        state="done",
        partition=partition,
        at=at,
        attempts=2,
        outcome_topic="sms.dispatched",
        outcome='{"request_id": "r-1", "status": "queued"}',
    )


@pytest.mark.asyncio
async def test_a_marked_entry_reads_back_equal_and_goes_to_the_changelog_partition() -> None:
    store: dict[bytes, bytes] = {}
    changelog = InMemoryChangelog()
    ledger = Ledger(store, changelog)
    key = ledger_key("acme", "r-1")

    await ledger.mark(key, done_entry())

    assert ledger.get(key) == done_entry()
    assert changelog.writes == [(key, store[key], 3)]
    assert LedgerEntry.model_validate_json(store[key]) == done_entry()


@pytest.mark.asyncio
async def test_a_mark_is_readable_at_once_before_the_changelog_acknowledges_it() -> None:
    acknowledged = asyncio.Event()

    async def slow_changelog(key: bytes, value: bytes | None, partition: int) -> None:
        await acknowledged.wait()

    ledger = Ledger({}, slow_changelog)
    key = ledger_key("acme", "r-1")
    pending = asyncio.ensure_future(ledger.mark(key, LedgerEntry(state="sending", partition=0, at=T0)))
    await asyncio.sleep(0)

    entry = ledger.get(key)
    acknowledged.set()
    await pending

    assert entry is not None
    assert entry.state == "sending"


@pytest.mark.asyncio
async def test_a_later_mark_replaces_the_earlier_one() -> None:
    ledger = Ledger({}, InMemoryChangelog())
    key = ledger_key("acme", "r-1")
    await ledger.mark(key, LedgerEntry(state="sending", partition=3, at=T0))

    await ledger.mark(key, done_entry())

    assert ledger.get(key) == done_entry()
    assert len(ledger) == 1


def test_an_unknown_key_has_no_entry() -> None:
    assert Ledger({}, InMemoryChangelog()).get(ledger_key("acme", "r-1")) is None


def test_the_same_request_id_of_two_tenants_has_two_keys() -> None:
    assert ledger_key("acme", "r-1") != ledger_key("globex", "r-1")


@pytest.mark.asyncio
async def test_expire_drops_entries_older_than_the_retention_and_returns_their_tombstone_writes() -> None:
    changelog = InMemoryChangelog()
    ledger = Ledger({}, changelog)
    old, fresh = ledger_key("acme", "r-old"), ledger_key("acme", "r-fresh")
    await ledger.mark(old, done_entry(at=T0, partition=5))
    await ledger.mark(fresh, done_entry(at=T0 + timedelta(days=2)))
    writes_before = len(changelog.writes)

    tombstones = ledger.expire(RETENTION, now=T0 + RETENTION + timedelta(seconds=1))

    assert ledger.get(old) is None
    assert ledger.get(fresh) is not None
    assert len(changelog.writes) == writes_before  # handed back to the caller, not yet written
    await asyncio.gather(*(write() for write in tombstones))
    assert changelog.writes[writes_before:] == [(old, None, 5)]


@pytest.mark.asyncio
async def test_an_entry_exactly_at_the_retention_is_kept() -> None:
    ledger = Ledger({}, InMemoryChangelog())
    await ledger.mark(ledger_key("acme", "r-1"), done_entry(at=T0))

    assert ledger.expire(RETENTION, now=T0 + RETENTION) == []
    assert len(ledger) == 1


@pytest.mark.asyncio
async def test_expire_removes_at_most_limit_entries_per_call() -> None:
    ledger = Ledger({}, InMemoryChangelog())
    for n in range(5):
        await ledger.mark(ledger_key("acme", f"r-{n}"), done_entry(at=T0))
    later = T0 + RETENTION * 2

    first = ledger.expire(RETENTION, now=later, limit=3)
    second = ledger.expire(RETENTION, now=later, limit=3)

    assert (len(first), len(second), len(ledger)) == (3, 2, 0)


@pytest.mark.asyncio
async def test_the_in_memory_changelog_records_every_write_in_order_with_its_partition() -> None:
    changelog = InMemoryChangelog()

    acknowledgements = [changelog(b"k1", b"v1", 0), changelog(b"k2", None, 7), changelog(b"k1", b"v2", 0)]

    assert all(isinstance(ack, asyncio.Future) and ack.done() for ack in acknowledgements)
    await asyncio.gather(*acknowledgements)
    assert changelog.writes == [(b"k1", b"v1", 0), (b"k2", None, 7), (b"k1", b"v2", 0)]


def test_an_entry_ignores_fields_a_newer_version_added() -> None:
    raw = done_entry().model_dump_json()[:-1] + ', "added_later": 1}'

    assert LedgerEntry.model_validate_json(raw) == done_entry()


@pytest.mark.asyncio
async def test_an_expiry_pass_parses_no_entry_it_already_knows_to_be_young(monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger({}, InMemoryChangelog())
    for n in range(50):
        await ledger.mark(ledger_key("acme", f"r-{n}"), done_entry(at=T0))
    parsed: list[str | bytes] = []
    parse = LedgerEntry.model_validate_json

    def counting_parse(raw: str | bytes) -> LedgerEntry:
        parsed.append(raw)
        return parse(raw)

    monkeypatch.setattr(LedgerEntry, "model_validate_json", counting_parse)

    ledger.expire(RETENTION, now=T0 + timedelta(days=1))
    ledger.expire(RETENTION, now=T0 + timedelta(days=2))

    assert parsed == []


@pytest.mark.asyncio
async def test_entries_recovered_into_the_store_without_a_mark_are_expired_too() -> None:
    store = {
        ledger_key("acme", "r-old"): done_entry(at=T0).model_dump_json().encode(),
        ledger_key("acme", "r-new"): done_entry(at=T0 + RETENTION).model_dump_json().encode(),
    }
    ledger = Ledger(store, InMemoryChangelog())

    tombstones = ledger.expire(RETENTION, now=T0 + RETENTION + timedelta(hours=1))

    assert len(tombstones) == 1
    assert list(store) == [ledger_key("acme", "r-new")]


@pytest.mark.asyncio
async def test_an_entry_the_store_got_newer_since_its_mark_is_judged_by_the_newer_one() -> None:
    store: dict[bytes, bytes] = {}
    ledger = Ledger(store, InMemoryChangelog())
    key = ledger_key("acme", "r-1")
    await ledger.mark(key, done_entry(at=T0))
    store[key] = done_entry(at=T0 + timedelta(days=3)).model_dump_json().encode()  # recovered from the changelog

    assert ledger.expire(RETENTION, now=T0 + RETENTION + timedelta(days=1)) == []
    assert len(ledger.expire(RETENTION, now=T0 + RETENTION + timedelta(days=4))) == 1


@pytest.mark.asyncio
async def test_an_entry_removed_from_the_store_is_forgotten_without_a_tombstone() -> None:
    store: dict[bytes, bytes] = {}
    ledger = Ledger(store, InMemoryChangelog())
    key = ledger_key("acme", "r-1")
    await ledger.mark(key, done_entry(at=T0))
    del store[key]  # its partition was revoked: another worker owns it now

    assert ledger.expire(RETENTION, now=T0 + RETENTION * 2) == []


@pytest.mark.asyncio
async def test_an_unreadable_entry_is_kept_and_does_not_stop_the_others_expiring() -> None:
    store = {ledger_key("acme", "r-corrupt"): b"not a ledger entry"}
    ledger = Ledger(store, InMemoryChangelog())
    await ledger.mark(ledger_key("acme", "r-old"), done_entry(at=T0))

    tombstones = ledger.expire(RETENTION, now=T0 + RETENTION * 2)

    assert len(tombstones) == 1
    assert list(store) == [ledger_key("acme", "r-corrupt")]
