"""Fakes for the dispatcher's collaborators: no Kafka, no network, every call recorded.

* :class:`RecordingPublisher` stands for Kafka's producer: it keeps every ``(topic, key, value, partition)``;
  :class:`FlakyPublisher` fails its first calls as an unacknowledged send would, then keeps the rest.
* :class:`FakeSender` stands for one tenant's Twilio account: answers are scripted per message body (a
  :class:`SendResult` or an exception to raise), unscripted sends are accepted, unscripted look-ups find nothing.
* :class:`FakePool` hands the dispatcher one :class:`FakeSender` per tenant.
* :class:`Tenants` writes TenantRecords into a store the way the tenants table holds them, sealed with a real
  :class:`Keyring`, and builds the :class:`TenantDirectory` over it.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from smsdispatch.adapters.crypto import Keyring, generate_key
from smsdispatch.adapters.sms import ProviderName
from smsdispatch.adapters.twilio import OutgoingSms, SendResult, segment_info
from smsdispatch.contract import SmsRequested, TenantConfig, TenantRecord, topics
from smsdispatch.core.admission import Admission
from smsdispatch.core.dispatch import Dispatcher
from smsdispatch.core.dispatch_model import DispatcherOptions, InboundRecord
from smsdispatch.core.ledger import Ledger
from smsdispatch.core.pipeline import Pipeline
from smsdispatch.core.senders import Sender
from smsdispatch.core.tenants import ReadyTenant, TenantDirectory
from smsdispatch.tools.testing.ledger import InMemoryChangelog
from tests.accounts import (
    TO,
    token_config,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

KEYRING = Keyring.from_value(generate_key())
OTHER_KEYRING = Keyring.from_value(generate_key())


class Tenants:
    """The tenants table's store, with helpers to put a tenant in it."""

    def __init__(self) -> None:
        self.store: dict[bytes, bytes] = {}

    def add(
        self,
        tenant_id: str,
        *,
        verified: bool = True,
        config: TenantConfig | None = None,
        keyring: Keyring = KEYRING,
        mps: int | None = None,
    ) -> None:
        record = TenantRecord(
            tenant_id=tenant_id,
            config=keyring.seal(config or token_config()),
            verified=verified,
            verified_at=T0 if verified else None,
            updated_at=T0,
            mps=mps,
        )
        self.store[tenant_id.encode()] = record.to_bytes()

    def directory(self) -> TenantDirectory:
        return TenantDirectory(self.store, KEYRING.unseal)


class OptOutList:
    """A suppression list in memory: what is on it, and every number the dispatcher put on it."""

    def __init__(self, *entries: tuple[str, str]) -> None:
        self.entries = set(entries)
        self.added: list[tuple[str, str]] = []
        self.loads = 0

    async def loaded(self) -> None:
        self.loads += 1

    def is_opted_out(self, tenant_id: str, number: str) -> bool:
        return (tenant_id, number) in self.entries

    async def opt_out(self, tenant_id: str, number: str) -> None:
        self.entries.add((tenant_id, number))
        self.added.append((tenant_id, number))


