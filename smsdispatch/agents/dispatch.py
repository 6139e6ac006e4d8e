"""The dispatcher's core: one batch of ``sms.requested`` records in, exactly one outcome per request out.

This module knows nothing about Faust: :mod:`smsdispatch.agents.worker` feeds it batches taken from the
stream and acks them only after :meth:`Dispatcher.process_batch` returns. The guarantees:

* **One outcome per request.** Every record of the batch ends as an ``sms.dispatched`` or ``sms.failed``
  record (or is forwarded to its tenant's partition, where it gets one), and ``process_batch`` returns only
  once Kafka has acknowledged all of them. Nothing raises out of it for a bad record.
* **Never a second SMS for a request_id.** A ``sending`` ledger entry is acknowledged by Kafka before the HTTP
  call (one wait per batch). A request found ``done`` re-emits its recorded outcome. A request found
  ``sending`` (the worker died mid-send) is reconciled with Twilio's message list before anything is sent;
  where that cannot be confirmed the outcome is ``outcome_unknown``. An unknown outcome from Twilio (5xx,
  timeout after sending) is reconciled the same way and is never retried blindly.
* **Concurrency** inside a batch, capped per tenant (``tenant_concurrency``, default 100, Twilio's usual
  per-account limit; tenants sharing one Twilio account share that limit at Twilio but not here, and ride
  out the 429s), so a partition's requests are sent concurrently without Faust's ``concurrency > 1``.
  The limit: a batch completes when its slowest send does, so one tenant in a long 429 storm delays the
  tenants that share its partition by up to the retry budget (30 s). The worker runs one dispatcher actor
  per partition (Faust's ``isolated_partitions``), so other partitions go on meanwhile.

The limit: delivery to the outcome topics is at-least-once. A crash after the outcomes were written but
before Faust committed the offsets re-emits the recorded outcomes on restart (the log sink upserts them).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from smsdispatch.agents.decode import decode_request
from smsdispatch.agents.metrics import DispatchMetrics
from smsdispatch.agents.outcomes import failed_outcome, log_outcome
from smsdispatch.agents.senders import SenderPool, send_one
from smsdispatch.schemas import ErrorCode, ErrorInfo, Outcome, SmsDispatched, SmsFailed, SmsRequested
from smsdispatch.streams import topics
from smsdispatch.streams.ledger import Ledger, LedgerEntry, ledger_key
from smsdispatch.streams.tenants import ReadyTenant, TenantDirectory

log = logging.getLogger("smsdispatch.dispatcher")


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One ``sms.requested`` record as the stream delivered it."""

    key: bytes | None
    value: bytes | None
    partition: int
    timestamp: datetime


