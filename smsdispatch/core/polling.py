"""Delivery tracking without callbacks: poll Twilio for messages whose status is not final yet.

This module knows nothing about Faust or Kafka. What still needs polling lives in a key/value store (a
changelog-backed table partitioned like the outcome topics: one tenant's entries on its partition), one
:class:`PendingPoll` per message under :func:`poll_key`. The runtime

* adds an entry for each ``sms.dispatched`` record that :func:`should_track` accepts (:func:`pending_for`),
  without overwriting one that is already there (a redelivered outcome must not restart the schedule);
* removes it when a final status arrives by callback (:func:`settled_by`);
* calls :meth:`StatusPoller.run_due` on a timer with the entries of the partitions it owns, and applies each
  :class:`PollResult`: publishes ``status`` on ``sms.status``, then writes ``value`` (None: delete) under
  ``key``, but only while the store still holds ``expected`` (a callback may have settled it meanwhile).

Guarantees, and their limits:

* **Final or 72 hours.** A message is fetched ``poll_seconds`` after dispatch, then again with exponential
  backoff (doubling per poll, capped at ``max_delay``, with jitter) until Twilio reports a final status
  (delivered, undelivered, failed, canceled) or ``give_up_after`` (72 h) has passed since dispatch; the last
  poll falls on that deadline, and giving up is logged once. A failed fetch (Twilio down, credentials refused,
  tenant not loaded yet) is rescheduled the same way.
* **No duplicate statuses from polling.** ``last_status`` remembers what was last seen; a poll emits an
  ``SmsStatus`` only when Twilio's status differs from it. That a status never moves backwards (a late poll
  after a callback's ``delivered``) is the log sink's rule, not re-implemented here.
* **Never test credentials.** Their tenants are not tracked, and an entry found for one (the tenant changed
  credentials, or Twilio answers 20008) is dropped without a fetch.
* **Bounded cost.** At most ``per_tenant_per_minute`` fetches per tenant per minute (:class:`PollBudget`) and
  ``tenant_concurrency`` at once per tenant, so polling never competes with sending; entries over the budget
  stay due and are taken on a later run. Each fetch is cut off after ``fetch_timeout`` seconds.
* **Durable and partitioned** only as far as the runtime makes the store so: every change is a result to
  write, never a side effect here. The budget is per process (each worker owns its tenants' partitions).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from smsdispatch.adapters.storage import FINAL_STATUSES
from smsdispatch.adapters.twilio import MessageRejected, MessageStatusInfo, ReconciliationUnavailable
from smsdispatch.contract import ErrorInfo, SmsDispatched, SmsStatus, TenantRecord
from smsdispatch.core.persist import ThrottledWarning
from smsdispatch.core.tenants import ReadyTenant

log = logging.getLogger("smsdispatch.polling")

PollOutcome = Literal["final", "pending", "error", "gave_up", "dropped"]
"""``final``: Twilio reported a final status, the entry is removed. ``pending``: fetched, not final yet,
rescheduled. ``error``: the fetch failed, rescheduled. ``gave_up``: 72 hours passed, removed. ``dropped``:
cannot be polled (test credentials, no such message, unreadable entry), removed."""


class PendingPoll(BaseModel):
    """One message still to be polled; stored as JSON under :func:`poll_key`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant_id: str
    request_id: str | None = None
    sid: str
    dispatched_at: datetime
    #: Fetches made so far.
    attempts: int = 0
    next_at: datetime
    #: The last status seen (the dispatch's initial one, then each poll's): equal statuses are not re-emitted.
    last_status: str | None = None

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


@dataclass(frozen=True, slots=True)
class PollResult:
    """What to do after one entry was examined. ``value`` None means delete ``key``."""

    key: bytes
    tenant_id: str
    #: The stored value this result was computed from: apply it only while the store still holds this.
    expected: bytes
    value: bytes | None
    status: SmsStatus | None
    result: PollOutcome


class MessageFetcher(Protocol):
    async def fetch_message(self, sid: str) -> MessageStatusInfo: ...


TenantLookup = Callable[[str], ReadyTenant | ErrorInfo]
#: Counts one result for a tenant (the runtime maps it to a Prometheus counter).
ResultCounter = Callable[[str, str], None]


def poll_key(tenant_id: str, sid: str) -> bytes:
    return f"{tenant_id}\x1f{sid}".encode()


