"""The dispatcher's core: one ``sms.requested`` record in, exactly one outcome record out.

This module knows nothing about Faust: the runtime routes each record (:meth:`Dispatcher.route`, cheap and
synchronous) and hands it to a :class:`~smsdispatch.core.pipeline.Pipeline`, which runs
:meth:`Dispatcher.handle` concurrently with other records and acks the record only after it returned. The
guarantees:

* **One outcome per record, durable before the ack.** Every record ends as an ``sms.dispatched`` or
  ``sms.failed`` record (or is forwarded to its tenant's partition, where it gets one); ``handle`` returns only
  once Kafka has acknowledged it. A redelivered record (a rebalance, a broker restart) whose outcome was
  already published is recognised from the ledger and not answered twice; only a crash between publishing and
  recording that can make a record's outcome appear twice, byte-identical.
* **Never a second SMS for a request.** A ``sending`` ledger entry is acknowledged by Kafka before the HTTP
  call. A request found ``done`` re-emits its recorded outcome. A request found ``sending`` (another worker
  died, or gave the partition away, mid-send) waits until that send can no longer be in flight (the entry's
  age against ``send_deadline``, which bounds every send here), then is reconciled with Twilio's message list
  before anything is sent; where that cannot be confirmed the outcome is ``outcome_unknown``.
* **Concurrency** per tenant is capped (``tenant_concurrency``, default 100, Twilio's usual per-account
  limit). Records of other tenants never wait for it: the pipeline starts every record as it arrives.

The limit: a crash (SIGKILL) after an outcome was published and before that was recorded publishes the
outcome again on redelivery (the log sink upserts it; a subscriber may see it twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Any

from smsdispatch.contract import ErrorCode, ErrorInfo, Outcome, SmsDispatched, SmsFailed, SmsRequested, topics
from smsdispatch.core.admission import Admission
from smsdispatch.core.decode import decode_request
from smsdispatch.core.dispatch_model import DispatcherOptions, InboundRecord, Job, Publisher, Routed
from smsdispatch.core.ledger import Ledger, LedgerEntry, ledger_key, origin_key
from smsdispatch.core.metrics import DispatchMetrics
from smsdispatch.core.outcomes import failed_outcome, log_outcome
from smsdispatch.core.persist import ThrottledWarning, until_taken
from smsdispatch.core.pipeline import Work
from smsdispatch.core.senders import Senders, send_one
from smsdispatch.core.tenants import ReadyTenant, TenantDirectory

log = logging.getLogger("smsdispatch.dispatcher")


class Dispatcher:
    def __init__(
        self,
        *,
        tenants: TenantDirectory,
        ledger: Ledger,
        publish: Publisher,
        senders: Senders,
        options: DispatcherOptions | None = None,
        metrics: DispatchMetrics | None = None,
        admission: Admission | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._tenants = tenants
        self._admission = admission or Admission()
        self._ledger = ledger
        self._publish = publish
        self._senders = senders
        self._options = options or DispatcherOptions()
        self._metrics = metrics or DispatchMetrics()
        self._clock = clock
        self._sleep = sleep
        self._tenant_slots: dict[str, asyncio.Semaphore] = {}
        # SIDs recently dispatched per tenant, so a look-up never hands one request another request's SMS.
        self._claimed: dict[str, OrderedDict[str, None]] = {}
        self._last_expiry = clock()
        self._kafka_trouble = ThrottledWarning(log)

    def route(self, record: InboundRecord) -> Routed:
        """Decode the record and decide where it is handled. Never raises."""
        decoded = decode_request(record.value, record.timestamp)
        if isinstance(decoded, SmsFailed):
            return Routed(record, decoded, key=None)
        home = self._options.partition_for(decoded.tenant_id)
        if record.key != decoded.tenant_id.encode() or (home is not None and home != record.partition):
            # Unkeyed or mis-keyed: the tenant's partition owns its ledger and its concurrency budget, so the
            # record moves there (same value, keyed by tenant_id) and gets its outcome from there.
            # The request re-serialised, not the original bytes: unknown fields (ignored anyway) could make the
            # original too large to produce, and its requested_at stays the original record's time.
            value = decoded.model_dump_json(exclude_none=True).encode()
            return Routed(record, decoded, key=None, forward_value=value, forward_to=home)
        return Routed(record, decoded, key=ledger_key(decoded.tenant_id, decoded.request_id))

    async def handle(self, routed: Routed, work: Work[Any]) -> None:
        """Answer one routed record; returns once its outcome (or forward) is durable in Kafka.

        A bug anywhere in here becomes this record's own outcome (``outcome_unknown`` for a request, which may
        have been sent; ``invalid_request`` for a record that was not one), never a stalled partition.
        """
        self._metrics.requests.inc()
        decoded = routed.decoded
        try:
            if isinstance(decoded, SmsRequested) and routed.key is not None:
                await self._dispatch(routed.record, decoded, routed.key, work)
            else:
                await self._answer_once(routed, work)
        except Exception as exc:
            record = routed.record
            log.exception("handling the record at partition %d offset %d failed", record.partition, record.offset)
            await self._answer_bug(routed, work, exc)

    async def _answer_bug(self, routed: Routed, work: Work[Any], exc: Exception) -> None:
        """The outcome of a record whose handling raised. Recorded under the record's ledger key (or its origin),
        so a redelivery repeats it instead of trying again what failed in an unknown state."""
        work.irrevocable()
        record, decoded = routed.record, routed.decoded
        what = f"internal error while handling it ({type(exc).__name__})"
        if isinstance(decoded, SmsRequested):
            error = ErrorInfo(code=ErrorCode.OUTCOME_UNKNOWN, message=f"{what}; it may have been sent")
            outcome: Outcome = failed_outcome(decoded, error, attempts=0)
        else:
            # Echo only the identity: whatever else the record held may be what broke.
            error = ErrorInfo(code=ErrorCode.INVALID_REQUEST, message=f"{decoded.error.message}; {what}")
            outcome = SmsFailed(request_id=decoded.request_id, tenant_id=decoded.tenant_id, error=error)
        await self._finish(routed.key or origin_key(record.partition, record.offset), record, outcome)

    async def _answer_once(self, routed: Routed, work: Work[Any]) -> None:
        """A failure decided by decoding, or a forward: published once per record, remembered by origin."""
        record = routed.record
        origin = origin_key(record.partition, record.offset)
        if self._ledger.get(origin) is not None:
            return  # redelivered: answered (or forwarded) before the redelivery
        work.irrevocable()
        decoded = routed.decoded
        if isinstance(decoded, SmsFailed):
            value = decoded.to_bytes()
            key = (decoded.tenant_id or "").encode()
            await self._durably(lambda: self._publish(topics.FAILED, key, value))
            self._counted(decoded)
        else:
            tenant_id, forward = decoded.tenant_id.encode(), routed.forward_value or b""
            await self._durably(lambda: self._publish(topics.REQUESTED, tenant_id, forward, routed.forward_to))
        entry = LedgerEntry(state="done", partition=record.partition, at=self._clock(), emitted_through=record.offset)
        await self._durably(lambda: self._ledger.mark(origin, entry))

    async def _dispatch(self, record: InboundRecord, request: SmsRequested, key: bytes, work: Work[Any]) -> None:
        """The request's phases, in order, over one :class:`Job`: each either answers it (sets ``outcome``) or
        hands it to the next; the outcome is then recorded and published."""
        # Routing brought the request to its tenant's home partition (when that is known), where its entry lives.
        previous = self._ledger.get(key, self._options.partition_for(request.tenant_id))
        job = Job(record, request, key, work, previous=previous)
        if await self._repeated(job):
            return
        for phase in (self._resolve_tenant, self._admit, self._mark_sending, self._send_and_learn):
            await phase(job)
            if job.outcome is not None:
                break
        assert job.outcome is not None, "the last phase always answers"
        work.irrevocable()
        await self._finish(key, record, job.outcome)

    async def _repeated(self, job: Job) -> bool:
        """Already answered (a redelivery, or the request published again): re-emit the recorded outcome."""
        previous = job.previous
        if previous is None or previous.state != "done":
            return False
        if not previous.emitted(job.record.offset):
            await self._emit(job.key, previous, job.record)
            self._metrics.repeats.inc()
        return True

    async def _resolve_tenant(self, job: Job) -> None:
        found = await self._tenant(job.request.tenant_id)
        if isinstance(found, ReadyTenant):
            job.tenant = found
            return
        if job.previous is not None:
            # An earlier run may have sent it, and without the tenant's credentials nobody can ask Twilio.
            found = ErrorInfo(
                code=ErrorCode.OUTCOME_UNKNOWN,
                message=f"an earlier run may have sent it and it cannot be confirmed: {found.message}",
            )
        job.outcome = failed_outcome(job.request, found, attempts=job.attempts_so_far)

    async def _admit(self, job: Job) -> None:
        """A new request passes admission (opt-outs, expiry, the tenant's rate); one an earlier run marked
        ``sending`` may have been sent, so it waits out that send instead and reconciliation decides (the provider
        still checks ``expires_at``)."""
        if job.previous is not None:
            await self._fence(job.previous)
            return
        refusal = await self._admission.admit(job.request, self._rate_of(job.request.tenant_id), self._clock())
        if refusal is not None:
            job.outcome = failed_outcome(job.request, refusal, attempts=0)

    async def _mark_sending(self, job: Job) -> None:
        previous = job.previous
        since = (previous.since or previous.at) if previous is not None else None
        sending = LedgerEntry(
            state="sending", partition=job.record.partition, at=self._clock(), since=since, attempts=job.attempts_so_far
        )
        job.work.irrevocable()
        # In Kafka before the HTTP call: a crash from here on leaves "sending" behind, never a blind resend.
        await self._durably(lambda: self._ledger.mark(job.key, sending))

    async def _send_and_learn(self, job: Job) -> None:
        assert job.tenant is not None, "resolved before"
        job.outcome = await self._send(job.request, job.tenant, job.previous)
        # The suppression list before the outcome: a subscriber resending on a 21610 is refused at once.
        await self._admission.learn(job.outcome)

    def _rate_of(self, tenant_id: str) -> Callable[[], int | None]:
        """The tenant's sending rate as its current record says: a ``tenants update`` applies to waiting requests."""

        def rate() -> int | None:
            tenant = self._tenants.lookup(tenant_id)
            return tenant.record.mps if isinstance(tenant, ReadyTenant) else None

        return rate

    async def _fence(self, previous: LedgerEntry) -> None:
        """Another run marked it ``sending``: wait until that send can no longer be in flight."""
        age = (self._clock() - previous.at).total_seconds()
        wait = self._options.send_deadline + self._options.fence_margin - age
        if wait > 0:
            log.info("a request marked sending %.1fs ago may still be in flight; waiting %.1fs", age, wait)
            await self._sleep(wait)

    async def _tenant(self, tenant_id: str) -> ReadyTenant | ErrorInfo:
        found = self._tenants.lookup(tenant_id)
        if isinstance(found, ErrorInfo) and self._options.tenants_caught_up is not None:
            # A tenant registered just before its first request may not have reached the view yet.
            await self._options.tenants_caught_up({tenant_id})
            found = self._tenants.lookup(tenant_id)
        return found

    async def _send(self, request: SmsRequested, tenant: ReadyTenant, previous: LedgerEntry | None) -> Outcome:
        slots = self._tenant_slots.setdefault(request.tenant_id, asyncio.Semaphore(self._options.tenant_concurrency))
        async with slots:
            in_flight, send_seconds = self._metrics.sending(request.tenant_id)
            in_flight.inc()
            started = self._clock()
            try:
                sender = self._senders.sender_for(tenant, request)
                recent = self._claimed.get(request.tenant_id)
                claimed: Collection[str] = recent.keys() if recent is not None else ()
                async with asyncio.timeout(self._options.send_deadline):
                    return await send_one(sender, request, previous, started, claimed)
            except TimeoutError:
                return failed_outcome(
                    request, _unfinished(self._options.send_deadline, tenant), attempts=1, provider=tenant.provider
                )
            except Exception as exc:  # a bug must not lose the request: report it, unknown whether sent
                log.exception("unexpected error sending request %s", request.request_id)
                problem = ErrorInfo(
                    code=ErrorCode.OUTCOME_UNKNOWN,
                    message=f"internal error while sending ({type(exc).__name__}); it may have been sent",
                )
                return failed_outcome(request, problem, attempts=0)
            finally:
                in_flight.dec()
                took = (self._clock() - started).total_seconds()
                send_seconds.observe(took)

    async def _finish(self, key: bytes, record: InboundRecord, outcome: Outcome) -> None:
        topic = topics.DISPATCHED if isinstance(outcome, SmsDispatched) else topics.FAILED
        done = LedgerEntry(
            state="done",
            partition=record.partition,
            at=self._clock(),
            attempts=outcome.attempts,
            outcome_topic=topic,
            outcome=outcome.to_bytes().decode(),
        )
        # "done" before the outcome: an outcome on a topic whose request still reads "sending" would, after a
        # crash, be followed by a second, different outcome (and maybe a send) for the same request.
        await self._durably(lambda: self._ledger.mark(key, done))
        if isinstance(outcome, SmsDispatched):
            self._claim(outcome.tenant_id, outcome.provider_message_id)
        await self._emit(key, done, record)
        self._counted(outcome)

    async def _emit(self, key: bytes, entry: LedgerEntry, record: InboundRecord) -> None:
        """Publish the recorded outcome for ``record``, then record that it was published for it."""
        if entry.outcome_topic is None or entry.outcome is None:
            return
        value = entry.outcome.encode()
        tenant_key = key.split(b"\x1f", 1)[0]
        topic = entry.outcome_topic
        # The tenant's partition, as the default partitioner would choose it, without hashing the key again.
        home = self._options.partition_for(tenant_key.decode())
        await self._durably(lambda: self._publish(topic, tenant_key, value, home))
        emitted = entry.model_copy(update={"emitted_through": record.offset})
        await self._durably(lambda: self._ledger.mark(key, emitted))

    async def expire(self, owned: Callable[[int], bool] = lambda _partition: True) -> int:
        """Drop ledger entries past the retention, at most ``expire_limit`` per call and one pass per
        ``expire_every`` (a pass that hits the limit goes on at the next call). The runtime calls it on a timer.
        Returns how many were dropped, once their tombstones are in Kafka."""
        now = self._clock()
        if now - self._last_expiry < self._options.expire_every:
            return 0
        self._last_expiry = now  # before any await: one pass at a time
        retention, limit = self._options.ledger_retention, self._options.expire_limit
        tombstones = self._ledger.expire(retention, now, limit=limit, owned=owned)
        if not self._ledger.swept:
            self._last_expiry = now - self._options.expire_every  # not through the store: the next call goes on
        await asyncio.gather(*(self._durably(write) for write in tombstones))
        return len(tombstones)

    def _counted(self, outcome: Outcome) -> None:
        self._metrics.count(outcome)
        log_outcome(log, outcome)

    def _claim(self, tenant_id: str, sid: str, keep: int = 10_000) -> None:
        claimed = self._claimed.setdefault(tenant_id, OrderedDict())
        claimed[sid] = None
        if len(claimed) > keep:
            claimed.popitem(last=False)

    async def _durably(self, write: Callable[[], Awaitable[Any]]) -> None:
        await until_taken(write, self._kafka_trouble, "a Kafka write", sleep=self._sleep)


def _unfinished(deadline: float, tenant: ReadyTenant) -> ErrorInfo:
    provider = "Twilio" if tenant.twilio is not None else "MSG91"
    return ErrorInfo(
        code=ErrorCode.OUTCOME_UNKNOWN,
        message=f"the send did not finish within {deadline:g}s; {provider} may have accepted it",
    )