class Clock:
    """A wall clock that moves only when the test says so."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass(frozen=True)
class Emitted:
    topic: str
    key: bytes
    value: bytes
    partition: int | None

    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.value)
        return document


class RecordingPublisher:
    """Kafka's producer: every record it acknowledged, in order."""

    def __init__(self, events: list[str] | None = None) -> None:
        self.sent: list[Emitted] = []
        self._events = events

    async def __call__(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
        self.sent.append(Emitted(topic, key, value, partition))
        if self._events is not None:
            self._events.append(f"publish {topic}")

    def on(self, *names: str) -> list[Emitted]:
        return [emitted for emitted in self.sent if emitted.topic in names]

    def outcomes(self) -> list[Emitted]:
        return self.on(topics.DISPATCHED, topics.FAILED)


class KafkaTimeout(Exception):
    """What a producer raises when the broker never acknowledged a send."""


class FlakyPublisher(RecordingPublisher):
    """Fails its first ``failures`` calls (nothing is kept), then acknowledges every call."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures_left = failures
        self.calls = 0

    async def __call__(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
        self.calls += 1
        if self.failures_left > 0:
            self.failures_left -= 1
            raise KafkaTimeout("the broker did not acknowledge the send")
        await super().__call__(topic, key, value, partition)


Answer = SendResult | None | BaseException


def accepted(to: str, body: str, sid: str = "SM" + "a" * 32, status: str = "queued") -> SendResult:
    segments, encoding = segment_info(body)
    return SendResult(message_id=sid, status=status, to=to, segments=segments, encoding=encoding, attempts=1)


@dataclass
class InFlight:
    """Counts sends in progress, per tenant and overall, and the most seen at once."""

    now: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    most: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    now_total: int = 0
    most_total: int = 0

    def enter(self, tenant_id: str) -> None:
        self.now[tenant_id] += 1
        self.now_total += 1
        self.most[tenant_id] = max(self.most[tenant_id], self.now[tenant_id])
        self.most_total = max(self.most_total, self.now_total)

    def leave(self, tenant_id: str) -> None:
        self.now[tenant_id] -= 1
        self.now_total -= 1


class FakeSender:
    """One tenant's Twilio account with answers scripted per body."""

    def __init__(
        self,
        tenant_id: str,
        *,
        events: list[str] | None = None,
        in_flight: InFlight | None = None,
        pause: Callable[[], Any] | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.name = "Twilio"
        self.provider: ProviderName = "twilio"
        self.exact_bodies = True
        self.sent: list[OutgoingSms] = []
        self.looked_up: list[tuple[str, str, datetime]] = []
        self.excluded: list[set[str]] = []
        self._sends: dict[str, deque[Answer]] = defaultdict(deque)
        self._finds: dict[str, deque[Answer]] = defaultdict(deque)
        self._events = events
        self._in_flight = in_flight
        self._pause = pause

    def on_send(self, body: str, *answers: Answer) -> FakeSender:
        self._sends[body].extend(answers)
        return self

    def on_find(self, body: str, *answers: Answer) -> FakeSender:
        self._finds[body].extend(answers)
        return self

    async def send(self, message: OutgoingSms) -> SendResult:
        self.sent.append(message)
        if self._events is not None:
            self._events.append(f"send {message.body}")
        if self._in_flight is not None:
            self._in_flight.enter(self.tenant_id)
        try:
            if self._pause is not None:
                await self._pause()
            script = self._sends[message.body]
            answer = script.popleft() if script else accepted(message.to, message.body)
        finally:
            if self._in_flight is not None:
                self._in_flight.leave(self.tenant_id)
        if isinstance(answer, BaseException):
            raise answer
        assert answer is not None, "a send answers a SendResult or raises"
        return answer

    async def find_sent(
        self, to: str, body: str, sent_after: datetime, exclude: Collection[str] = ()
    ) -> SendResult | None:
        self.excluded.append(set(exclude))
        self.looked_up.append((to, body, sent_after))
        if self._events is not None:
            self._events.append(f"find {body}")
        script = self._finds[body]
        answer = script.popleft() if script else None
        if isinstance(answer, BaseException):
            raise answer
        return answer


class FakePool:
    """Hands out one :class:`FakeSender` per tenant (made on first use with the pool's settings)."""

    def __init__(
        self,
        *,
        events: list[str] | None = None,
        in_flight: InFlight | None = None,
        pause: Callable[[], Any] | None = None,
    ) -> None:
        # No HTTP client: the fake senders never leave the process.
        self.senders: dict[str, FakeSender] = {}
        self._settings: dict[str, Any] = {"events": events, "in_flight": in_flight, "pause": pause}

    def sender(self, tenant_id: str) -> FakeSender:
        if tenant_id not in self.senders:
            self.senders[tenant_id] = FakeSender(tenant_id, **self._settings)
        return self.senders[tenant_id]

    def sender_for(self, tenant: ReadyTenant, request: SmsRequested) -> Sender:
        return self.sender(tenant.record.tenant_id)

    def all_sent(self) -> list[OutgoingSms]:
        return [message for sender in self.senders.values() for message in sender.sent]


def request_json(request_id: str = "r-1", tenant_id: str = "acme", body: str = "Hello", **extra: Any) -> bytes:
    document: dict[str, Any] = {"request_id": request_id, "tenant_id": tenant_id, "to": TO, "body": body}
    document.update(extra)
    return json.dumps(document).encode()


async def run_records(
    dispatcher: Dispatcher, records: Sequence[InboundRecord], timeout: float = 10.0
) -> list[InboundRecord]:
    """Put ``records`` through a real :class:`Pipeline` into ``dispatcher``; return them in the order acked."""
    acked: list[InboundRecord] = []
    everything_acked = asyncio.Event()

    async def ack(record: InboundRecord) -> None:
        acked.append(record)
        if len(acked) == len(records):
            everything_acked.set()

    def release(record: InboundRecord) -> None:
        raise AssertionError(f"record {record.offset} was given back")

    pipeline: Pipeline[InboundRecord] = Pipeline(ack=ack, release=release)
    for record in records:
        routed = dispatcher.route(record)
        handler = functools.partial(dispatcher.handle, routed)
        await pipeline.submit(record.partition, record.offset, record, handler, key=routed.key)
    if records:
        await asyncio.wait_for(everything_acked.wait(), timeout)
    return acked


_offsets = itertools.count()


def inbound(
    value: bytes | None,
    key: bytes | None = b"acme",
    partition: int = 0,
    timestamp: datetime = T0,
    offset: int | None = None,
) -> InboundRecord:
    """A record as the stream delivers it; offsets grow across the test run unless given."""
    offset = next(_offsets) if offset is None else offset
    return InboundRecord(key=key, value=value, partition=partition, offset=offset, timestamp=timestamp)


class Sleeps:
    """The dispatcher's sleep: records each wait and returns at once, so tests never really wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@dataclass
class Harness:
    """A dispatcher wired to fakes, with every fake at hand."""

    dispatcher: Dispatcher
    publisher: RecordingPublisher
    pool: FakePool
    tenants: Tenants
    ledger: Ledger
    ledger_store: dict[bytes, bytes]
    changelog: InMemoryChangelog
    clock: Clock
    sleeps: Sleeps
    acked: list[InboundRecord] = field(default_factory=list)

    def sender(self, tenant_id: str = "acme") -> FakeSender:
        return self.pool.sender(tenant_id)

    async def run(self, records: Sequence[InboundRecord]) -> None:
        """Put ``records`` through a real :class:`Pipeline` into the dispatcher; return once all are acked."""
        self.acked.extend(await run_records(self.dispatcher, records))


def harness(
    *,
    options: DispatcherOptions | None = None,
    publisher: RecordingPublisher | None = None,
    pool: FakePool | None = None,
    changelog: InMemoryChangelog | None = None,
    tenants: Tenants | None = None,
    admission: Admission | None = None,
) -> Harness:
    """A dispatcher whose tenant ``acme`` is verified; more tenants can be added before the first batch."""
    if tenants is None:
        tenants = Tenants()
        tenants.add("acme")
    publisher = publisher or RecordingPublisher()
    pool = pool or FakePool()
    changelog = changelog or InMemoryChangelog()
    ledger_store: dict[bytes, bytes] = {}
    ledger = Ledger(ledger_store, changelog)
    clock = Clock()
    sleeps = Sleeps()
    dispatcher = Dispatcher(
        tenants=tenants.directory(),
        ledger=ledger,
        publish=publisher,
        senders=pool,
        options=options,
        admission=admission,
        clock=clock,
        sleep=sleeps,
    )
    return Harness(dispatcher, publisher, pool, tenants, ledger, ledger_store, changelog, clock, sleeps)