def should_track(outcome: SmsDispatched, tenant: ReadyTenant | TenantRecord) -> bool:
    """Whether a dispatched message gets polled: only Twilio's (MSG91 has no status look-up; its reports are all
    there is), not for test credentials, and not once it is final."""
    record = tenant.record if isinstance(tenant, ReadyTenant) else tenant
    twilio = outcome.provider == "twilio" and (tenant.twilio is not None if isinstance(tenant, ReadyTenant) else True)
    return twilio and not record.test_credentials and outcome.status not in FINAL_STATUSES


def pending_for(outcome: SmsDispatched, poll_seconds: float) -> tuple[bytes, PendingPoll]:
    """The entry that polls ``outcome``'s message ``poll_seconds`` after its dispatch."""
    pending = PendingPoll(
        tenant_id=outcome.tenant_id,
        request_id=outcome.request_id,
        sid=outcome.provider_message_id,
        dispatched_at=outcome.dispatched_at,
        next_at=outcome.dispatched_at + timedelta(seconds=poll_seconds),
        last_status=outcome.status,
    )
    return poll_key(outcome.tenant_id, outcome.provider_message_id), pending


def settled_by(status: SmsStatus) -> bytes | None:
    """The entry a receipt makes unnecessary (a final status), or None."""
    if status.status in FINAL_STATUSES:
        return poll_key(status.tenant_id, status.provider_message_id)
    return None


class PollBudget:
    """At most ``per_minute`` fetches per tenant in any minute: a token bucket per tenant, full at first."""

    def __init__(self, per_minute: int = 30) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self._capacity = float(per_minute)
        self._per_second = per_minute / 60.0
        self._buckets: dict[str, tuple[float, datetime]] = {}

    def take(self, tenant_id: str, now: datetime) -> bool:
        """Spend one fetch for the tenant if its budget has one left."""
        tokens, then = self._buckets.get(tenant_id, (self._capacity, now))
        tokens = min(self._capacity, tokens + max(0.0, (now - then).total_seconds()) * self._per_second)
        if tokens < 1.0:
            self._buckets[tenant_id] = (tokens, now)
            return False
        self._buckets[tenant_id] = (tokens - 1.0, now)
        return True


@dataclass(frozen=True)
class PollOptions:
    poll_seconds: float = 600.0
    max_delay: timedelta = timedelta(hours=6)
    give_up_after: timedelta = timedelta(hours=72)
    per_tenant_per_minute: int = 30
    tenant_concurrency: int = 4
    fetch_timeout: float = 60.0
    #: Each delay is shortened by up to this fraction, at random, so polls of a burst spread out.
    jitter: float = 0.2


