"""Dispatcher writes and timing: "sending" marks before sends, Kafka writes redone until acknowledged, the
per-tenant cap on sends in flight, and ledger expiry."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import timedelta

import pytest

from smsdispatch.contract import topics
from smsdispatch.core.dispatch_model import DispatcherOptions
from smsdispatch.core.ledger import LedgerEntry, ledger_key
from smsdispatch.tools.testing.ledger import InMemoryChangelog

from .fakes import FakePool, FlakyPublisher, InFlight, RecordingPublisher, Tenants, harness, inbound, request_json

SEPARATOR = b"\x1f"  # between tenant_id and request_id in a ledger key


async def yield_a_few_times() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


class AckingChangelog(InMemoryChangelog):
    """A changelog whose acknowledgement comes a few loop turns after the write, noted in ``events``."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def __call__(self, key: bytes, value: bytes | None, partition: int) -> Awaitable[None]:
        return self._acknowledge(key, value, partition)

    async def _acknowledge(self, key: bytes, value: bytes | None, partition: int) -> None:
        await yield_a_few_times()
        self.writes.append((key, value, partition))
        state = json.loads(value)["state"] if value is not None else "tombstone"
        request_id = key.split(SEPARATOR)[1].decode()
        self.events.append(f"ack {state} {request_id}")


@pytest.mark.asyncio
async def test_each_sending_mark_is_acknowledged_before_its_send_and_done_before_its_outcome() -> None:
    events: list[str] = []
    publisher = RecordingPublisher(events)
    h = harness(pool=FakePool(events=events), changelog=AckingChangelog(events), publisher=publisher)

    await h.run([inbound(request_json(f"r-{n}", body=f"body {n}")) for n in range(3)])

    for n in range(3):
        mine = [event for event in events if event.endswith(f"r-{n}") or event.endswith(f"body {n}")]
        assert mine == [f"ack sending r-{n}", f"send body {n}", f"ack done r-{n}", f"ack done r-{n}"]
    # Each request's outcome is published between its two "done" writes: recorded, published, marked published.
    assert events.count(f"publish {topics.DISPATCHED}") == 3


@pytest.mark.asyncio
async def test_a_sending_mark_goes_to_the_changelog_partition_of_the_request() -> None:
    h = harness()

    await h.run([inbound(request_json(), partition=6)])

    key = ledger_key("acme", "r-1")
    states = [(k, json.loads(v)["state"], p) for k, v, p in h.changelog.writes if v is not None]
    assert states == [(key, "sending", 6), (key, "done", 6), (key, "done", 6)]


@pytest.mark.asyncio
async def test_the_done_entry_holds_the_published_outcome() -> None:
    h = harness()

    await h.run([inbound(request_json())])

    entry = h.ledger.get(ledger_key("acme", "r-1"))
    [emitted] = h.publisher.outcomes()
    assert entry is not None
    assert (entry.state, entry.outcome_topic, entry.attempts) == ("done", topics.DISPATCHED, 1)
    assert entry.outcome is not None
    assert entry.outcome.encode() == emitted.value


@pytest.mark.asyncio
async def test_failed_kafka_writes_are_redone_and_process_batch_returns_only_once_all_are_acknowledged() -> None:
    publisher = FlakyPublisher(failures=2)
    h = harness(publisher=publisher)

    await h.run([inbound(request_json("r-1")), inbound(b"not json", key=None)])

    # Both outcomes are acknowledged by the time process_batch returns, though the first two sends failed.
    assert publisher.calls == 4
    assert sorted(emitted.topic for emitted in publisher.outcomes()) == [topics.DISPATCHED, topics.FAILED]
    assert len(h.sender().sent) == 1