class Publisher(Protocol):
    """Sends one record; the awaitable completes when Kafka has acknowledged it."""

    def __call__(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> Awaitable[Any]: ...


@dataclass(frozen=True)
class DispatcherOptions:
    tenant_concurrency: int = 100
    ledger_retention: timedelta = timedelta(days=7)
    expire_every: timedelta = timedelta(minutes=10)
    #: Entries dropped per batch at most, so one expiry pass never stalls a batch for long.
    expire_limit: int = 10_000
    #: Where requests belong: the partition of sms.requested for a tenant_id, or None to accept any partition.
    partition_for: Callable[[str], int | None] = field(default=lambda _tenant: None)
    #: Waits (bounded) until the tenant table has applied everything already on sms.tenants for these tenants.
    tenants_caught_up: Callable[[set[str]], Awaitable[None]] | None = None


@dataclass
class _Job:
    key: bytes
    request: SmsRequested
    tenant: ReadyTenant
    partition: int
    previous: LedgerEntry | None
    outcome: Outcome | None = None


@dataclass
class _Batch:
    """What one batch will write, gathered before any of it is written."""

    emits: list[tuple[str, bytes, bytes, int | None]] = field(default_factory=list)
    jobs: list[_Job] = field(default_factory=list)
    finals: list[tuple[bytes, int, Outcome]] = field(default_factory=list)
    repeats: list[bytes] = field(default_factory=list)


class Dispatcher:
    def __init__(
        self,
        *,
        tenants: TenantDirectory,
        ledger: Ledger,
        publish: Publisher,
        senders: SenderPool,
        options: DispatcherOptions | None = None,
        metrics: DispatchMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tenants = tenants
        self._ledger = ledger
        self._publish = publish
        self._senders = senders
        self._options = options or DispatcherOptions()
        self._metrics = metrics or DispatchMetrics()
        self._clock = clock
        self._tenant_slots: dict[str, asyncio.Semaphore] = {}
        # SIDs recently dispatched per tenant, so a look-up never hands one request another request's SMS.
        self._claimed: dict[str, OrderedDict[str, None]] = {}
        self._last_expiry = clock()

    async def process_batch(self, records: Sequence[InboundRecord]) -> None:
        self._metrics.batch_size.observe(len(records))
        with self._metrics.batch_seconds.time():
            await self._process(records)

    async def _process(self, records: Sequence[InboundRecord]) -> None:
        batch = _Batch()
        sending_marks: list[Callable[[], Awaitable[Any]]] = []
        seen: set[bytes] = set()
        now = self._clock()
        decoded = [decode_request(record.value, record.timestamp) for record in records]
        await self._catch_up_on_missing_tenants(decoded)
        for record, request in zip(records, decoded, strict=True):
            self._plan(record, request, batch, sending_marks, seen, now)
        # The "sending" marks must be in Kafka before any HTTP call: one wait for the whole batch.
        await _durably(sending_marks)
        await asyncio.gather(*(self._run(job) for job in batch.jobs))
        done_marks = self._finish(batch)
        # "done" before the outcomes: an outcome on a topic whose request still reads "sending" would, after a
        # crash, be followed by a second outcome (and maybe a send) for the same request.
        await _durably(done_marks)
        emits: list[Callable[[], Awaitable[Any]]] = [partial(self._publish, *emit) for emit in batch.emits]
        if now - self._last_expiry >= self._options.expire_every:
            tombstones = self._ledger.expire(self._options.ledger_retention, now, limit=self._options.expire_limit)
            if len(tombstones) < self._options.expire_limit:
                self._last_expiry = now  # caught up; otherwise the next batch continues the pass
            emits.extend(tombstones)
        await _durably(emits)

    async def _catch_up_on_missing_tenants(self, decoded: Sequence[SmsRequested | SmsFailed]) -> None:
        """A tenant registered just before its first request may not have reached the table yet: before
        answering unknown_tenant / tenant_not_verified, let the tenant stream catch up (bounded wait)."""
        if self._options.tenants_caught_up is None:
            return
        missing = {
            request.tenant_id
            for request in decoded
            if isinstance(request, SmsRequested) and isinstance(self._tenants.lookup(request.tenant_id), ErrorInfo)
        }
        if missing:
            await self._options.tenants_caught_up(missing)

    def _plan(
        self,
        record: InboundRecord,
        decoded: SmsRequested | SmsFailed,
        batch: _Batch,
        sending_marks: list[Callable[[], Awaitable[Any]]],
        seen: set[bytes],
        now: datetime,
    ) -> None:
        self._metrics.requests.inc()
        if isinstance(decoded, SmsFailed):
            batch.emits.append((topics.FAILED, (decoded.tenant_id or "").encode(), decoded.to_bytes(), None))
            self._metrics.count(decoded)
            log_outcome(log, decoded)
            return
        request = decoded
        home = self._options.partition_for(request.tenant_id)
        if record.key != request.tenant_id.encode() or (home is not None and home != record.partition):
            # Unkeyed or mis-keyed: the tenant's partition owns its ledger and its concurrency budget, so the
            # record moves there (same value, keyed by tenant_id) and gets its outcome from there.
            batch.emits.append((topics.REQUESTED, request.tenant_id.encode(), record.value or b"", home))
            return
        key = ledger_key(request.tenant_id, request.request_id)
        if key in seen:
            batch.repeats.append(key)  # the same request twice in one batch: echo the first one's outcome
            return
        seen.add(key)
        previous = self._ledger.get(key)
        if previous is not None and previous.state == "done":
            batch.repeats.append(key)
            return
        tenant = self._tenants.lookup(request.tenant_id)
        if isinstance(tenant, ErrorInfo):
            if previous is not None:
                # An earlier run may have sent it, and without the tenant's credentials nobody can ask Twilio.
                tenant = ErrorInfo(
                    code=ErrorCode.OUTCOME_UNKNOWN,
                    message=f"an earlier run may have sent it and it cannot be confirmed: {tenant.message}",
                )
            attempts = previous.attempts if previous is not None else 0
            batch.finals.append((key, record.partition, failed_outcome(request, tenant, attempts=attempts)))
            return
        if previous is None:
            entry = LedgerEntry(state="sending", partition=record.partition, at=now)
            sending_marks.append(partial(self._ledger.mark, key, entry))
        batch.jobs.append(_Job(key, request, tenant, record.partition, previous))

    async def _run(self, job: _Job) -> None:
        slots = self._tenant_slots.setdefault(
            job.request.tenant_id, asyncio.Semaphore(self._options.tenant_concurrency)
        )
        async with slots:
            self._metrics.in_flight.labels(job.request.tenant_id).inc()
            started = self._clock()
            try:
                sender = self._senders.sender_for(job.tenant, job.request)
                recent = self._claimed.get(job.request.tenant_id)
                claimed: Collection[str] = recent.keys() if recent is not None else ()
                job.outcome = await send_one(sender, job.request, job.previous, started, claimed)
            except Exception as exc:  # a bug must not lose the request: report it, unknown whether sent
                log.exception("unexpected error sending request %s", job.request.request_id)
                job.outcome = failed_outcome(
                    job.request,
                    ErrorInfo(
                        code=ErrorCode.OUTCOME_UNKNOWN,
                        message=f"internal error while sending ({type(exc).__name__}); it may have been sent",
                    ),
                    attempts=0,
                )
            finally:
                self._metrics.in_flight.labels(job.request.tenant_id).dec()
                self._metrics.send_seconds.observe((self._clock() - started).total_seconds())

    def _finish(self, batch: _Batch) -> list[Callable[[], Awaitable[Any]]]:
        writes: list[Callable[[], Awaitable[Any]]] = []
        finals = list(batch.finals)
        finals.extend((job.key, job.partition, job.outcome) for job in batch.jobs if job.outcome is not None)
        recorded: dict[bytes, tuple[str, bytes]] = {}
        for key, partition, outcome in finals:
            topic = topics.DISPATCHED if isinstance(outcome, SmsDispatched) else topics.FAILED
            value = outcome.to_bytes()
            entry = LedgerEntry(
                state="done",
                partition=partition,
                at=self._clock(),
                attempts=outcome.attempts,
                outcome_topic=topic,
                outcome=value.decode(),
            )
            writes.append(partial(self._ledger.mark, key, entry))
            recorded[key] = (topic, value)
            if isinstance(outcome, SmsDispatched):
                self._claim(outcome.tenant_id, outcome.provider_message_id)
            batch.emits.append((topic, (outcome.tenant_id or "").encode(), value, None))
            self._metrics.count(outcome)
            log_outcome(log, outcome)
        for key in batch.repeats:
            earlier = recorded.get(key) or self._recorded_outcome(key)
            if earlier is not None:
                tenant_id = key.split(b"\x1f", 1)[0]
                batch.emits.append((earlier[0], tenant_id, earlier[1], None))
                self._metrics.repeats.inc()
        return writes

    def _claim(self, tenant_id: str, sid: str, keep: int = 10_000) -> None:
        claimed = self._claimed.setdefault(tenant_id, OrderedDict())
        claimed[sid] = None
        if len(claimed) > keep:
            claimed.popitem(last=False)

    def _recorded_outcome(self, key: bytes) -> tuple[str, bytes] | None:
        entry = self._ledger.get(key)
        if entry is None or entry.outcome_topic is None or entry.outcome is None:
            return None
        return entry.outcome_topic, entry.outcome.encode()


async def _durably(writes: Sequence[Callable[[], Awaitable[Any]]], max_delay: float = 5.0) -> None:
    """Run every write and wait for Kafka's acknowledgements, redoing the failed ones until all succeed.

    Giving up is not an option: returning would let Faust ack records whose outcome was never written, and
    raising would make Faust drop them. So a Kafka outage stalls the batch (visible in the log) instead.
    """
    pending = list(writes)
    delay = 0.1

    async def attempt(write: Callable[[], Awaitable[Any]]) -> Any:
        return await write()  # a write that fails when called is then redone like one that fails when awaited

    while pending:
        results = await asyncio.gather(*(attempt(write) for write in pending), return_exceptions=True)
        failed = [write for write, result in zip(pending, results, strict=True) if isinstance(result, BaseException)]
        if failed:
            first = next(r for r in results if isinstance(r, BaseException))
            log.warning("%d Kafka writes failed (%s); retrying in %.1fs", len(failed), type(first).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
        pending = failed