class StatusPoller:
    def __init__(
        self,
        *,
        tenants: TenantLookup,
        providers: Callable[[ReadyTenant], MessageFetcher],
        options: PollOptions | None = None,
        budget: PollBudget | None = None,
        on_result: ResultCounter | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._tenants = tenants
        self._providers = providers
        self._options = options or PollOptions()
        self._budget = budget or PollBudget(self._options.per_tenant_per_minute)
        self._on_result = on_result
        self._jitter = jitter
        self._trouble = ThrottledWarning(log, interval=60.0)

    async def run_due(
        self,
        items: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]],
        now: datetime,
        owned: Callable[[str], bool] = lambda _tenant_id: True,
    ) -> list[PollResult]:
        """Fetch the due entries among ``items`` (of tenants ``owned`` accepts) within the budget; returns a
        result per entry examined. Entries not due, or over their tenant's budget, get no result."""
        pairs = items.items() if isinstance(items, Mapping) else items
        results: list[PollResult] = []
        fetches: list[Awaitable[PollResult]] = []
        slots: dict[str, asyncio.Semaphore] = {}
        for key, raw in pairs:
            try:
                pending = PendingPoll.model_validate_json(raw)
            except ValidationError:
                tenant_id = key.split(b"\x1f", 1)[0].decode(errors="replace")
                if owned(tenant_id):
                    log.warning("dropping an unreadable pending poll under key %r", key)
                    results.append(PollResult(key, tenant_id, raw, None, None, "dropped"))
                continue
            if pending.next_at > now or not owned(pending.tenant_id):
                continue
            tenant = self._tenants(pending.tenant_id)
            if isinstance(tenant, ErrorInfo):
                results.append(self._failed(key, raw, pending, now, f"tenant unavailable: {tenant.message}"))
            elif tenant.record.test_credentials:
                results.append(PollResult(key, pending.tenant_id, raw, None, None, "dropped"))
            elif self._budget.take(pending.tenant_id, now):
                slot = slots.setdefault(pending.tenant_id, asyncio.Semaphore(self._options.tenant_concurrency))
                fetches.append(self._poll(key, raw, pending, tenant, now, slot))
        results += await asyncio.gather(*fetches)
        if self._on_result is not None:
            for result in results:
                self._on_result(result.tenant_id, result.result)
        return results

    async def _poll(
        self, key: bytes, raw: bytes, pending: PendingPoll, tenant: ReadyTenant, now: datetime, slot: asyncio.Semaphore
    ) -> PollResult:
        async with slot:
            try:
                async with asyncio.timeout(self._options.fetch_timeout):
                    info = await self._providers(tenant).fetch_message(pending.sid)
            except ReconciliationUnavailable:
                log.info("tenant %s has test credentials: message %s is not polled", pending.tenant_id, pending.sid)
                return PollResult(key, pending.tenant_id, raw, None, None, "dropped")
            except MessageRejected as error:
                if error.http_status != 404:
                    return self._failed(key, raw, pending, now, error.message)
                log.warning("no longer polling message %s of tenant %s: %s", pending.sid, pending.tenant_id, error)
                return PollResult(key, pending.tenant_id, raw, None, None, "dropped")
            except TimeoutError:
                return self._failed(key, raw, pending, now, f"no answer within {self._options.fetch_timeout:g}s")
            except Exception as error:  # a provider error, or a bug: either way the entry is tried again later
                return self._failed(key, raw, pending, now, f"{type(error).__name__}: {error}")
        return self._fetched(key, raw, pending, info, now)

    def _fetched(
        self, key: bytes, raw: bytes, pending: PendingPoll, info: MessageStatusInfo, now: datetime
    ) -> PollResult:
        status = None
        if info.status != pending.last_status:
            status = SmsStatus(
                tenant_id=pending.tenant_id,
                request_id=pending.request_id,
                provider_message_id=pending.sid,
                status=info.status,
                provider_code=info.error_code,
                received_at=now,
            )
        if info.status in FINAL_STATUSES:
            return PollResult(key, pending.tenant_id, raw, None, status, "final")
        polled = pending.model_copy(update={"attempts": pending.attempts + 1, "last_status": info.status})
        return self._reschedule(key, raw, polled, now, status, "pending", f"still {info.status}")

    def _failed(self, key: bytes, raw: bytes, pending: PendingPoll, now: datetime, why: str) -> PollResult:
        self._trouble.warn("polling message %s of tenant %s failed (%s)", pending.sid, pending.tenant_id, why)
        polled = pending.model_copy(update={"attempts": pending.attempts + 1})
        return self._reschedule(key, raw, polled, now, None, "error", why)

    def _reschedule(
        self,
        key: bytes,
        raw: bytes,
        pending: PendingPoll,
        now: datetime,
        status: SmsStatus | None,
        result: PollOutcome,
        why: str,
    ) -> PollResult:
        options = self._options
        deadline = pending.dispatched_at + options.give_up_after
        if now >= deadline:
            log.warning(
                "gave up polling message %s of tenant %s after %d polls over %s (%s)",
                pending.sid,
                pending.tenant_id,
                pending.attempts,
                options.give_up_after,
                why,
            )
            return PollResult(key, pending.tenant_id, raw, None, status, "gave_up")
        delay = next_delay(pending.attempts, options.poll_seconds, options.max_delay, options.jitter * self._jitter())
        updated = pending.model_copy(update={"next_at": min(now + delay, deadline)})
        return PollResult(key, pending.tenant_id, raw, updated.to_bytes(), status, result)


def next_delay(attempts: int, poll_seconds: float, max_delay: timedelta, shortened_by: float = 0.0) -> timedelta:
    """The wait after poll number ``attempts``: ``poll_seconds * 2**attempts`` up to ``max_delay``, then shortened
    by the fraction ``shortened_by`` (the jitter)."""
    base = min(max_delay.total_seconds(), poll_seconds * 2.0 ** min(attempts, 40))
    return timedelta(seconds=base * (1.0 - shortened_by))