@pytest.mark.asyncio
async def test_process_batch_does_not_return_while_kafka_refuses_the_outcome() -> None:
    class Outage(RecordingPublisher):
        def __init__(self) -> None:
            super().__init__()
            self.down = True
            self.refused = 0
            self.refused_twice = asyncio.Event()

        async def __call__(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
            if self.down:
                self.refused += 1
                if self.refused == 2:
                    self.refused_twice.set()
                raise ConnectionError("broker unreachable")
            await super().__call__(topic, key, value, partition)

    publisher = Outage()
    h = harness(publisher=publisher)
    batch = asyncio.create_task(h.run([inbound(request_json())]))
    await publisher.refused_twice.wait()  # the outcome was refused, and the retry refused again

    assert not batch.done()
    publisher.down = False
    await batch
    assert [emitted.topic for emitted in publisher.outcomes()] == [topics.DISPATCHED]


@pytest.mark.asyncio
async def test_sends_in_flight_never_exceed_the_tenant_cap_while_two_tenants_send_in_parallel() -> None:
    in_flight = InFlight()
    tenants = Tenants()
    tenants.add("acme")
    tenants.add("globex")
    h = harness(
        options=DispatcherOptions(tenant_concurrency=3),
        pool=FakePool(in_flight=in_flight, pause=yield_a_few_times),
        tenants=tenants,
    )
    records = [
        inbound(request_json(f"r-{n}", tenant_id=tenant), key=tenant.encode())
        for n in range(20)
        for tenant in ("acme", "globex")
    ]

    await h.run(records)

    assert dict(in_flight.most) == {"acme": 3, "globex": 3}
    assert in_flight.most_total == 6  # both tenants' budgets in use at once: the tenants do not wait for each other
    assert len(h.publisher.on(topics.DISPATCHED)) == 40


@pytest.mark.asyncio
async def test_the_tenant_cap_also_holds_across_batches_run_back_to_back() -> None:
    in_flight = InFlight()
    h = harness(
        options=DispatcherOptions(tenant_concurrency=2), pool=FakePool(in_flight=in_flight, pause=yield_a_few_times)
    )

    for batch in range(3):
        await h.run([inbound(request_json(f"r-{batch}-{n}")) for n in range(5)])

    assert in_flight.most["acme"] == 2
    assert len(h.sender().sent) == 15


@pytest.mark.asyncio
async def test_ledger_entries_older_than_the_retention_are_expired_with_tombstones() -> None:
    options = DispatcherOptions(ledger_retention=timedelta(days=7), expire_every=timedelta(minutes=10))
    h = harness(options=options)
    await h.run([inbound(request_json("r-old"), partition=4)])
    h.clock.advance(timedelta(days=6))
    await h.run([inbound(request_json("r-recent"), partition=4)])
    h.clock.advance(timedelta(days=1, minutes=1))
    writes_before = len(h.changelog.writes)

    await h.dispatcher.expire()

    assert h.ledger.get(ledger_key("acme", "r-old")) is None
    assert h.ledger.get(ledger_key("acme", "r-recent")) is not None
    assert h.changelog.writes[writes_before:] == [(ledger_key("acme", "r-old"), None, 4)]


@pytest.mark.asyncio
async def test_nothing_expires_before_the_retention() -> None:
    h = harness(options=DispatcherOptions(ledger_retention=timedelta(days=7)))
    await h.run([inbound(request_json())])
    h.clock.advance(timedelta(days=6, hours=23))

    await h.dispatcher.expire()

    assert h.ledger.get(ledger_key("acme", "r-1")) is not None
    assert all(value is not None for _key, value, _partition in h.changelog.writes)


@pytest.mark.asyncio
async def test_expiry_runs_at_most_once_per_interval() -> None:
    options = DispatcherOptions(ledger_retention=timedelta(hours=1), expire_every=timedelta(minutes=10))
    h = harness(options=options)
    h.clock.advance(timedelta(minutes=10))
    await h.dispatcher.expire()  # an expiry pass: nothing old yet
    old = LedgerEntry(state="done", partition=0, at=h.clock() - timedelta(hours=2))
    h.ledger_store[ledger_key("acme", "r-old")] = old.model_dump_json().encode()

    h.clock.advance(timedelta(minutes=9))
    await h.dispatcher.expire()
    kept_within_interval = h.ledger.get(ledger_key("acme", "r-old")) is not None
    h.clock.advance(timedelta(minutes=1))
    await h.dispatcher.expire()

    assert kept_within_interval
    assert h.ledger.get(ledger_key("acme", "r-old")) is None


@pytest.mark.asyncio
async def test_an_expiry_pass_that_hits_its_limit_continues_on_the_next_pass() -> None:
    options = DispatcherOptions(ledger_retention=timedelta(days=7), expire_every=timedelta(minutes=10))
    h = harness(options=options)
    old = LedgerEntry(state="done", partition=0, at=h.clock()).model_dump_json().encode()
    for n in range(10_001):
        h.ledger_store[ledger_key("acme", f"r-{n}")] = old
    h.clock.advance(timedelta(days=8))
    await h.dispatcher.expire()
    assert len(h.ledger) == 1

    await h.dispatcher.expire()

    assert len(h.ledger) == 0


@pytest.mark.asyncio
async def test_a_write_that_fails_when_called_is_redone_like_one_that_fails_when_awaited() -> None:
    class RefusesOnCall(RecordingPublisher):
        refusals = 1

        # Deliberately not a coroutine function: it fails when called, before returning an awaitable.
        def __call__(  # type: ignore[override]
            self, topic: str, key: bytes, value: bytes, partition: int | None = None
        ) -> Awaitable[None]:
            if self.refusals:
                self.refusals -= 1
                raise ConnectionError("the producer is not started")
            return super().__call__(topic, key, value, partition)

    publisher = RefusesOnCall()
    h = harness(publisher=publisher)

    await h.run([inbound(request_json())])

    assert [emitted.topic for emitted in publisher.outcomes()] == [topics.DISPATCHED]
