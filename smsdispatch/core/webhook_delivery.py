"""Delivering the pending webhooks (:class:`~smsdispatch.core.webhooks.PendingDelivery`) to tenants' URLs.

This module knows nothing about Faust or Kafka. Pending deliveries live in a key/value store (a changelog-backed
table partitioned like the outcome topics); the runtime calls :meth:`WebhookDeliverer.start_due` on a timer with
the entries of the partitions it owns, and applies each :class:`DeliveryResult` as it comes (the ``on_result``
callback): it writes ``value`` under ``key`` (None: delete), only while the store still holds ``expected``.

Guarantees, and their limits:

* **At least once, same id.** An entry leaves the store only once its endpoint answered 2xx, or when it is
  given up. A delivery cut short (a crash, :meth:`stop` on a rebalance) leaves its entry as it was, so it is
  attempted again, by this worker or the partition's next owner, with the same ``webhook-id`` and body; a
  tenant can therefore receive a webhook more than once and should deduplicate on ``webhook-id``.
* **Retries with backoff.** Any non-2xx answer (redirects are not followed), a timeout (``timeout`` seconds
  for the whole exchange, default 10) or a connection error is retried after 5 s, 30 s, 2 min, 5 min, 30 min,
  then every hour (each shortened by up to 20% at random), until ``retry_hours`` (default 24) have passed
  since the delivery was first enqueued; an attempt falls on that deadline, and if it fails too the delivery
  is given up (logged once, and counted by the caller).
* **Read at delivery time.** The tenant's URL and secret are looked up at every attempt, so a rotated secret
  or a new URL applies to retries. A tenant removed, or whose webhook URL was removed, has its pending
  deliveries dropped.
* **Tenants isolated.** Every delivery runs in a task of its own, and :meth:`start_due` never waits for one:
  a tenant's hanging or failing endpoint occupies only that tenant's ``tenant_concurrency`` slots (default 4);
  its other due deliveries wait for a later call, and other tenants' deliveries start at once. The shared HTTP
  client must not become the bottleneck: :func:`new_webhook_client` has no connection-pool limit.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
from pydantic import ValidationError

from smsdispatch.contract import ErrorCode, ErrorInfo
from smsdispatch.core.tenants import ReadyTenant
from smsdispatch.core.webhooks import PendingDelivery, signed_headers

log = logging.getLogger("smsdispatch.webhooks")

DeliveryOutcome = Literal["delivered", "retry", "gave_up", "dropped"]
"""``delivered``: a 2xx answer, removed. ``retry``: rescheduled. ``gave_up``: ``retry_hours`` passed, removed.
``dropped``: the tenant or its webhook URL is gone (or the entry is unreadable), removed."""

#: Waits after the 1st, 2nd, ... failed attempt, in seconds; the last one repeats.
DEFAULT_SCHEDULE = (5.0, 30.0, 120.0, 300.0, 1800.0, 3600.0)


def schedule_from(first_wait: float) -> tuple[float, ...]:
    """The default schedule's shape starting at ``first_wait`` seconds (the default's is 5), capped at an hour."""
    return tuple(min(3600.0, first_wait * step / DEFAULT_SCHEDULE[0]) for step in DEFAULT_SCHEDULE)


_USER_AGENT = "smsdispatch-webhooks/0.1"
_BACKLOG_PER_TENANT = 1000
_MAX_ERROR_CHARS = 300

TenantLookup = Callable[[str], ReadyTenant | ErrorInfo]


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What to do after one attempt. ``value`` None means delete ``key``."""

    key: bytes
    tenant_id: str
    #: The stored value this result was computed from: apply it only while the store still holds this.
    expected: bytes
    value: bytes | None
    result: DeliveryOutcome
    webhook_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class DeliveryOptions:
    timeout: float = 10.0
    tenant_concurrency: int = 4
    #: SMSDISPATCH_WEBHOOK_RETRY_HOURS, read by the caller.
    retry_hours: float = 24.0
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    #: Each wait is shortened by up to this fraction, at random, so retries of many deliveries spread out.
    jitter: float = 0.2


def new_webhook_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """An HTTP client for webhooks: no pool limit (so one tenant's hanging endpoint holds only its own
    connections), no redirects, no cookies kept across tenants."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
    return httpx.AsyncClient(
        transport=transport, limits=limits, follow_redirects=False, headers={"User-Agent": _USER_AGENT}
    )


class WebhookDeliverer:
    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        tenants: TenantLookup,
        options: DeliveryOptions | None = None,
        on_result: Callable[[DeliveryResult], Awaitable[None]] | None = None,
        count: Callable[[str, str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._tenants = tenants
        self._options = options or DeliveryOptions()
        self._on_result = on_result
        self._count = count
        self._clock = clock
        self._jitter = jitter
        self._in_flight: dict[str, dict[bytes, asyncio.Task[DeliveryResult]]] = {}
        # Due deliveries that found their tenant's slots full, in arrival order, per tenant (bounded: the
        # timer's next pass finds any that did not fit).
        self._backlog: dict[str, dict[bytes, tuple[bytes, PendingDelivery | None]]] = {}
        self._stopping = False

    def in_flight(self, tenant_id: str | None = None) -> int:
        """Deliveries running now, of one tenant or of all."""
        if tenant_id is not None:
            return len(self._in_flight.get(tenant_id, ()))
        return sum(len(tasks) for tasks in self._in_flight.values())

    def start_due(
        self,
        items: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]],
        now: datetime,
        owned: Callable[[str], bool] = lambda _tenant_id: True,
    ) -> list[asyncio.Task[DeliveryResult]]:
        """Start a task for each due entry among ``items`` (of tenants ``owned`` accepts) that is not running
        already and whose tenant has a free slot; returns at once with the tasks started. Each task's result
        goes to ``on_result`` before the entry counts as no longer running."""
        pairs = items.items() if isinstance(items, Mapping) else items
        started: list[asyncio.Task[DeliveryResult]] = []
        for key, raw in pairs:
            try:
                pending: PendingDelivery | None = PendingDelivery.model_validate_json(raw)
            except ValidationError:
                pending = None
            tenant_id = pending.tenant_id if pending is not None else key.split(b"\x1f", 1)[0].decode(errors="replace")
            running = self._in_flight.get(tenant_id, {})
            if not owned(tenant_id) or key in running or (pending is not None and pending.next_at > now):
                continue
            if len(running) >= self._options.tenant_concurrency:
                # Started as soon as one of the tenant's slots frees, not at the next pass of the timer.
                waiting = self._backlog.setdefault(tenant_id, {})
                if len(waiting) < _BACKLOG_PER_TENANT:
                    waiting[key] = (raw, pending)
                continue
            started.append(self._start(key, raw, tenant_id, pending))
        return started

    def _start(
        self, key: bytes, raw: bytes, tenant_id: str, pending: PendingDelivery | None
    ) -> asyncio.Task[DeliveryResult]:
        task = asyncio.create_task(self._run(key, raw, tenant_id, pending))
        self._in_flight.setdefault(tenant_id, {})[key] = task
        return task

    def _start_next(self, tenant_id: str) -> None:
        """A slot of the tenant freed: start its next delivery that was due and found the slots full."""
        waiting = self._backlog.get(tenant_id)
        running = self._in_flight.get(tenant_id, {})
        while waiting and len(running) < self._options.tenant_concurrency:
            key, (raw, pending) = next(iter(waiting.items()))
            del waiting[key]
            if key not in running:
                self._start(key, raw, tenant_id, pending)
                running = self._in_flight.get(tenant_id, {})
        if not waiting:
            self._backlog.pop(tenant_id, None)

    async def deliver_due(
        self,
        items: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]],
        now: datetime,
        owned: Callable[[str], bool] = lambda _tenant_id: True,
    ) -> list[DeliveryResult]:
        """:meth:`start_due`, then wait for the deliveries it started (tests, and callers without a callback).
        Without ``on_result``, apply the results before the next call, or an entry may be attempted twice."""
        return list(await asyncio.gather(*self.start_due(items, now, owned)))

    async def stop(self) -> None:
        """Cancel every running delivery (a rebalance or shutdown); their entries stay pending, unchanged."""
        self._stopping = True
        self._backlog.clear()
        try:
            tasks = [task for running in self._in_flight.values() for task in running.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._in_flight.clear()
        finally:
            self._stopping = False

    async def _run(self, key: bytes, raw: bytes, tenant_id: str, pending: PendingDelivery | None) -> DeliveryResult:
        try:
            if pending is None:
                log.warning("dropping an unreadable pending webhook under key %r", key)
                result = DeliveryResult(key, tenant_id, raw, None, "dropped", error="unreadable entry")
            else:
                result = await self._attempt(key, raw, pending)
            if self._count is not None:
                self._count(tenant_id, result.result)
            if self._on_result is not None:
                try:
                    await self._on_result(result)
                except Exception:
                    log.exception("applying the result of webhook delivery %r failed", key)
            return result
        finally:
            running = self._in_flight.get(tenant_id)
            if running is not None:
                running.pop(key, None)
                if not running:
                    del self._in_flight[tenant_id]
            if not self._stopping:
                self._start_next(tenant_id)

    async def _attempt(self, key: bytes, raw: bytes, pending: PendingDelivery) -> DeliveryResult:
        tenant = self._tenants(pending.tenant_id)
        if isinstance(tenant, ErrorInfo):
            if tenant.code is ErrorCode.UNKNOWN_TENANT:
                return self._dropped(key, raw, pending, "the tenant was removed")
            return self._failed(key, raw, pending, f"the tenant cannot be used: {tenant.message}")
        url = tenant.record.webhook_url
        if url is None:
            return self._dropped(key, raw, pending, "the tenant's webhook URL was removed")
        secret = tenant.config.webhook_secret
        if secret is None:
            return self._failed(key, raw, pending, "the tenant has a webhook URL but no signing secret")
        try:
            headers = signed_headers(pending.webhook_id, pending.payload, secret.get_secret_value(), self._clock())
        except Exception:  # the secret's own text is never put in a message
            return self._failed(key, raw, pending, "the tenant's webhook secret is not valid base64")
        headers["Content-Type"] = "application/json"
        timeout = self._options.timeout
        try:
            async with asyncio.timeout(timeout):
                request = self._client.stream(
                    "POST", url, content=pending.payload.encode(), headers=headers, timeout=timeout
                )
                async with request as response:
                    status = response.status_code
        except TimeoutError:
            return self._failed(key, raw, pending, f"no answer within {timeout:g}s")
        except Exception as error:  # connection refused, DNS, TLS, an invalid URL: all worth another try later
            # The type only: a library's message may quote the URL, and this text is kept with the delivery.
            return self._failed(key, raw, pending, type(error).__name__)
        if 200 <= status < 300:
            return DeliveryResult(key, pending.tenant_id, raw, None, "delivered", pending.webhook_id)
        return self._failed(key, raw, pending, f"HTTP {status}")

    def _dropped(self, key: bytes, raw: bytes, pending: PendingDelivery, why: str) -> DeliveryResult:
        log.info("dropping webhook %s of tenant %s: %s", pending.webhook_id, pending.tenant_id, why)
        return DeliveryResult(key, pending.tenant_id, raw, None, "dropped", pending.webhook_id, why)

    def _failed(self, key: bytes, raw: bytes, pending: PendingDelivery, why: str) -> DeliveryResult:
        why = why[:_MAX_ERROR_CHARS]
        now = self._clock()
        attempts = pending.attempts + 1
        deadline = pending.first_at + timedelta(hours=self._options.retry_hours)
        if now >= deadline:
            log.warning(
                "gave up delivering webhook %s to tenant %s after %d attempts in %gh: %s",
                pending.webhook_id,
                pending.tenant_id,
                attempts,
                self._options.retry_hours,
                why,
            )
            return DeliveryResult(key, pending.tenant_id, raw, None, "gave_up", pending.webhook_id, why)
        schedule = self._options.schedule
        wait = schedule[min(attempts, len(schedule)) - 1] * (1.0 - self._options.jitter * self._jitter())
        updated = pending.model_copy(
            update={"attempts": attempts, "next_at": min(now + timedelta(seconds=wait), deadline), "last_error": why}
        )
        return DeliveryResult(key, pending.tenant_id, raw, updated.to_bytes(), "retry", pending.webhook_id, why)
